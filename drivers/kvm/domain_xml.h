// VM spec -> libvirt domain XML, and the NovaCron metadata that marks a domain as managed.
// Pure functions (no libvirt calls) so that the mapping is unit-tested on its own.
#pragma once

#include <string>

#include "novacron/sdk/hypervisor_driver.hpp"

namespace novacron::kvm {

// Namespace of the <metadata> element NovaCron writes into its domains.
inline constexpr const char* kMetadataUri = "https://novacron.io/xmlns/vm/1";
inline constexpr const char* kMetadataPrefix = "novacron";

// Checks the fields the XML needs: formats, buses, boot, NIC types; the error names the
// field ("/disks/1/bus: ...").
sdk::Status check_spec(const sdk::VmSpec& spec);

// The domain definition for `spec`, with `domain_type` ("kvm", "qemu", "test").
std::string domain_xml(const sdk::VmSpec& spec, const std::string& domain_type);

// Text with &, <, >, ", ' escaped for XML.
std::string xml_escape(const std::string& text);

}  // namespace novacron::kvm
