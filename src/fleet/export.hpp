#pragma once
// What 'vfioctl export' hands to the engines that run many hosts, in the
// formats they read: Node Feature Discovery labels, KubeVirt's permitted
// host devices, OpenStack Nova's [pci] options, Ansible local facts and
// node_exporter's textfile metrics. The renderers are pure: they take the
// typed facts below and return text, so each format is tested without a host.

#include "util/result.hpp"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::fleet {

// One PCI function as the exports name it.
struct Function {
    std::string address; // "0000:8a:00.0"
    uint16_t vendor = 0;
    uint16_t device = 0;
    // The pci.ids device name ("GH100 [H100 PCIe]"); nullopt when pci.ids
    // does not know the ID.
    std::optional<std::string> model;
    std::optional<std::string> driver; // nullopt: no driver bound
    std::optional<int> iommu_group;    // nullopt: none or unknown
    std::optional<int> numa_node;      // nullopt: unknown; -1: no affinity
    bool display = false;              // PCI class 03xx
    std::string verdict;               // GPUs: iommu::verdict_id; "" for other functions
};

// The host's facts every format draws from; collected by cli/export.cpp.
struct Facts {
    std::string version; // vfioctl's
    int64_t now = 0;     // seconds since the epoch, when the facts were read
    bool iommu_enabled = false;
    int iommu_groups = 0;
    // The host's overall verdict (iommu::verdict_id) and whether it is
    // "will_work": a GPU can be passed through now.
    std::string verdict;
    bool passthrough_ready = false;
    // nullopt: the running or the next command line cannot be known.
    std::optional<bool> reboot_pending;
    int journal_pending = 0;       // devices vfioctl moved and has not given back
    std::vector<Function> gpus;    // display-class functions, by address
    std::vector<Function> on_vfio; // every function on vfio-pci, by address
};

enum class Format { nfd, kubevirt, nova, ansible, prometheus };
// "nfd", "kubevirt", "nova", "ansible", "prometheus".
const char* format_id(Format f);
Result<Format> parse_format(std::string_view text);
// Where the consumer looks for the file by default, or "" when it has no
// such place (kubevirt and nova are snippets of a larger configuration).
const char* default_path(Format f);

// Kubernetes label rules: a name is an optional DNS-subdomain prefix and
// '/', then 1 to 63 characters of [A-Za-z0-9._-] starting and ending with
// an alphanumeric; a value is empty or the same up to 63 characters.
bool valid_label_name(std::string_view name);
bool valid_label_value(std::string_view value);

// The prefix NFD allows by default for a local feature's labels.
inline constexpr std::string_view k_nfd_prefix = "vfioctl.feature.node.kubernetes.io/";
// NFD ignores a local feature file larger than this.
inline constexpr size_t k_nfd_max_bytes = size_t{64} * 1024;

// NFD's local feature file: "# +expiry-time=" (RFC 3339, UTC) when expiry
// is set, then name=value lines. Every name and value obeys the label rules.
std::string nfd(const Facts& f, std::optional<int64_t> expiry);

// The resource name NVIDIA's KubeVirt GPU device plugin gives a device ID:
// its pci.ids name upper-cased, '/', '.' and white space as '_', anything
// else but [A-Za-z0-9_] dropped, under "nvidia.com/"; the bare device ID
// ("2336") when pci.ids does not name it.
std::string kubevirt_resource(const std::optional<std::string>& model, uint16_t device);
// The permittedHostDevices.pciHostDevices snippet of KubeVirt's
// configuration, one entry per NVIDIA device ID on vfio-pci (the plugin
// names each IOMMU group by its first NVIDIA function); an Error when no
// NVIDIA function is on vfio-pci.
Result<std::string> kubevirt(const Facts& f);

// Nova's numa_policy values.
enum class NumaPolicy { legacy, preferred, required, socket };
Result<NumaPolicy> parse_numa_policy(std::string_view text);
const char* numa_policy_id(NumaPolicy p);
// The [pci] section for nova.conf: a device_spec per display-class function
// on vfio-pci and an alias per vendor:device ID; an Error when none is on
// vfio-pci.
Result<std::string> nova(const Facts& f, NumaPolicy policy);

// The facts Ansible shows as ansible_local.vfioctl.
nlohmann::json ansible(const Facts& f);
// The executable facts.d script that prints them: it runs `binary export
// --format ansible` (with --root when root is not "/").
std::string ansible_fact_script(const std::string& binary, const std::string& root);

// node_exporter's textfile collector format (Prometheus text exposition
// 0.0.4): HELP and TYPE for every metric, label values escaped.
std::string prometheus(const Facts& f);

} // namespace vfioctl::fleet
