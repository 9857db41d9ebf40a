#include "pci/health.hpp"

#include "host/tree.hpp"
#include "util/strings.hpp"

#include <algorithm>

namespace vfioctl::pci {

namespace {

constexpr uint16_t k_ext_cap_acs = 0x000d;
constexpr uint8_t k_cap_pcie = 0x10;

uint16_t rd16(std::string_view b, size_t at) {
    return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1])
                                                                   << 8);
}

uint32_t rd32(std::string_view b, size_t at) {
    return static_cast<uint32_t>(rd16(b, at)) | static_cast<uint32_t>(rd16(b, at + 2)) << 16;
}

AcsBits acs_bits(uint16_t v) {
    AcsBits b;
    b.source_validation = v & 0x01;
    b.request_redirect = v & 0x04;
    b.completion_redirect = v & 0x08;
    b.upstream_forwarding = v & 0x10;
    return b;
}

std::optional<uint32_t> parse_width(const std::optional<std::string>& text) {
    if (!text) return std::nullopt;
    auto n = util::parse_dec(*text);
    if (!n || *n > 32) return std::nullopt;
    return static_cast<uint32_t>(*n);
}

PowerState parse_power(const std::optional<std::string>& text) {
    if (!text) return PowerState::unknown;
    if (*text == "D0") return PowerState::d0;
    if (*text == "D1") return PowerState::d1;
    if (*text == "D2") return PowerState::d2;
    if (*text == "D3hot") return PowerState::d3hot;
    if (*text == "D3cold") return PowerState::d3cold;
    return PowerState::unknown;
}

} // namespace

std::optional<uint64_t> AerErrors::total() const {
    if (!correctable.total || !nonfatal.total || !fatal.total) return std::nullopt;
    return *correctable.total + *nonfatal.total + *fatal.total;
}

std::optional<uint32_t> parse_link_speed(std::string_view text) {
    const auto words = util::split_ws(text);
    if (words.size() < 2 || words[1] != "GT/s") return std::nullopt;
    const std::string& num = words[0];
    const auto dot = num.find('.');
    auto whole = util::parse_dec(num.substr(0, dot));
    if (!whole || *whole > 1000) return std::nullopt;
    uint64_t mts = *whole * 1000;
    if (dot != std::string::npos) {
        // Up to three digits after the point: "2.5" is 2500 MT/s.
        std::string frac = num.substr(dot + 1);
        if (frac.empty() || frac.size() > 3) return std::nullopt;
        frac.resize(3, '0');
        auto f = util::parse_dec(frac);
        if (!f) return std::nullopt;
        mts += *f;
    }
    if (mts == 0) return std::nullopt;
    return static_cast<uint32_t>(mts);
}

AerCounters parse_aer(std::string_view text) {
    AerCounters c;
    uint64_t sum = 0;
    bool any = false;
    for (const auto& line : util::split(text, '\n')) {
        const auto words = util::split_ws(line);
        if (words.size() != 2) continue;
        auto n = util::parse_dec(words[1]);
        if (!n) continue;
        if (util::starts_with(words[0], "TOTAL_")) {
            c.total = *n;
            continue;
        }
        any = true;
        sum += *n;
        if (*n) c.nonzero.push_back({words[0], *n});
    }
    if (!c.total && any) c.total = sum;
    return c;
}

