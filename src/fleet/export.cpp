#include "fleet/export.hpp"

#include "util/strings.hpp"
#include "util/time.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <deque>
#include <fmt/format.h>
#include <map>
#include <set>

namespace vfioctl::fleet {

namespace {

using nlohmann::json;

bool alnum(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

// [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, 1 to 63 characters.
bool label_word(std::string_view s) {
    if (s.empty() || s.size() > 63) return false;
    if (!alnum(s.front()) || !alnum(s.back())) return false;
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

// A DNS subdomain (RFC 1123): lower-case labels of [a-z0-9-], each starting
// and ending with an alphanumeric, joined by '.', 253 characters at most.
bool dns_subdomain(std::string_view s) {
    if (s.empty() || s.size() > 253) return false;
    size_t start = 0;
    while (start <= s.size()) {
        size_t dot = s.find('.', start);
        std::string_view part = s.substr(start, dot == std::string_view::npos ? dot : dot - start);
        if (part.empty() || part.size() > 63) return false;
        for (char c : part)
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
        if (part.front() == '-' || part.back() == '-') return false;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return true;
}

std::string id4(uint16_t v) {
    return fmt::format("{:04x}", v);
}

std::string rfc3339(int64_t t) {
    return util::utc_time(static_cast<std::time_t>(t));
}

const char* yes_no(bool b) {
    return b ? "true" : "false";
}

// The display-class functions of fs counted by vendor:device ID, in ID order.
std::map<std::pair<uint16_t, uint16_t>, int> count_gpu_ids(const std::vector<Function>& fs) {
    std::map<std::pair<uint16_t, uint16_t>, int> n;
    for (const auto& f : fs)
        if (f.display) ++n[{f.vendor, f.device}];
    return n;
}

int vfio_gpu_count(const Facts& f) {
    return static_cast<int>(
        std::count_if(f.on_vfio.begin(), f.on_vfio.end(), [](const auto& x) { return x.display; }));
}

// A Prometheus label value: host text made printable (control bytes and
// bytes that are not UTF-8 as the text \xNN, util::printable), then
// backslash and double quote escaped.
std::string prom_value(std::string_view s) {
    std::string out;
    for (char c : util::printable(s)) {
        if (c == '\\' || c == '"') out += '\\';
        out += c;
    }
    return out;
}

// One metric family: HELP, TYPE and its samples.
struct Family {
    std::string name;
    std::string help;
    std::vector<std::pair<std::string, std::string>> samples; // labels text, value
};

std::string labels_text(std::initializer_list<std::pair<const char*, std::string>> ls) {
    std::string out;
    for (const auto& [k, v] : ls)
        out += (out.empty() ? "" : ",") + std::string(k) + "=\"" + prom_value(v) + "\"";
    return "{" + out + "}";
}

std::string model_or_id(const Function& g) {
    return g.model.value_or(id4(g.vendor) + ":" + id4(g.device));
}

} // namespace

const char* format_id(Format f) {
    switch (f) {
    case Format::nfd:
        return "nfd";
    case Format::kubevirt:
        return "kubevirt";
    case Format::nova:
        return "nova";
    case Format::ansible:
        return "ansible";
    case Format::prometheus:
        return "prometheus";
    }
    return "?";
}

Result<Format> parse_format(std::string_view text) {
    for (Format f :
         {Format::nfd, Format::kubevirt, Format::nova, Format::ansible, Format::prometheus})
        if (text == format_id(f)) return f;
    return Error{"unknown export format '" + std::string(text) + "'",
                 {},
                 "use one of: nfd, kubevirt, nova, ansible, prometheus",
                 0};
}

const char* default_path(Format f) {
    switch (f) {
    case Format::nfd:
        return "/etc/kubernetes/node-feature-discovery/features.d/vfioctl";
    case Format::ansible:
        return "/etc/ansible/facts.d/vfioctl.fact";
    case Format::prometheus:
        return "/var/lib/prometheus/node-exporter/vfioctl.prom";
    case Format::kubevirt:
    case Format::nova:
        return "";
    }
    return "";
}

bool valid_label_name(std::string_view name) {
    const auto slash = name.find('/');
    if (slash == std::string_view::npos) return label_word(name);
    return dns_subdomain(name.substr(0, slash)) && label_word(name.substr(slash + 1));
}

bool valid_label_value(std::string_view value) {
    return value.empty() || label_word(value);
}

std::string nfd(const Facts& f, std::optional<int64_t> expiry) {
    std::string out;
    if (expiry) out += "# +expiry-time=" + rfc3339(*expiry) + "\n";
    out += fmt::format("# vfioctl {}: read at {}; rewritten by 'vfioctl export --format nfd'\n",
                       f.version, rfc3339(f.now));
    auto label = [&](const std::string& name, const std::string& value) {
        out += std::string(k_nfd_prefix) + name + "=" + value + "\n";
    };
    label("iommu-enabled", yes_no(f.iommu_enabled));
    label("iommu-groups", std::to_string(f.iommu_groups));
    label("passthrough-ready", yes_no(f.passthrough_ready));
    label("verdict", f.verdict);
    label("reboot-pending", f.reboot_pending ? yes_no(*f.reboot_pending) : "unknown");
    label("journal-pending", std::to_string(f.journal_pending));
    label("gpus", std::to_string(f.gpus.size()));
    label("vfio-gpus", std::to_string(vfio_gpu_count(f)));
    for (const auto& [id, n] : count_gpu_ids(f.gpus))
        label("gpus." + id4(id.first) + "-" + id4(id.second), std::to_string(n));
    for (const auto& [id, n] : count_gpu_ids(f.on_vfio))
        label("vfio-gpus." + id4(id.first) + "-" + id4(id.second), std::to_string(n));
    return out;
}

namespace {

// The plugin's device name, without "nvidia.com/"; "" when pci.ids names
// nothing usable.
std::string plugin_name(const std::optional<std::string>& model) {
    if (!model) return "";
    // As the plugin does it (Go): TrimSpace, ToUpper, '/' and '.' as '_',
    // each run of \s ([\t\n\f\r ]) as one '_', then whatever is not
    // [A-Za-z0-9_] dropped.
    const std::string_view trim = " \t\n\v\f\r";
    std::string_view s = *model;
    const auto first = s.find_first_not_of(trim);
    s = first == std::string_view::npos ? std::string_view{}
                                        : s.substr(first, s.find_last_not_of(trim) - first + 1);
    std::string name;
    bool in_space = false;
    for (char c : s) {
        const auto u = static_cast<unsigned char>(c);
        const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
        if (space && !in_space) name += '_';
        in_space = space;
        if (space) continue;
        if (c == '/' || c == '.')
            name += '_';
        else if (std::isalnum(u) || c == '_')
            name += static_cast<char>(std::toupper(u));
    }
    return name;
}

} // namespace

std::string kubevirt_resource(const std::optional<std::string>& model, uint16_t device) {
    const std::string name = plugin_name(model);
    // The plugin falls back to the device ID when it finds no name.
    return "nvidia.com/" + (name.empty() ? id4(device) : name);
}

Result<std::string> kubevirt(const Facts& f) {
    // The plugin walks /sys/bus/pci/devices in name order and names each
    // IOMMU group by the device ID of its first NVIDIA function on vfio-pci.
    std::set<int> groups_seen;
    std::map<uint16_t, std::pair<std::optional<std::string>, int>> by_device; // model, groups
    for (const auto& fn : f.on_vfio) {
        if (fn.vendor != 0x10de || !fn.iommu_group) continue;
        if (!groups_seen.insert(*fn.iommu_group).second) continue;
        auto& e = by_device[fn.device];
        e.first = fn.model;
        ++e.second;
    }
    if (by_device.empty())
        return Error{"no NVIDIA device is on vfio-pci: KubeVirt's GPU device plugin would "
                     "offer none",
                     {},
                     "bind the GPUs first: 'vfioctl bind --all-gpus' (add --with-nvswitches "
                     "on an HGX board)",
                     0};
    std::string out = fmt::format(
        "# KubeVirt: the devices NVIDIA's KubeVirt GPU device plugin offers on this host.\n"
        "# Merge under spec.configuration of the KubeVirt CR (vfioctl {}).\n"
        "permittedHostDevices:\n  pciHostDevices:\n",
        f.version);
    for (const auto& [device, e] : by_device)
        out += fmt::format("    # {} IOMMU group(s) on this host\n"
                           "    - pciVendorSelector: \"10DE:{:04X}\"\n"
                           "      resourceName: \"{}\"\n"
                           "      externalResourceProvider: true\n",
                           e.second, device, kubevirt_resource(e.first, device));
    return out;
}

Result<NumaPolicy> parse_numa_policy(std::string_view text) {
    for (NumaPolicy p :
         {NumaPolicy::legacy, NumaPolicy::preferred, NumaPolicy::required, NumaPolicy::socket})
        if (text == numa_policy_id(p)) return p;
    return Error{"unknown numa_policy '" + std::string(text) + "'",
                 {},
                 "use one of: legacy, preferred, required, socket (Nova's values)",
                 0};
}

const char* numa_policy_id(NumaPolicy p) {
    switch (p) {
    case NumaPolicy::legacy:
        return "legacy";
    case NumaPolicy::preferred:
        return "preferred";
    case NumaPolicy::required:
        return "required";
    case NumaPolicy::socket:
        return "socket";
    }
    return "?";
}

Result<std::string> nova(const Facts& f, NumaPolicy policy) {
    std::vector<const Function*> gpus;
    for (const auto& fn : f.on_vfio)
        if (fn.display) gpus.push_back(&fn);
    if (gpus.empty())
        return Error{"no GPU is on vfio-pci: Nova's device_spec would match nothing",
                     {},
                     "bind the GPUs first: 'vfioctl bind --all-gpus'",
                     0};
    std::string out = fmt::format("# OpenStack Nova: the GPUs on vfio-pci on this host "
                                  "(vfioctl {}).\n"
                                  "# device_spec on the compute node, alias on the API and "
                                  "compute nodes.\n[pci]\n",
                                  f.version);
    for (const auto* g : gpus) {
        json spec = {
            {"vendor_id", id4(g->vendor)}, {"product_id", id4(g->device)}, {"address", g->address}};
        out += "device_spec = " + spec.dump() + "\n";
    }
    std::map<std::pair<uint16_t, uint16_t>, const Function*> models;
    for (const auto* g : gpus)
        models.emplace(std::pair{g->vendor, g->device}, g);
    for (const auto& [id, g] : models) {
        // The alias name: the plugin-style model name lower-cased, or the IDs.
        std::string name = util::to_lower(plugin_name(g->model));
        if (name.empty()) name = id4(id.first) + "-" + id4(id.second);
        json alias = {{"vendor_id", id4(id.first)},
                      {"product_id", id4(id.second)},
                      {"device_type", "type-PCI"},
                      {"name", name},
                      {"numa_policy", numa_policy_id(policy)}};
        out += "alias = " + alias.dump() + "\n";
    }
    return out;
}

nlohmann::json ansible(const Facts& f) {
    json gpus = json::array();
    for (const auto& g : f.gpus)
        gpus.push_back({{"address", g.address},
                        {"vendor_id", id4(g.vendor)},
                        {"device_id", id4(g.device)},
                        {"model", g.model ? json(*g.model) : json(nullptr)},
                        {"driver", g.driver ? json(*g.driver) : json(nullptr)},
                        {"iommu_group", g.iommu_group ? json(*g.iommu_group) : json(nullptr)},
                        {"numa_node", g.numa_node ? json(*g.numa_node) : json(nullptr)},
                        {"verdict", g.verdict}});
    json on_vfio = json::array();
    for (const auto& fn : f.on_vfio)
        on_vfio.push_back(fn.address);
    return {{"vfioctl_version", f.version},
            {"read_at", rfc3339(f.now)},
            {"iommu_enabled", f.iommu_enabled},
            {"iommu_groups", f.iommu_groups},
            {"verdict", f.verdict},
            {"passthrough_ready", f.passthrough_ready},
            {"reboot_pending", f.reboot_pending ? json(*f.reboot_pending) : json(nullptr)},
            {"journal_pending", f.journal_pending},
            {"gpus", gpus},
            {"vfio_gpus", vfio_gpu_count(f)},
            {"on_vfio", on_vfio}};
}

std::string ansible_fact_script(const std::string& binary, const std::string& root) {
    auto quote = [](const std::string& s) {
        std::string q = "'";
        for (char c : s)
            q += c == '\'' ? std::string("'\\''") : std::string(1, c);
        return q + "'";
    };
    std::string args = root.empty() || root == "/" ? "" : " --root " + quote(root);
    return "#!/bin/sh\n"
           "# Ansible local facts (ansible_local.vfioctl), written by 'vfioctl export "
           "--format ansible --write'.\n"
           "exec " +
           quote(binary) + args + " export --format ansible\n";
}

std::string prometheus(const Facts& f) {
    std::deque<Family> fams; // a deque: gauge() hands out references that stay valid
    auto gauge = [&](std::string name, std::string help) -> Family& {
        fams.push_back({std::move(name), std::move(help), {}});
        return fams.back();
    };
    gauge("vfioctl_info", "vfioctl's version; always 1.")
        .samples.emplace_back(labels_text({{"version", f.version}}), "1");
    gauge("vfioctl_last_run_timestamp_seconds", "When vfioctl read these facts (Unix time).")
        .samples.emplace_back("", std::to_string(f.now));
    gauge("vfioctl_iommu_enabled", "1 when the kernel's IOMMU is on (units or groups exist).")
        .samples.emplace_back("", f.iommu_enabled ? "1" : "0");
    gauge("vfioctl_iommu_groups", "The number of IOMMU groups.")
        .samples.emplace_back("", std::to_string(f.iommu_groups));
    gauge("vfioctl_passthrough_ready", "1 when a GPU of this host can be passed through now.")
        .samples.emplace_back(labels_text({{"verdict", f.verdict}}),
                              f.passthrough_ready ? "1" : "0");
    gauge("vfioctl_reboot_pending_known",
          "1 when vfioctl knows whether the next boot's command line differs from the "
          "running one.")
        .samples.emplace_back("", f.reboot_pending ? "1" : "0");
    if (f.reboot_pending)
        gauge("vfioctl_reboot_pending",
              "1 when the next boot's command line differs from the running one; absent when "
              "unknown.")
            .samples.emplace_back("", *f.reboot_pending ? "1" : "0");
    gauge("vfioctl_journal_pending",
          "Devices vfioctl moved to vfio-pci and has not given back (its bind journal).")
        .samples.emplace_back("", std::to_string(f.journal_pending));
    auto& info = gauge("vfioctl_gpu_info",
                       "One series per GPU: its IDs, model, driver (\"\" when none), IOMMU "
                       "group and NUMA node (\"\" when unknown); always 1.");
    auto& ready = gauge("vfioctl_gpu_passthrough_ready",
                        "1 when this GPU can be passed through now (verdict will_work).");
    auto& vfio = gauge("vfioctl_gpu_on_vfio", "1 when this GPU is bound to vfio-pci.");
    for (const auto& g : f.gpus) {
        info.samples.emplace_back(
            labels_text({{"address", g.address},
                         {"vendor_id", id4(g.vendor)},
                         {"device_id", id4(g.device)},
                         {"model", model_or_id(g)},
                         {"driver", g.driver.value_or("")},
                         {"iommu_group", g.iommu_group ? std::to_string(*g.iommu_group) : ""},
                         {"numa_node", g.numa_node ? std::to_string(*g.numa_node) : ""}}),
            "1");
        ready.samples.emplace_back(labels_text({{"address", g.address}, {"verdict", g.verdict}}),
                                   g.verdict == "will_work" ? "1" : "0");
        vfio.samples.emplace_back(labels_text({{"address", g.address}}),
                                  g.driver == std::optional<std::string>("vfio-pci") ? "1" : "0");
    }
    std::string out;
    for (const auto& fam : fams) {
        if (fam.samples.empty()) continue;
        out += "# HELP " + fam.name + " " + fam.help + "\n# TYPE " + fam.name + " gauge\n";
        for (const auto& [labels, value] : fam.samples)
            out += fam.name + labels + " " + value + "\n";
    }
    return out;
}

} // namespace vfioctl::fleet
