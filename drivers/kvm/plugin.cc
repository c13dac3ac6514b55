// The plugin entry of io.novacron.driver.kvm (the driver itself: kvm_driver.h).
#include "kvm_driver.h"
#include "novacron/sdk/export.hpp"

NOVACRON_PLUGIN(novacron::kvm::KvmDriver)
