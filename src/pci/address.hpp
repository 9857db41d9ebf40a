#pragma once
// PciAddress: domain:bus:device.function, parsed from the forms users type.

#include "util/result.hpp"

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace vfioctl::pci {

struct PciAddress {
    uint32_t domain = 0;
    uint8_t bus = 0;
    uint8_t dev = 0;
    uint8_t fn = 0;

    // Parses "8a:00.0" or "0000:8a:00.0"; an Error with a hint on anything else.
    static Result<PciAddress> parse(std::string_view text);
    // "0000:8a:00.0".
    std::string str() const;
    // "8a:00.0" when the domain is 0, else the full form.
    std::string short_str() const;
    // The same slot (domain, bus, device) with another function.
    bool same_slot(const PciAddress& o) const {
        return domain == o.domain && bus == o.bus && dev == o.dev;
    }
    // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads the defaulted operator
    auto operator<=>(const PciAddress&) const = default;
};

// A vendor:device ID pair as users type it: "10de:2336" or the seed's "10de 2336".
struct PciId {
    uint16_t vendor = 0;
    uint16_t device = 0;
    static Result<PciId> parse(std::string_view text);
    std::string str() const;
    auto operator<=>(const PciId&) const = default;
};

} // namespace vfioctl::pci
