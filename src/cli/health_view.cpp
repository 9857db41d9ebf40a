#include "cli/health_view.hpp"

#include "util/strings.hpp"
#include "vm/argv.hpp"
#include "vm/profile.hpp"

#include <fmt/format.h>

namespace vfioctl::cli {

namespace {

using nlohmann::json;

template <typename T> json opt(const std::optional<T>& v) {
    return v ? json(*v) : json(nullptr);
}

// 16000 → "16.0 GT/s", 2500 → "2.5 GT/s".
std::string speed_text(const std::optional<uint32_t>& mts) {
    if (!mts) return "? GT/s";
    return fmt::format("{}.{} GT/s", *mts / 1000, (*mts % 1000) / 100);
}

// "128.0 GiB", "512.0 MiB": sizes as people read them.
std::string bytes_text(uint64_t b) {
    constexpr double gib = 1024.0 * 1024 * 1024;
    if (b >= (1ull << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(b) / gib);
    return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1024.0 * 1024));
}

std::string width_text(const std::optional<uint32_t>& w) {
    return w ? "x" + std::to_string(*w) : std::string("x?");
}

// The ACS control bits a port that should isolate leaves off.
std::vector<std::string> missing_bits(const pci::BridgeAcs& b) {
    std::vector<std::string> out;
    if (!b.enabled.source_validation) out.emplace_back("Source Validation");
    if (!b.enabled.request_redirect) out.emplace_back("Request Redirect");
    if (!b.enabled.completion_redirect) out.emplace_back("Completion Redirect");
    if (!b.enabled.upstream_forwarding) out.emplace_back("Upstream Forwarding");
    return out;
}

std::string role_text(pci::PortRole r) {
    switch (r) {
    case pci::PortRole::root_port:
        return "root port";
    case pci::PortRole::upstream_port:
        return "switch upstream port";
    case pci::PortRole::downstream_port:
        return "switch downstream port";
    case pci::PortRole::other_bridge:
        return "bridge";
    case pci::PortRole::unknown:
        break;
    }
    return "bridge of unknown kind";
}

// What one bridge's ACS means for the devices below it, in words.
std::string acs_meaning(const pci::BridgeAcs& b) {
    const std::string who = b.addr.short_str() + " (" + role_text(b.role) + ")";
    if (b.presence == pci::AcsPresence::unknown)
        return who +
               ": ACS unknown (config space past 256 bytes cannot be read: run as root, or the "
               "bridge has none)";
    if (!b.needs_acs() && b.role != pci::PortRole::unknown)
        return who + ": ACS not needed on this port";
    if (b.presence == pci::AcsPresence::absent)
        return who + ": no ACS: devices below it may share an IOMMU group and can reach each "
                     "other directly, past the IOMMU";
    if (!b.isolates())
        return who + ": ACS without " + util::join(missing_bits(b), ", ") +
               ": devices below it may share an IOMMU group and can reach each other";
    return who + ": ACS isolates (SV, RR, CR, UF); peer-to-peer traffic is redirected up to the "
                 "root complex (slower GPUDirect P2P)";
}

std::string aer_list(const pci::AerCounters& c) {
    std::vector<std::string> out;
    for (const auto& e : c.nonzero)
        out.push_back(e.name + " " + std::to_string(e.count));
    return util::join(out, ", ");
}

std::optional<BarFit> bar_fit(const pci::PciDevice& d, const pci::DeviceHealth& h,
                              const HostModel& m) {
    if (!h.bar64_prefetchable_bytes) return std::nullopt;
    const vm::MmioPlan plan = vm::plan_mmio(vm::group_slots({&d}), vm::Profile{}.memory_mib);
    if (plan.bar_bytes == 0) return std::nullopt;
    BarFit f;
    f.bar_bytes = plan.bar_bytes;
    f.window_bytes = plan.window_bytes;
    f.address_bits = std::max(plan.address_bits, plan.phys_bits);
    f.host_phys_bits = m.facts.cpu.phys_bits;
    // With KVM the guest gets the host CPU's width (host-phys-bits=on): the
    // window must end below it.
    if (f.host_phys_bits) f.fits = f.address_bits <= *f.host_phys_bits;
    return f;
}

void judge(HealthView& v) {
    const auto& h = v.facts;
    if (h.reset.none())
        v.problems.emplace_back(
            "no reset method: the kernel cannot reset this device, so it cannot be safely "
            "handed to another VM or back to the host after a VM had it");
    if (h.link.state == pci::LinkState::degraded) {
        std::string p =
            fmt::format("PCIe link degraded: running {} at {}, capable of {} at {}",
                        width_text(h.link.width), speed_text(h.link.speed_mts),
                        width_text(h.link.port_max_width && h.link.max_width
                                       ? std::min(*h.link.port_max_width, *h.link.max_width)
                                       : h.link.max_width),
                        speed_text(h.link.port_max_speed_mts && h.link.max_speed_mts
                                       ? std::min(*h.link.port_max_speed_mts, *h.link.max_speed_mts)
                                       : h.link.max_speed_mts));
        if (h.link.speed_below)
            p += " (a device idle in a low-power state may lower its link speed: check again "
                 "while it is busy)";
        if (h.link.width_below) p += " (fewer lanes: check the board's seating and riser)";
        v.problems.push_back(p);
    }
    if (v.fit && v.fit->fits == false)
        v.problems.push_back(fmt::format(
            "64-bit BARs of {} need a {} window that ends above 2^{}, beyond the host CPU's {} "
            "physical address bits: the guest cannot map them",
            bytes_text(v.fit->bar_bytes), bytes_text(v.fit->window_bytes), v.fit->address_bits - 1,
            v.fit->host_phys_bits.value_or(0)));
    for (const auto& b : h.bridges)
        if (b.needs_acs() && b.presence != pci::AcsPresence::unknown && !b.isolates())
            v.problems.push_back(acs_meaning(b));
    const auto& a = h.aer;
    const uint64_t c = a.correctable.total.value_or(0), n = a.nonfatal.total.value_or(0),
                   f = a.fatal.total.value_or(0);
    if (c + n + f > 0) {
        std::vector<std::string> parts;
        for (const auto* k : {&a.correctable, &a.nonfatal, &a.fatal})
            if (!k->nonzero.empty()) parts.push_back(aer_list(*k));
        v.problems.push_back(fmt::format(
            "AER logged {} correctable, {} non-fatal and {} fatal errors since boot{}", c, n, f,
            parts.empty() ? std::string() : " (" + util::join(parts, "; ") + ")"));
    }
}

std::vector<std::string> unknowns(const HealthView& v) {
    const auto& h = v.facts;
    std::vector<std::string> out;
    if (!h.reset.methods) out.emplace_back("reset_method");
    if (h.link.state == pci::LinkState::unknown) out.emplace_back("link");
    // No fit to judge without BARs (a non-GPU), or without the host's address width.
    if (!h.bar64_prefetchable_bytes || (v.fit && !v.fit->fits)) out.emplace_back("bar_fit");
    bool acs_unknown = !h.path_complete;
    for (const auto& b : h.bridges)
        acs_unknown |= b.presence == pci::AcsPresence::unknown;
    if (acs_unknown) out.emplace_back("acs");
    if (!h.aer.total()) out.emplace_back("aer");
    if (!h.d3cold_allowed) out.emplace_back("d3cold_allowed");
    if (h.power == pci::PowerState::unknown) out.emplace_back("power_state");
    return out;
}

json aer_json(const pci::AerCounters& c) {
    json nz = json::array();
    for (const auto& e : c.nonzero)
        nz.push_back({{"name", e.name}, {"count", e.count}});
    return {{"total", opt(c.total)}, {"nonzero", nz}};
}

json bits_json(const pci::BridgeAcs& b, const pci::AcsBits& bits) {
    const bool known = b.presence == pci::AcsPresence::present;
    auto bit = [&](bool v) { return known ? json(v) : json(nullptr); };
    return {{"source_validation", bit(bits.source_validation)},
            {"request_redirect", bit(bits.request_redirect)},
            {"completion_redirect", bit(bits.completion_redirect)},
            {"upstream_forwarding", bit(bits.upstream_forwarding)}};
}

} // namespace

