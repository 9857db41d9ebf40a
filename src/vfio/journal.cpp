#include "vfio/journal.hpp"

#include "pci/address.hpp"

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

std::string journal_path(const std::string& state_dir) { return state_dir + "/journal.json"; }
std::string lock_path(const std::string& state_dir) { return state_dir + "/lock"; }

namespace {
json opt(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }
std::optional<std::string> opt_str(const json& j, const char* key) {
    if (!j.contains(key) || j[key].is_null()) return std::nullopt;
    return j[key].get<std::string>();
}
} // namespace

Result<Journal> parse_journal(std::string_view text, const std::string& path) {
    Journal j;
    size_t index = 0;
    try {
        json doc = json::parse(text);
        if (!doc.is_object() || doc.value("format", 0) != 1 || !doc["devices"].is_array())
            throw std::runtime_error("not a vfioctl journal (format 1)");
        for (const auto& d : doc["devices"]) {
            JournalEntry e;
            e.address = d.at("address").get<std::string>();
            // The address becomes part of sysfs paths: only a full PCI
            // address ("0000:8a:00.0") may, never "../..".
            auto a = pci::PciAddress::parse(e.address);
            if (!a || a->str() != e.address)
                return Error{"journal entry " + std::to_string(index) + " has '" + e.address +
                                 "' where a PCI address (0000:8a:00.0) belongs",
                             path,
                             "nothing was changed and the file is kept for inspection; restore drivers by hand, "
                             "then move the file away",
                             0};
            ++index;
            e.group = d.at("group").get<int>();
            e.original_driver = opt_str(d, "original_driver");
            e.original_override = opt_str(d, "original_override");
            e.phase = d.at("phase").get<std::string>();
            e.since = d.value("since", "");
            j.entries.push_back(std::move(e));
        }
    } catch (const std::exception& ex) {
        return Error{std::string("the journal is corrupt (") + ex.what() + ")", path,
                     "nothing was changed and the file is kept for inspection; compare it with "
                     "'vfioctl groups', restore drivers by hand, then move the file away",
                     0};
    }
    return j;
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
                           {"original_driver", opt(e.original_driver)},
                           {"original_override", opt(e.original_override)},
                           {"phase", e.phase},
                           {"since", e.since}});
    if (auto st = host.make_dirs(state_dir); !st) return st;
    return host.write_atomic(p, json{{"format", 1}, {"devices", devices}}.dump(2, ' ', false, json::error_handler_t::replace) + "\n", 0600);
}

} // namespace vfioctl::vfio
