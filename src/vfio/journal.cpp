#include "vfio/journal.hpp"

#include "pci/address.hpp"
#include "util/json_words.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace vfioctl::vfio {

using nlohmann::json;

JournalEntry* Journal::find(const std::string& address) {
    for (auto& e : entries)
        if (e.address == address) return &e;
    return nullptr;
}

void Journal::erase(const std::string& address) {
    entries.erase(std::remove_if(entries.begin(), entries.end(),
                                 [&](const JournalEntry& e) { return e.address == address; }),
                  entries.end());
}

std::string journal_path(const std::string& state_dir) {
    return state_dir + "/journal.json";
}
std::string lock_path(const std::string& state_dir) {
    return state_dir + "/lock";
}

namespace {
using util::json_field;
using util::json_opt_string;
using util::json_string;
using util::JsonCorrupt;

// A driver's name becomes part of sysfs paths (drivers/NAME/bind) and a
// module name: a plain name of printable ASCII, never "..", "/" or an
// escape sequence.
bool driver_name_ok(const std::string& n) {
    if (n.empty() || n.size() > 64 || n == "." || n == "..") return false;
    for (unsigned char c : n)
        if (c <= 0x20 || c >= 0x7f || c == '/') return false;
    return true;
}
} // namespace

Result<Journal> parse_journal(std::string_view text, const std::string& path) {
    Journal j;
    size_t index = 0;
    const char* const keep =
        "nothing was changed and the file is kept for inspection; compare it with "
        "'vfioctl groups', restore drivers by hand, then move the file away";
    return util::parse_json_file<Journal>("journal", path, keep, [&]() -> Result<Journal> {
        json doc = json::parse(text);
        if (!doc.is_object() || !doc.contains("format") || doc["format"] != 1 ||
            !doc.contains("devices") || !doc["devices"].is_array())
            throw JsonCorrupt{"not a vfioctl journal (format 1)"};
        for (const auto& d : doc["devices"]) {
            const std::string at = "devices[" + std::to_string(index) + "]";
            if (!d.is_object())
                throw JsonCorrupt{at + " is " + util::json_type_words(d) + ", not an object"};
            JournalEntry e;
            e.address = json_string(d, "address", at);
            // The address becomes part of sysfs paths: only a full PCI
            // address ("0000:8a:00.0") may, never "../..".
            auto a = pci::PciAddress::parse(e.address);
            if (!a || a->str() != e.address)
                return Error{"journal entry " + std::to_string(index) + " has '" + e.address +
                                 "' where a PCI address (0000:8a:00.0) belongs",
                             path,
                             "nothing was changed and the file is kept for inspection; restore "
                             "drivers by hand, "
                             "then move the file away",
                             0};
            const json& group = json_field(d, "group", at);
            if (!group.is_number_integer() || group.get<int64_t>() < 0 ||
                group.get<int64_t>() > 1'000'000)
                throw JsonCorrupt{at + ".group is " +
                                  (group.is_number() ? std::string("out of range")
                                                     : util::json_type_words(group)) +
                                  ", not a group number"};
            e.group = group.get<int>();
            e.original_driver = json_opt_string(d, "original_driver", at);
            if (e.original_driver && !driver_name_ok(*e.original_driver))
                throw JsonCorrupt{at + ".original_driver '" + *e.original_driver +
                                  "' is not a driver's name"};
            e.original_override = json_opt_string(d, "original_override", at);
            e.phase = json_string(d, "phase", at);
            auto since = d.find("since");
            if (since != d.end() && since->is_string()) e.since = since->get<std::string>();
            // No "boot" (a journal written before the field) or null: the
            // boot is unknown. A string must be a boot id as the kernel
            // writes it; anything else is corruption, never a guess.
            e.boot = boot_from_json(d, "boot", at);
            ++index;
            j.entries.push_back(std::move(e));
        }
        return j;
    });
}

Result<Journal> load_journal(const host::Host& host, const std::string& state_dir) {
    const std::string p = journal_path(state_dir);
    if (!host.exists(p)) return Journal{};
    auto text = host.read(p);
    if (!text) return text.error();
    return parse_journal(*text, host.path(p).string());
}

Status save_journal(const host::Host& host, const std::string& state_dir, const Journal& j) {
    const std::string p = journal_path(state_dir);
    if (j.entries.empty()) {
        if (!host.exists(p)) return {};
        return host.remove(p);
    }
    json devices = json::array();
    for (const auto& e : j.entries)
        devices.push_back({{"address", e.address},
                           {"group", e.group},
                           {"original_driver", util::json_or_null(e.original_driver)},
                           {"original_override", util::json_or_null(e.original_override)},
                           {"phase", e.phase},
                           {"since", e.since},
                           {"boot", boot_json(e.boot)}});
    if (auto st = host.make_dirs(state_dir); !st) return st;
    return host.write_atomic(p,
                             json{{"format", 1}, {"devices", devices}}.dump(
                                 2, ' ', false, json::error_handler_t::replace) +
                                 "\n",
                             0600);
}

} // namespace vfioctl::vfio