HealthView health_view(const host::Tree& host, const HostModel& m, const pci::PciDevice& d,
                       pci::BridgeCache* cache) {
    HealthView v;
    v.facts = pci::read_health(host, m.inv, d, cache);
    v.fit = bar_fit(d, v.facts, m);
    judge(v);
    return v;
}

HealthViews gpu_health(const host::Tree& host, const HostModel& m) {
    HealthViews out;
    pci::BridgeCache cache;
    for (const auto* g : m.inv.gpus())
        out.emplace(g->addr, health_view(host, m, *g, &cache));
    return out;
}

json health_json(const HealthView& v) {
    const auto& h = v.facts;
    json reset = {{"methods", opt(h.reset.methods)}, {"none", h.reset.none()}};
    json link = {{"state", pci::link_state_id(h.link.state)},
                 {"speed_mts", opt(h.link.speed_mts)},
                 {"width", opt(h.link.width)},
                 {"max_speed_mts", opt(h.link.max_speed_mts)},
                 {"max_width", opt(h.link.max_width)},
                 {"port_max_speed_mts", opt(h.link.port_max_speed_mts)},
                 {"port_max_width", opt(h.link.port_max_width)},
                 {"speed_below_max", h.link.speed_below},
                 {"width_below_max", h.link.width_below}};
    json bars = {{"prefetchable_64bit_bytes", opt(h.bar64_prefetchable_bytes)},
                 {"planned_bytes", v.fit ? json(v.fit->bar_bytes) : json(nullptr)},
                 {"window_bytes", v.fit ? json(v.fit->window_bytes) : json(nullptr)},
                 {"address_bits", v.fit ? json(v.fit->address_bits) : json(nullptr)},
                 {"host_phys_bits", v.fit ? opt(v.fit->host_phys_bits) : json(nullptr)},
                 {"fits", v.fit ? opt(v.fit->fits) : json(nullptr)}};
    json bridges = json::array();
    for (const auto& b : h.bridges) {
        const bool known = b.presence != pci::AcsPresence::unknown;
        bridges.push_back({{"address", b.addr.str()},
                           {"role", pci::port_role_id(b.role)},
                           {"acs", pci::acs_presence_id(b.presence)},
                           {"needs_acs", b.needs_acs()},
                           {"capable", bits_json(b, b.capable)},
                           {"enabled", bits_json(b, b.enabled)},
                           {"isolates", known ? json(b.isolates()) : json(nullptr)},
                           {"p2p_redirected", known ? json(b.redirects_p2p()) : json(nullptr)},
                           {"meaning", acs_meaning(b)}});
    }
    json acs = {{"path_complete", h.path_complete}, {"bridges", bridges}};
    json aer = {{"correctable", aer_json(h.aer.correctable)},
                {"nonfatal", aer_json(h.aer.nonfatal)},
                {"fatal", aer_json(h.aer.fatal)},
                {"total", opt(h.aer.total())}};
    json power = {{"d3cold_allowed", opt(h.d3cold_allowed)},
                  {"state", pci::power_state_id(h.power)}};
    return {{"reset", reset}, {"link", link},   {"bars", bars},           {"acs", acs},
            {"aer", aer},     {"power", power}, {"problems", v.problems}, {"unknown", unknowns(v)}};
}

