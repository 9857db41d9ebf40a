#pragma once
// Kernel command line: tokens as the kernel splits them, and what the
// IOMMU-related ones mean together. Pure: takes text, returns data. It sits
// below both iommu/ (which diagnoses the running command line) and boot/
// (which edits the configured one), so that neither depends on the other.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::kernel {

// One parameter: "intel_iommu=on" is {key "intel_iommu", value "on"}; a bare
// flag has no value.
struct Token {
    std::string key;
    std::optional<std::string> value;
    std::string text; // as written
};

// Splits like the kernel's next_arg(): whitespace separates, double quotes
// group, everything after a lone "--" belongs to init and is dropped.
std::vector<Token> tokenize(std::string_view cmdline);

enum class Switch { unset, on, off };

// What the IOMMU-related parameters ask for, after the kernel's own rules
// (later occurrences override earlier ones, iommu=off beats everything).
struct IommuCmdline {
    Switch intel = Switch::unset; // intel_iommu=on|off
    std::vector<std::string>
        intel_opts;                    // every intel_iommu= option, in order (sm_on, igfx_off, ...)
    Switch amd = Switch::unset;        // amd_iommu=off (on is the kernel default)
    std::vector<std::string> amd_opts; // every amd_iommu= option (force_isolation, pgtbl_v2, ...)
    std::optional<std::string> iommu;  // last iommu= value: pt, nopt, off, force, soft, ...
    std::optional<bool> passthrough;   // iommu=pt / iommu=nopt / iommu.passthrough=
    std::optional<bool> strict;        // iommu.strict=
    bool iommu_off = false;            // iommu=off
    bool intremap_off = false;         // intremap=off / intremap=nosid
    std::vector<std::string> vfio_pci_ids;       // vfio-pci.ids= (vendor:device[:...])
    std::optional<bool> allow_unsafe_interrupts; // vfio_iommu_type1.allow_unsafe_interrupts=
    std::vector<std::string> blacklisted;        // modprobe.blacklist= and rd.driver.blacklist=
    std::vector<std::string> iommu_tokens;       // the IOMMU-related tokens as written
    std::vector<std::string> notes;              // conflicts and what wins, in words
};

// Interprets the tokens. Never fails: unknown values are noted, not errors.
IommuCmdline interpret(const std::vector<Token>& tokens);

// True for a value the kernel's kstrtobool() reads as true (1, y, Y, on).
std::optional<bool> parse_kernel_bool(std::string_view v);

enum class Platform { intel, amd };

// Whether a command line leaves the IOMMU of platform on. default_on: the
// kernel turns the Intel IOMMU on without intel_iommu=on
// (CONFIG_INTEL_IOMMU_DEFAULT_ON).
bool iommu_on(const IommuCmdline& c, Platform p, bool default_on = false);

// The IOMMU and VFIO parameters of a command line, sorted: two command lines
// with the same list boot the same way as far as passthrough goes.
std::vector<std::string> iommu_params(std::string_view cmdline);

} // namespace vfioctl::kernel
