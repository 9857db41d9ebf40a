#include "pci/address.hpp"

#include "util/strings.hpp"

#include <cctype>
#include <cstdio>

namespace vfioctl::pci {

namespace {
bool all_hex(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
    return true;
}
Error bad_bdf(std::string_view text) {
    return Error{"malformed PCI address '" + std::string(text) + "'",
                 {},
                 "write it as BUS:DEVICE.FUNCTION (8a:00.0) or DOMAIN:BUS:DEVICE.FUNCTION "
                 "(0000:8a:00.0); 'vfioctl groups' lists the devices",
                 0};
}
} // namespace

Result<PciAddress> PciAddress::parse(std::string_view text) {
    std::string_view s = util::trim(text);
    auto parts = util::split(s, ':');
    if (parts.size() != 2 && parts.size() != 3) return bad_bdf(text);
    std::string dom = parts.size() == 3 ? parts[0] : "0";
    const std::string& bus = parts[parts.size() - 2];
    auto devfn = util::split(parts.back(), '.');
    if (devfn.size() != 2) return bad_bdf(text);
    if (!all_hex(dom) || dom.size() > 8 || !all_hex(bus) || bus.size() > 2 || !all_hex(devfn[0]) ||
        devfn[0].size() > 2 || devfn[1].size() != 1 || !all_hex(devfn[1]))
        return bad_bdf(text);
    PciAddress a;
    a.domain = static_cast<uint32_t>(*util::parse_hex(dom));
    a.bus = static_cast<uint8_t>(*util::parse_hex(bus));
    auto d = *util::parse_hex(devfn[0]);
    auto f = *util::parse_hex(devfn[1]);
    if (d > 0x1f || f > 7) return bad_bdf(text);
    a.dev = static_cast<uint8_t>(d);
    a.fn = static_cast<uint8_t>(f);
    return a;
}

std::string PciAddress::str() const {
    char buf[32];
    (void)std::snprintf(buf, sizeof buf, "%04x:%02x:%02x.%x", domain, bus, dev, fn);
    return buf;
}

std::string PciAddress::short_str() const {
    if (domain != 0) return str();
    char buf[16];
    (void)std::snprintf(buf, sizeof buf, "%02x:%02x.%x", bus, dev, fn);
    return buf;
}

Result<PciId> PciId::parse(std::string_view text) {
    std::string_view s = util::trim(text);
    size_t sep = s.find_first_of(": ");
    Error bad{"malformed vendor:device ID '" + std::string(text) + "'",
              {},
              "write it as four hex digits each, e.g. 10de:2336 or \"10de 2336\"",
              0};
    if (sep == std::string_view::npos) return bad;
    std::string_view v = s.substr(0, sep);
    std::string_view d = util::trim(s.substr(sep + 1));
    if (v.size() != 4 || d.size() != 4 || !all_hex(v) || !all_hex(d)) return bad;
    return PciId{static_cast<uint16_t>(*util::parse_hex(v)),
                 static_cast<uint16_t>(*util::parse_hex(d))};
}

std::string PciId::str() const {
    char buf[16];
    (void)std::snprintf(buf, sizeof buf, "%04x:%04x", vendor, device);
    return buf;
}

} // namespace vfioctl::pci