void print_health(std::ostream& o, const HealthView& v, const std::string& indent) {
    const auto& h = v.facts;
    const std::string pad = indent + "  ";
    o << indent << "health:\n";
    o << pad << "reset:        "
      << (!h.reset.methods ? std::string("unknown (no readable reset_method)")
          : h.reset.none() ? std::string("NONE: the device cannot be reset")
                           : util::join(*h.reset.methods, " "))
      << "\n";
    o << pad << "link:         ";
    if (h.link.state == pci::LinkState::unknown)
        o << "unknown (link speed or width cannot be read)\n";
    else
        o << fmt::format("{} at {} of {} at {}{}\n", width_text(h.link.width),
                         speed_text(h.link.speed_mts), width_text(h.link.max_width),
                         speed_text(h.link.max_speed_mts),
                         h.link.state == pci::LinkState::degraded ? ": DEGRADED" : "");
    o << pad << "64-bit BARs:  ";
    if (!h.bar64_prefetchable_bytes)
        o << "unknown\n";
    else if (!v.fit && *h.bar64_prefetchable_bytes == 0)
        o << "none\n";
    else if (!v.fit)
        o << bytes_text(*h.bar64_prefetchable_bytes) << " prefetchable\n";
    else
        o << fmt::format("{} prefetchable; a VM gets a {} window ({} address bits): {}\n",
                         bytes_text(*h.bar64_prefetchable_bytes), bytes_text(v.fit->window_bytes),
                         v.fit->address_bits,
                         !v.fit->fits ? std::string("fit unknown (host address width unknown)")
                         : *v.fit->fits
                             ? "fits the host's " + std::to_string(*v.fit->host_phys_bits) + " bits"
                             : "does NOT fit the host's " + std::to_string(*v.fit->host_phys_bits) +
                                   " bits");
    if (!h.path_complete) o << pad << "ACS:          unknown past a bridge that cannot be read\n";
    for (const auto& b : h.bridges)
        o << pad << "ACS:          " << acs_meaning(b) << "\n";
    o << pad << "AER errors:   ";
    if (auto t = h.aer.total())
        o << fmt::format("{} correctable, {} non-fatal, {} fatal\n", *h.aer.correctable.total,
                         *h.aer.nonfatal.total, *h.aer.fatal.total);
    else
        o << "unknown (no readable aer_dev_* counters)\n";
    o << pad << "power:        " << pci::power_state_id(h.power) << ", D3cold "
      << (!h.d3cold_allowed   ? "allowed: unknown"
          : *h.d3cold_allowed ? "allowed"
                              : "not allowed")
      << "\n";
    for (const auto& p : v.problems)
        o << pad << "problem:      " << p << "\n";
}

