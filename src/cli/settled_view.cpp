#include "cli/settled_view.hpp"

namespace vfioctl::cli {

using nlohmann::json;

namespace {
json opt(const std::optional<std::string>& s) {
    return s ? json(*s) : json(nullptr);
}
json boot(const vfio::BootId& b) {
    return b.known() ? json(b.str()) : json(nullptr);
}
} // namespace

json settlement_json(const vfio::Settlement& s) {
    json devices = json::array();
    for (const auto& e : s.devices)
        devices.push_back({{"address", e.address},
                           {"group", e.group},
                           {"boot", boot(e.boot)},
                           {"phase", e.phase},
                           {"original_driver", opt(e.original_driver)},
                           {"original_override", opt(e.original_override)},
                           {"since", e.since}});
    return {{"at", s.at}, {"boot", boot(s.boot)}, {"count", s.count}, {"devices", devices}};
}

std::string settlement_text(const vfio::Settlement& s) {
    std::string out = "Settled " + std::to_string(s.count) + " journal entr" +
                      (s.count == 1 ? "y" : "ies") + " of an earlier boot at " + s.at +
                      " (the reboot had given the devices back; none was touched):\n";
    for (const auto& e : s.devices)
        out += "  " + e.address + ": was on " + e.original_driver.value_or("no driver") + ", " +
               e.phase + " since " + (e.since.empty() ? "?" : e.since) + " in boot " +
               e.boot.str() + "\n";
    if (s.devices.size() < s.count)
        out += "  (and " + std::to_string(s.count - s.devices.size()) + " more)\n";
    return out;
}

std::string left_reason(const vfio::JournalEntry& e, const vfio::BootId& current) {
    if (!current.known()) return "current_boot_unknown";
    if (!e.boot.known()) return "boot_unknown";
    return "this_boot";
}

json left_json(const std::vector<vfio::JournalEntry>& left, const vfio::BootId& current) {
    json arr = json::array();
    for (const auto& e : left)
        arr.push_back({{"address", e.address},
                       {"boot", boot(e.boot)},
                       {"phase", e.phase},
                       {"original_driver", opt(e.original_driver)},
                       {"reason", left_reason(e, current)}});
    return arr;
}

} // namespace vfioctl::cli
