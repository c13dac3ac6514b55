// The plugin entry of io.novacron.driver.lxc (the driver itself: lxc_driver.h). The
// helper's digest comes from helper_digest.cc, generated when the helper is built.
#include "lxc_driver.h"
#include "novacron/sdk/export.hpp"

NOVACRON_PLUGIN(novacron::lxc::LxcDriver)