json return_json(const pci::ReturnHealth& r) {
    return {{"address", r.addr.str()},
            {"state", pci::return_state_id(r.state)},
            {"expected_driver", opt(r.expected_driver)},
            {"driver", opt(r.driver)},
            {"responds", opt(r.responds)},
            {"power_error", r.power_error},
            {"no_reset_method", r.no_reset},
            {"new_aer_errors", opt(r.new_aer_errors)}};
}

std::string return_text(const pci::ReturnHealth& r) {
    const std::string who = r.addr.short_str();
    switch (r.state) {
    case pci::ReturnState::healthy:
        return {};
    case pci::ReturnState::wedged:
        return "warning: " + who + " looks wedged: " +
               (r.responds == false ? std::string("its config space reads all ones")
                                    : std::string("its power state is 'error'")) +
               "; it did not come back from the VM and needs a host reboot before anything "
               "uses it\n";
    case pci::ReturnState::unhealthy: {
        std::vector<std::string> why;
        if (r.expected_driver && r.driver != r.expected_driver)
            why.push_back(r.driver ? "it is on " + *r.driver + ", not " + *r.expected_driver
                                   : "no driver bound it (expected " + *r.expected_driver + ")");
        if (r.no_reset) why.emplace_back("it has no reset method, so it was not reset");
        if (r.new_aer_errors.value_or(0) > 0)
            why.push_back(std::to_string(*r.new_aer_errors) +
                          " new AER error(s) since 'unbind' began");
        return "warning: " + who + " did not come back healthy: " + util::join(why, "; ") +
               "; if it does not work, a host reboot resets it\n";
    }
    case pci::ReturnState::unknown:
        break;
    }
    std::vector<std::string> what;
    if (!r.responds) what.emplace_back("its config space cannot be read");
    if (!r.new_aer_errors) what.emplace_back("its AER counters cannot be read");
    return "note: " + who + ": whether it came back healthy is unknown (" + util::join(what, ", ") +
           ")\n";
}

} // namespace vfioctl::cli
