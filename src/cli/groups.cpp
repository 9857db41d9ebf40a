// 'vfioctl groups': every IOMMU group, its devices and whether it can go to a VM.

#include "boot/cmdline.hpp"
#include "cli/commands.hpp"
#include "cli/fabric_view.hpp"
#include "cli/health_view.hpp"
#include "cli/model.hpp"
#include "cli/persist_view.hpp"
#include "iommu/diagnosis.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <set>
#include <sstream>

namespace vfioctl::cli {

namespace {

using nlohmann::json;

std::string group_verdict(const iommu::Viability& v) {
    if (!v.critical.empty()) {
        std::vector<std::string> why;
        for (const auto& c : v.critical)
            why.push_back(c.addr.short_str() + " (" + c.reason() + ")");
        return "NOT viable: holds what the host cannot lose: " + util::join(why, ", ");
    }
    if (!v.unknown.empty()) return "NOT viable: members that cannot be read";
    if (v.isolated) return "isolated and viable";
    std::vector<std::string> go;
    for (const auto& a : v.must_go_too)
        go.push_back(a.short_str());
    return "viable, not isolated: these endpoints must go to vfio-pci together: " +
           util::join(go, ", ");
}

bool matches_target(const pci::PciDevice& d, const std::string& target) {
    if (auto a = pci::PciAddress::parse(target)) return d.addr == *a;
    if (auto id = pci::PciId::parse(target)) return d.id() == *id;
    return false;
}

struct Options {
    bool gpu_only = false;
    bool all = false;
    std::string device;
};

Report run_groups(Context& ctx, const Options& opt) {
    auto m = load_host(ctx, ctx.paths.state_dir, true);
    if (!m) return failed(m.error());
    std::set<int> wanted;
    bool filtered = opt.gpu_only || !opt.device.empty();
    // The groups that hold d: the one its link names, or one that lists it
    // when its link is missing (groups that disagree; load_host warned).
    auto want_groups_of = [&](const pci::PciDevice* d) {
        for (const auto& g : m->groups)
            if (std::find(g.devices.begin(), g.devices.end(), d->addr) != g.devices.end())
                wanted.insert(g.number);
    };
    if (!opt.device.empty()) {
        auto found = match_devices(m->inv, opt.device);
        if (!found) return failed(found.error());
        for (const auto* d : *found)
            want_groups_of(d);
    }
    if (opt.gpu_only)
        for (const auto* d : m->inv.gpus())
            want_groups_of(d);

    auto dx =
        iommu::iommu_state(m->facts, boot::interpret(boot::tokenize(m->facts.cmdline)), m->groups);
    const PersistView pv = read_persist_view(ctx.host, m->inv, std::nullopt);
    // Each device's persistent bindings, after its line in the text.
    auto persist_lines = [&](const pci::PciDevice& d) {
        std::string out;
        for (const auto& c : pv.config.claims)
            if ((c.address && *c.address == d.addr) || (c.ids && c.ids->matches(d)))
                out += "      at every boot: " + c.driver + " (" + vfio::source_id(c.source) +
                       ", " + util::printable(c.where) + ")\n";
        return out;
    };
    pci::BridgeCache bridges; // each bridge's config space read once
    auto with_health = [&](json j, const pci::PciDevice& d) {
        j["health"] = health_json(health_view(ctx.host, *m, d, &bridges));
        return j;
    };
    Report r;
    std::ostringstream out;
    json jgroups = json::array();
    int shown = 0;
    for (const auto& g : m->groups) {
        if (filtered && !wanted.count(g.number)) continue;
        ++shown;
        auto v = iommu::assess(g, std::nullopt, m->inv, m->facts);
        json devs = json::array();
        if (!ctx.json)
            out << "IOMMU group " << g.number << (g.type.empty() ? "" : " (" + g.type + ")") << ": "
                << group_verdict(v) << "\n";
        for (const auto& a : g.devices) {
            const pci::PciDevice* d = m->inv.find(a);
            if (!d) {
                if (ctx.json) devs.push_back({{"address", a.str()}, {"unknown", true}});
                if (!ctx.json) out << "  " << a.short_str() << " (not readable)\n";
                continue;
            }
            auto role = iommu::role_of(*d, m->inv, m->facts);
            if (ctx.json) devs.push_back(with_health(device_json(*d, role), *d));
            if (!ctx.json) {
                out << "  " << device_line(*d);
                auto flags = role_flags(role);
                if (!flags.empty()) out << " [" << util::join(flags, ",") << "]";
                out << "\n";
                for (const auto& c : role.critical)
                    out << "      host-critical: " << c.reason() << "\n";
                for (const auto& u : role.in_use)
                    out << "      in use: " << u.what() << "\n";
                out << persist_lines(*d);
            }
        }
        if (!ctx.json) continue;
        json go = json::array();
        for (const auto& a : v.must_go_too)
            go.push_back(a.str());
        json crit = json::array();
        for (const auto& c : v.critical)
            crit.push_back({{"address", c.addr.str()},
                            {"reason", c.reason()},
                            {"kind", host::critical_kind_id(c.kind)}});
        jgroups.push_back({{"number", g.number},
                           {"type", g.type.empty() ? json(nullptr) : json(g.type)},
                           {"viable", v.viable},
                           {"isolated", v.isolated},
                           {"must_go_together", go},
                           {"critical", crit},
                           {"verdict", group_verdict(v)},
                           {"devices", devs}});
    }
    // Devices in no group listed above (all of them while the IOMMU is off).
    // Where the group listings and the devices' links disagree (load_host
    // warned), each device is still shown exactly once: in the group that
    // lists it, else here (its link may name a group that does not exist).
    std::set<pci::PciAddress> in_a_group;
    for (const auto& g : m->groups)
        in_a_group.insert(g.devices.begin(), g.devices.end());
    json ungrouped = json::array();
    std::vector<const pci::PciDevice*> loose;
    for (const auto& d : m->inv.devices) {
        if (in_a_group.count(d.addr)) continue;
        if (filtered && opt.gpu_only && !d.is_gpu()) continue;
        if (filtered && !opt.gpu_only && !opt.device.empty() && !matches_target(d, opt.device))
            continue;
        loose.push_back(&d);
        if (ctx.json)
            ungrouped.push_back(
                with_health(device_json(d, iommu::role_of(d, m->inv, m->facts)), d));
    }
    if (ctx.json) {
        json j = {{"iommu_enabled", dx.enabled},
                  {"group_count", m->groups.size()},
                  {"groups", jgroups},
                  {"ungrouped", ungrouped},
                  {"persistent", persist_json(pv, m->inv)},
                  {"fabric", fabric_json(m->inv)},
                  {"schema_version", k_json_schema_version}};
        if (dx.off_cause) j["off_cause"] = *dx.off_cause;
        r.json = std::move(j);
    } else if (m->groups.empty()) {
        out << "No IOMMU groups: "
            << (dx.enabled ? std::string("the kernel created none")
                           : dx.off_cause.value_or("the IOMMU is off"))
            << "\n";
        if (dx.cmdline_fixable)
            out << "hint: 'vfioctl iommu enable', then reboot\n";
        else
            out << "hint: 'vfioctl status' says why and what to do\n";
    } else if (filtered && shown == 0 && loose.empty()) {
        out << "No IOMMU group matches the filter\n";
    }
    if (!ctx.json && !filtered)
        for (const auto& c : pv.conflicts)
            out << "conflict: " << util::printable(c.text) << "\n";
    if (!ctx.json && !loose.empty() && (opt.all || filtered)) {
        out << "In no IOMMU group:\n";
        for (const auto* d : loose)
            out << "  " << device_line(*d) << "\n";
    } else if (!ctx.json && !loose.empty()) {
        out << loose.size() << " device(s) in no IOMMU group ('vfioctl groups --all' lists them)\n";
    }
    if (!ctx.json && (!filtered || opt.gpu_only)) out << fabric_text(m->inv);
    r.text = out.str();
    return r;
}

} // namespace

Command groups_command() {
    return {"groups", "list IOMMU groups, their devices, flags and whether each can go to a VM",
            [](CLI::App& sub, const services::Paths&) {
                auto opt = std::make_shared<Options>();
                sub.add_flag("--gpu", opt->gpu_only, "only the groups that hold a GPU");
                sub.add_flag("--all", opt->all, "also list the devices that are in no group");
                sub.add_option(
                    "--device", opt->device,
                    "only the group of this device: BDF (8a:00.0) or vendor:device (10de:2336)");
                return [opt](Context& ctx) { return render(ctx, run_groups(ctx, *opt)); };
            }};
}

} // namespace vfioctl::cli
