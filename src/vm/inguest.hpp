#pragma once
// The inside half of 'vfioctl verify': what a guest's kernel log and
// nvidia-smi say about a passed-through GPU. Pure parsers.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::vm {

// A kernel log line that means trouble for a passed-through device.
struct LogFinding {
    std::string
        kind; // "xid" (NVIDIA Xid), "aer" (PCIe AER), "bar" (BAR not assigned), "vfio", "nvrm"
    std::string line;
};

// Pure: the lines of a kernel log (dmesg text) that report Xid errors,
// AER errors, BARs the kernel could not assign, and NVRM failures.
std::vector<LogFinding> scan_kernel_log(std::string_view log);

// One GPU as nvidia-smi reports it.
struct SmiGpu {
    std::string name;
    std::string memory; // "81559 MiB"
    std::string driver_version;
    std::string bus_id; // "00000000:01:00.0"
};

// Pure: rows of `nvidia-smi --query-gpu=name,memory.total,driver_version,pci.bus_id
// --format=csv,noheader`; malformed rows are skipped.
std::vector<SmiGpu> parse_nvidia_smi(std::string_view csv);

// One GPU's NVLink fabric state, from `nvidia-smi -q` (its "Fabric" section).
struct FabricState {
    std::string bus_id; // "00000000:18:00.0"
    std::string state;  // "Completed", "In Progress", "Not Started", "Not Supported"
    std::string status; // "Success", or the failure nvidia-smi names
    // Registered with the fabric: CUDA runs; before that CUDA says "system
    // not yet initialized" (error 802).
    bool ready() const { return state == "Completed" && status == "Success"; }
};

// Pure: every GPU of `nvidia-smi -q` output that has a Fabric section.
std::vector<FabricState> parse_fabric_states(std::string_view smi_q);

// One BAR as the guest's kernel assigned it (sysfs "resource" file).
struct SysfsBar {
    int index = 0;
    uint64_t size = 0;
    bool is_io = false;
};

// Pure: the BARs (the first six lines) of a sysfs resource file that have
// an address range; lines that are not three hex numbers are skipped.
std::vector<SysfsBar> parse_resource_file(std::string_view text);

} // namespace vfioctl::vm
