#include "domain_xml.h"

#include <map>
#include <sstream>

namespace novacron::kvm {
namespace {

const char* target_prefix(const std::string& bus) {
  if (bus == "virtio") return "vd";
  if (bus == "ide") return "hd";
  return "sd";  // sata, scsi
}

std::string disk_target(const std::string& bus, size_t index) {
  std::string name = target_prefix(bus);
  // vda..vdz, then vdaa..: enough for any sane number of disks.
  if (index < 26) return name + static_cast<char>('a' + index);
  return name + static_cast<char>('a' + index / 26 - 1) + static_cast<char>('a' + index % 26);
}

bool one_of(const std::string& v, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed) {
    if (v == a) return true;
  }
  return false;
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

sdk::Status check_spec(const sdk::VmSpec& spec) {
  auto bad = [](const std::string& field, const std::string& what) {
    return sdk::invalid_argument(field + ": " + what);
  };
  if (spec.id.size() != 36) return bad("/id", "expected a UUID");
  if (spec.vcpus < 1 || spec.vcpus > 512) return bad("/vcpus", "expected 1 to 512");
  if (spec.memory_mib < 16) return bad("/memory_mib", "expected at least 16");
  for (size_t i = 0; i < spec.disks.size(); ++i) {
    const auto& d = spec.disks[i];
    const std::string p = "/disks/" + std::to_string(i);
    if (d.path.empty() || d.path.front() != '/') return bad(p + "/path", "expected an absolute path");
    if (!one_of(d.format, {"qcow2", "raw"}))
      return bad(p + "/format", "expected qcow2 or raw, got \"" + d.format + "\"");
    if (!one_of(d.bus, {"virtio", "sata", "scsi", "ide"})) {
      return bad(p + "/bus", "expected virtio, sata, scsi or ide, got \"" + d.bus + "\"");
    }
    if (d.size_gib < 0 || d.size_gib > 65536) return bad(p + "/size_gib", "expected 0 to 65536");
  }
  if (spec.boot.from == "kernel") {
    if (spec.boot.kernel.empty() || spec.boot.kernel.front() != '/') {
      return bad("/boot/kernel", "expected an absolute path with boot from kernel");
    }
    if (!spec.boot.initrd.empty() && spec.boot.initrd.front() != '/')
      return bad("/boot/initrd", "expected an absolute path");
  } else if (spec.boot.from == "disk") {
    if (spec.disks.empty()) return bad("/boot/from", "\"disk\" needs at least one disk");
  } else {
    return bad("/boot/from", "expected disk or kernel, got \"" + spec.boot.from + "\"");
  }
  for (size_t i = 0; i < spec.nics.size(); ++i) {
    const auto& n = spec.nics[i];
    const std::string p = "/network/" + std::to_string(i);
    if (!one_of(n.type, {"user", "bridge"})) return bad(p + "/type", "expected user or bridge, got \"" + n.type + "\"");
    if (n.type == "bridge" && n.bridge.empty()) return bad(p + "/bridge", "is required with type bridge");
  }
  return sdk::Status::ok();
}

std::string domain_xml(const sdk::VmSpec& spec, const std::string& domain_type) {
  std::ostringstream x;
  x << "<domain type='" << xml_escape(domain_type) << "'>\n"
    << "  <name>" << xml_escape(spec.name) << "</name>\n"
    << "  <uuid>" << xml_escape(spec.id) << "</uuid>\n"
    << "  <metadata>\n    <" << kMetadataPrefix << ":vm xmlns:" << kMetadataPrefix << "='" << kMetadataUri << "'>"
    << "<" << kMetadataPrefix << ":id>" << xml_escape(spec.id) << "</" << kMetadataPrefix << ":id>";
  for (const auto& [k, v] : spec.labels) {
    x << "<" << kMetadataPrefix << ":label key='" << xml_escape(k) << "'>" << xml_escape(v) << "</" << kMetadataPrefix
      << ":label>";
  }
  x << "</" << kMetadataPrefix << ":vm>\n  </metadata>\n"
    << "  <memory unit='MiB'>" << spec.memory_mib << "</memory>\n"
    << "  <currentMemory unit='MiB'>" << spec.memory_mib << "</currentMemory>\n"
    << "  <vcpu placement='static'>" << spec.vcpus << "</vcpu>\n"
    << "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n";
  if (spec.boot.from == "kernel") {
    x << "    <kernel>" << xml_escape(spec.boot.kernel) << "</kernel>\n";
    if (!spec.boot.initrd.empty()) x << "    <initrd>" << xml_escape(spec.boot.initrd) << "</initrd>\n";
    if (!spec.boot.cmdline.empty()) x << "    <cmdline>" << xml_escape(spec.boot.cmdline) << "</cmdline>\n";
  } else {
    x << "    <boot dev='hd'/>\n";
  }
  x << "  </os>\n"
    << "  <features><acpi/><apic/></features>\n"
    << "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n"
    << "  <devices>\n";
  // Each device prefix numbers its own disks: vda, vdb, ...; sata and scsi share sda, sdb, ...
  std::map<std::string, size_t> per_bus;
  for (const auto& d : spec.disks) {
    size_t index = per_bus[target_prefix(d.bus)]++;
    x << "    <disk type='file' device='disk'>\n"
      << "      <driver name='qemu' type='" << xml_escape(d.format) << "'/>\n"
      << "      <source file='" << xml_escape(d.path) << "'/>\n"
      << "      <target dev='" << disk_target(d.bus, index) << "' bus='" << xml_escape(d.bus) << "'/>\n";
    if (d.read_only) x << "      <readonly/>\n";
    x << "    </disk>\n";
  }
  for (const auto& n : spec.nics) {
    if (n.type == "bridge") {
      x << "    <interface type='bridge'>\n      <source bridge='" << xml_escape(n.bridge) << "'/>\n";
    } else {
      x << "    <interface type='user'>\n";
    }
    if (!n.mac.empty()) x << "      <mac address='" << xml_escape(n.mac) << "'/>\n";
    x << "      <model type='virtio'/>\n    </interface>\n";
  }
  if (!spec.console_log.empty()) {
    x << "    <serial type='file'>\n      <source path='" << xml_escape(spec.console_log) << "' append='on'/>\n"
      << "      <target port='0'/>\n    </serial>\n"
      << "    <console type='file'>\n      <source path='" << xml_escape(spec.console_log) << "'/>\n"
      << "      <target type='serial' port='0'/>\n    </console>\n";
  }
  // No graphics; no USB controller; no video device (environment notes: headless TCG).
  x << "    <controller type='usb' model='none'/>\n"
    << "    <video><model type='none'/></video>\n"
    << "    <memballoon model='virtio'><stats period='5'/></memballoon>\n"
    << "  </devices>\n"
    << "</domain>\n";
  return x.str();
}

}  // namespace novacron::kvm