void parse_bridge_config(std::string_view config, BridgeAcs& out) {
    // The PCI Express capability's type (bits 7:4 of its flags) names the role.
    if (config.size() >= 64 && (rd16(config, 0x06) & 0x10)) {
        size_t at = static_cast<uint8_t>(config[0x34]) & 0xfc;
        for (int guard = 0; at >= 0x40 && at + 4 <= config.size() && guard < 48; ++guard) {
            if (static_cast<uint8_t>(config[at]) == k_cap_pcie) {
                switch ((rd16(config, at + 2) >> 4) & 0xf) {
                case 0x4:
                    out.role = PortRole::root_port;
                    break;
                case 0x5:
                    out.role = PortRole::upstream_port;
                    break;
                case 0x6:
                    out.role = PortRole::downstream_port;
                    break;
                default:
                    out.role = PortRole::other_bridge;
                    break;
                }
                break;
            }
            at = static_cast<uint8_t>(config[at + 1]) & 0xfc;
        }
    }
    // Extended capabilities start at 0x100; 256 bytes (an unprivileged read)
    // do not show them: ACS is then unknown, not absent.
    if (config.size() < 0x104) {
        out.presence = AcsPresence::unknown;
        return;
    }
    out.presence = AcsPresence::absent;
    size_t at = 0x100;
    for (int guard = 0; guard < 512 && at >= 0x100 && at + 8 <= config.size(); ++guard) {
        const uint32_t h = rd32(config, at);
        if (h == 0 || h == 0xffffffffu) break;
        if ((h & 0xffff) == k_ext_cap_acs) {
            out.presence = AcsPresence::present;
            out.capable = acs_bits(rd16(config, at + 4));
            out.enabled = acs_bits(rd16(config, at + 6));
            return;
        }
        at = (h >> 20) & 0xffc;
        if (at == 0) break;
    }
}

void assess_link(PcieLink& l) {
    l.speed_below = l.width_below = false;
    if (!l.speed_mts || !l.max_speed_mts || !l.width || !l.max_width) {
        l.state = LinkState::unknown;
        return;
    }
    // What the link can reach: the lower of the device's and its port's maximum.
    const uint32_t speed_cap =
        l.port_max_speed_mts ? std::min(*l.max_speed_mts, *l.port_max_speed_mts) : *l.max_speed_mts;
    const uint32_t width_cap =
        l.port_max_width ? std::min(*l.max_width, *l.port_max_width) : *l.max_width;
    l.speed_below = *l.speed_mts < speed_cap;
    l.width_below = *l.width < width_cap;
    l.state = l.speed_below || l.width_below ? LinkState::degraded : LinkState::full;
}

DeviceHealth read_health(const host::Tree& host, const Inventory& inv, const PciDevice& d,
                         BridgeCache* cache) {
    DeviceHealth h;
    h.addr = d.addr;
    const std::string base = "/sys/bus/pci/devices/" + d.addr.str() + "/";
    if (auto r = host.attr(base + "reset_method")) h.reset.methods = util::split_ws(*r);

    auto speed = [&](const std::string& p) -> std::optional<uint32_t> {
        auto t = host.attr(p);
        return t ? parse_link_speed(*t) : std::nullopt;
    };
    h.link.speed_mts = speed(base + "current_link_speed");
    h.link.max_speed_mts = speed(base + "max_link_speed");
    h.link.width = parse_width(host.attr(base + "current_link_width"));
    h.link.max_width = parse_width(host.attr(base + "max_link_width"));
    if (d.parent) {
        const std::string port = "/sys/bus/pci/devices/" + d.parent->str() + "/";
        h.link.port_max_speed_mts = speed(port + "max_link_speed");
        h.link.port_max_width = parse_width(host.attr(port + "max_link_width"));
    }
    assess_link(h.link);

    // enumerate reads BARs for GPUs; a GPU listed without its capabilities
    // had them fail (a warning said so).
    if (d.is_gpu() && !(d.bars.empty() && d.capabilities.empty())) {
        uint64_t sum = 0;
        for (const auto& b : d.bars)
            if (b.is_64bit && b.prefetchable && !b.is_io) sum += b.size;
        h.bar64_prefetchable_bytes = sum;
    }

    // Up the tree, nearest bridge first; a cycle cannot last longer than the inventory.
    std::optional<PciAddress> up = d.parent;
    for (size_t guard = 0; up && guard <= inv.devices.size(); ++guard) {
        const PciDevice* b = inv.find(*up);
        if (!b) {
            h.path_complete = false;
            break;
        }
        const auto hit = cache ? cache->find(b->addr) : BridgeCache::iterator{};
        BridgeAcs acs;
        if (cache && hit != cache->end()) {
            acs = hit->second;
        } else {
            acs.addr = b->addr;
            if (auto cfg = host.read("/sys/bus/pci/devices/" + b->addr.str() + "/config"))
                parse_bridge_config(*cfg, acs);
            if (cache) cache->emplace(b->addr, acs);
        }
        h.bridges.push_back(acs);
        if (acs.role == PortRole::root_port) break;
        up = b->parent;
    }

    h.aer = read_aer(host, d.addr);

    if (auto v = host.attr(base + "d3cold_allowed")) {
        if (*v == "1")
            h.d3cold_allowed = true;
        else if (*v == "0")
            h.d3cold_allowed = false;
    }
    h.power = parse_power(host.attr(base + "power_state"));
    return h;
}

