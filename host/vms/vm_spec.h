// The VM spec of POST /v1/vms: JSON -> sdk::VmSpec, with every error naming its field
// ("/disks/0/image: ..."). Image, kernel and initrd paths are relative to the configured
// image root and resolved beneath it (host/common/path_beneath); disks the host creates
// go into the VM's own folder.
//
//   {"name": "web-1", "driver": "kvm", "vcpus": 2, "memory_mib": 512,
//    "disks": [{"image": "debian.qcow2", "format": "qcow2", "bus": "virtio"},
//              {"size_gib": 10, "format": "qcow2"}],
//    "boot": {"from": "disk"} | {"from": "kernel", "kernel": "vmlinuz", "initrd": "initrd.gz",
//                                "cmdline": "console=ttyS0"},
//    "network": [] | [{"type": "user"}] | [{"type": "bridge", "bridge": "br0", "mac": "..."}],
//    "labels": {"tier": "web"}, "start": true, "driver_options": {}}
//
// Containers (lxc) have no disks or boot section; instead:
//    "container": {"template": "busybox"} | {"rootfs_tarball": "rootfs/alpine.tar.gz"},
//                 "env": {"MODE": "prod"}, "init": ["/bin/sh", "-c", "exec httpd -f"]}
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "host/common/error.h"
#include "novacron/sdk/hypervisor_driver.hpp"

namespace novacron {

struct VmRequest {
  sdk::VmSpec spec;    // id, vm_dir and console_log filled by the caller's ids
  std::string driver;  // "kvm", "lxc"
  bool start = true;
  nlohmann::json original;  // the request as given (stored with the record)
};

struct VmSpecLimits {
  int max_vcpus = 512;
  std::int64_t max_memory_mib = std::int64_t{4} << 20;  // 4 TiB
  std::int64_t max_disk_gib = 65536;
  size_t max_disks = 16;
  size_t max_nics = 8;
};

// Parses and checks a spec. `id` is the new VM's id, `vm_dir` its folder (created disks:
// vm_dir/disk-N.FORMAT), `image_root` where image paths are resolved. Error
// "invalid_spec" with "/field: what" messages (every problem found, one per line).
Expected<VmRequest> parse_vm_spec(const nlohmann::json& body, const std::string& id,
                                  const std::filesystem::path& vm_dir, const std::filesystem::path& image_root,
                                  const VmSpecLimits& limits = {});

// A random UUID (version 4), for VM ids.
std::string new_uuid();

}  // namespace novacron
