// For translation units that need the host's io_context (HTTP server, transports).
#pragma once

#include <boost/asio/io_context.hpp>

#include "host/services/executors.h"

namespace novacron {

boost::asio::io_context& io_context_of(ExecutorPools& pools);

}  // namespace novacron