AerErrors read_aer(const host::Tree& host, const PciAddress& a) {
    const std::string base = "/sys/bus/pci/devices/" + a.str() + "/";
    auto one = [&](const char* name) {
        auto t = host.read(base + name);
        return t ? parse_aer(*t) : AerCounters{};
    };
    return {one("aer_dev_correctable"), one("aer_dev_nonfatal"), one("aer_dev_fatal")};
}

ReturnHealth check_return(const host::Tree& host, const PciAddress& a, const AerErrors& before,
                          const std::optional<std::string>& expected_driver) {
    ReturnHealth r;
    r.addr = a;
    r.expected_driver = expected_driver;
    const std::string base = "/sys/bus/pci/devices/" + a.str() + "/";
    r.driver = host.link_name(base + "driver");
    // A device that fell off the bus answers every read with all ones.
    if (auto cfg = host.read(base + "config"); cfg && cfg->size() >= 4)
        r.responds = rd16(*cfg, 0) != 0xffff;
    r.power_error = host.attr(base + "power_state") == std::optional<std::string>("error");
    if (auto m = host.attr(base + "reset_method")) r.no_reset = util::split_ws(*m).empty();
    const AerErrors after = read_aer(host, a);
    if (auto b = before.total(), n = after.total(); b && n)
        r.new_aer_errors = *n >= *b ? *n - *b : *n; // counters reset: all of them are new
    if (r.responds == false || r.power_error)
        r.state = ReturnState::wedged;
    else if ((expected_driver && r.driver != expected_driver) || r.no_reset ||
             r.new_aer_errors.value_or(0) > 0)
        r.state = ReturnState::unhealthy;
    else if (!r.responds || !r.new_aer_errors)
        r.state = ReturnState::unknown;
    else
        r.state = ReturnState::healthy;
    return r;
}

const char* return_state_id(ReturnState s) {
    switch (s) {
    case ReturnState::healthy:
        return "healthy";
    case ReturnState::unhealthy:
        return "unhealthy";
    case ReturnState::wedged:
        return "wedged";
    case ReturnState::unknown:
        break;
    }
    return "unknown";
}

const char* link_state_id(LinkState s) {
    switch (s) {
    case LinkState::full:
        return "full";
    case LinkState::degraded:
        return "degraded";
    case LinkState::unknown:
        break;
    }
    return "unknown";
}

const char* acs_presence_id(AcsPresence p) {
    switch (p) {
    case AcsPresence::present:
        return "present";
    case AcsPresence::absent:
        return "absent";
    case AcsPresence::unknown:
        break;
    }
    return "unknown";
}

const char* port_role_id(PortRole r) {
    switch (r) {
    case PortRole::root_port:
        return "root_port";
    case PortRole::upstream_port:
        return "upstream_port";
    case PortRole::downstream_port:
        return "downstream_port";
    case PortRole::other_bridge:
        return "other_bridge";
    case PortRole::unknown:
        break;
    }
    return "unknown";
}

const char* power_state_id(PowerState p) {
    switch (p) {
    case PowerState::d0:
        return "D0";
    case PowerState::d1:
        return "D1";
    case PowerState::d2:
        return "D2";
    case PowerState::d3hot:
        return "D3hot";
    case PowerState::d3cold:
        return "D3cold";
    case PowerState::unknown:
        break;
    }
    return "unknown";
}

} // namespace vfioctl::pci
