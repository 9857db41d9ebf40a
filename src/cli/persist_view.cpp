#include "cli/persist_view.hpp"

#include "util/strings.hpp"

#include <algorithm>

namespace vfioctl::cli {

namespace {

using nlohmann::json;

// The devices of this host a claim takes.
std::vector<pci::PciAddress> claimed(const vfio::Claim& c, const pci::Inventory& inv) {
    std::vector<pci::PciAddress> out;
    if (c.address) {
        if (inv.find(*c.address)) out.push_back(*c.address);
    } else if (c.ids) {
        for (const auto& d : inv.devices)
            if (c.ids->matches(d)) out.push_back(d.addr);
    }
    return out;
}

bool wanted(const std::vector<pci::PciAddress>& devices, const std::vector<pci::PciAddress>& only) {
    if (only.empty()) return true;
    return std::any_of(devices.begin(), devices.end(), [&](const auto& a) {
        return std::find(only.begin(), only.end(), a) != only.end();
    });
}

bool wanted(const vfio::Claim& c, const pci::Inventory& inv,
            const std::vector<pci::PciAddress>& only) {
    if (only.empty()) return true;
    if (c.address) return std::find(only.begin(), only.end(), *c.address) != only.end();
    return wanted(claimed(c, inv), only);
}

bool wanted(const vfio::Conflict& c, const std::vector<pci::PciAddress>& only) {
    if (only.empty() || !c.address) return true;
    return std::find(only.begin(), only.end(), *c.address) != only.end();
}

std::string what(const vfio::Claim& c) {
    return c.address ? c.address->str() : "ids " + c.ids->str();
}

} // namespace

PersistView read_persist_view(const host::Tree& host, const pci::Inventory& inv,
                              const std::optional<std::string>& next_cmdline) {
    PersistView v;
    v.config = vfio::read_persist(host, next_cmdline);
    v.conflicts = vfio::find_conflicts(v.config, inv);
    v.hooks = vfio::boot_hooks(host);
    return v;
}

json persist_json(const PersistView& v, const pci::Inventory& inv,
                  const std::vector<pci::PciAddress>& only) {
    json bindings = json::array();
    for (const auto& c : v.config.claims) {
        if (!wanted(c, inv, only)) continue;
        json devs = json::array();
        for (const auto& a : claimed(c, inv))
            devs.push_back(a.str());
        bindings.push_back({{"source", vfio::source_id(c.source)},
                            {"where", c.where},
                            {"address", c.address ? json(c.address->str()) : json(nullptr)},
                            {"ids", c.ids ? json(c.ids->str()) : json(nullptr)},
                            {"driver", c.driver},
                            {"devices", devs}});
    }
    json softdeps = json::array();
    for (const auto& s : v.config.softdeps)
        softdeps.push_back({{"module", s.module}, {"where", s.where}});
    json conflicts = json::array();
    for (const auto& c : v.conflicts)
        if (wanted(c, only))
            conflicts.push_back({{"kind", vfio::conflict_kind_id(c.kind)},
                                 {"address", c.address ? json(c.address->str()) : json(nullptr)},
                                 {"where", c.where},
                                 {"text", c.text}});
    json problems = json::array();
    bool known = true;
    for (const auto& p : v.config.problems) {
        problems.push_back({{"source", vfio::source_id(p.source)},
                            {"where", p.where},
                            {"text", p.text},
                            {"unreadable", p.unreadable}});
        known = known && !p.unreadable;
    }
    return {{"bindings", bindings},
            {"softdeps", softdeps},
            {"conflicts", conflicts},
            {"problems", problems},
            {"masked", v.config.masked},
            {"known", known},
            {"boot_hooks", {{"installed", v.hooks.ok()}, {"missing", v.hooks.missing}}}};
}

std::string persist_text(const PersistView& v, const pci::Inventory& inv,
                         const std::vector<pci::PciAddress>& only) {
    std::string out;
    for (const auto& c : v.config.claims) {
        if (!wanted(c, inv, only)) continue;
        std::vector<std::string> devs;
        if (c.ids)
            for (const auto& a : claimed(c, inv))
                devs.push_back(a.short_str());
        out +=
            "  " + what(c) + " -> " + c.driver + " at every boot: " + vfio::source_id(c.source) +
            " (" + c.where + ")" +
            (c.ids ? devs.empty() ? "; no device here matches" : "; takes " + util::join(devs, ", ")
                   : std::string()) +
            (c.address && !inv.find(*c.address) ? "; no such device here" : "") + "\n";
    }
    if (only.empty())
        for (const auto& s : v.config.softdeps)
            out += "  softdep " + s.module + " pre: vfio-pci (" + s.where + ")\n";
    for (const auto& c : v.conflicts)
        if (wanted(c, only)) out += "  conflict: " + c.text + "\n";
    for (const auto& p : v.config.problems)
        out += std::string(p.unreadable ? "  cannot read: " : "  not understood: ") + p.where +
               ": " + p.text + "\n";
    if (out.empty()) return out;
    return util::printable(out, true);
}

} // namespace vfioctl::cli
