#include "vfio/settled.hpp"

#include "host/unique_fd.hpp"
#include "pci/address.hpp"
#include "util/json_words.hpp"

#include <cerrno>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace vfioctl::vfio {

using nlohmann::json;

std::string settled_path(const std::string& state_dir) {
    return state_dir + "/settled.json";
}

namespace {

const char* const k_keep = "the file is left as it is for inspection; move it away to start a new "
                           "record";

using util::json_opt_string;
using util::json_string;
using util::JsonCorrupt;

json entry_json(const JournalEntry& e) {
    return {{"address", e.address},
            {"group", e.group},
            {"boot", boot_json(e.boot)},
            {"phase", e.phase},
            {"original_driver", util::json_or_null(e.original_driver)},
            {"original_override", util::json_or_null(e.original_override)},
            {"since", e.since}};
}

json record_json(const SettledRecord& r) {
    json settlements = json::array();
    for (const auto& s : r.settlements) {
        json devices = json::array();
        for (const auto& e : s.devices)
            devices.push_back(entry_json(e));
        settlements.push_back(
            {{"at", s.at}, {"boot", boot_json(s.boot)}, {"count", s.count}, {"devices", devices}});
    }
    return {{"format", 1}, {"settlements", settlements}};
}

} // namespace

Result<SettledRecord> parse_settled(std::string_view text, const std::string& path) {
    return util::parse_json_file<SettledRecord>(
        "settled record", path, k_keep, [&]() -> Result<SettledRecord> {
            SettledRecord r;
            json doc = json::parse(text);
            if (!doc.is_object() || !doc.contains("format") || doc["format"] != 1 ||
                !doc.contains("settlements") || !doc["settlements"].is_array())
                throw JsonCorrupt{"not a vfioctl settled record (format 1)"};
            if (doc["settlements"].size() > k_settlements_kept)
                throw JsonCorrupt{"more than " + std::to_string(k_settlements_kept) +
                                  " settlements"};
            size_t i = 0;
            for (const auto& js : doc["settlements"]) {
                const std::string at = "settlements[" + std::to_string(i++) + "]";
                if (!js.is_object())
                    throw JsonCorrupt{at + " is " + util::json_type_words(js) + ", not an object"};
                Settlement s;
                s.at = json_string(js, "at", at);
                s.boot = boot_from_json(js, "boot", at);
                auto count = js.find("count");
                if (count == js.end() || !count->is_number_unsigned())
                    throw JsonCorrupt{at + ".count is not a number of devices"};
                s.count = count->get<size_t>();
                auto devices = js.find("devices");
                if (devices == js.end() || !devices->is_array() ||
                    devices->size() > k_devices_listed || devices->size() > s.count)
                    throw JsonCorrupt{at + ".devices is not a list of at most " +
                                      std::to_string(k_devices_listed) + " devices"};
                size_t k = 0;
                for (const auto& d : *devices) {
                    const std::string dat = at + ".devices[" + std::to_string(k++) + "]";
                    if (!d.is_object())
                        throw JsonCorrupt{dat + " is " + util::json_type_words(d) +
                                          ", not an object"};
                    JournalEntry e;
                    e.address = json_string(d, "address", dat);
                    auto a = pci::PciAddress::parse(e.address);
                    if (!a || a->str() != e.address)
                        throw JsonCorrupt{dat + ".address is no PCI address"};
                    auto group = d.find("group");
                    if (group == d.end() || !group->is_number_integer())
                        throw JsonCorrupt{dat + ".group is not a number"};
                    const auto g = group->get<int64_t>();
                    e.group = g < -1 || g > 1'000'000 ? -1 : static_cast<int>(g);
                    e.boot = boot_from_json(d, "boot", dat);
                    e.phase = json_string(d, "phase", dat);
                    e.original_driver = json_opt_string(d, "original_driver", dat);
                    e.original_override = json_opt_string(d, "original_override", dat);
                    e.since = json_string(d, "since", dat);
                    s.devices.push_back(std::move(e));
                }
                r.settlements.push_back(std::move(s));
            }
            return r;
        });
}

Result<SettledRecord> load_settled(const host::Tree& tree, const std::string& state_dir) {
    const std::string p = settled_path(state_dir);
    if (!tree.exists(p)) return SettledRecord{};
    // Read at most one byte over the bound: a huge file is refused, never
    // read whole.
    host::UniqueFd fd(tree.open(p, O_RDONLY | O_CLOEXEC));
    if (!fd) return system_error("cannot read the settled record", tree.path(p).string(), errno);
    std::string text;
    char buf[65536];
    while (text.size() <= k_settled_max_bytes) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return system_error("cannot read the settled record", tree.path(p).string(), errno);
        }
        if (n == 0) break;
        text.append(buf, static_cast<size_t>(n));
    }
    if (text.size() > k_settled_max_bytes)
        return Error{"the settled record is corrupt (over " + std::to_string(k_settled_max_bytes) +
                         " bytes)",
                     tree.path(p).string(), k_keep, 0};
    return parse_settled(text, tree.path(p).string());
}

Status append_settlement(const host::Host& host, const std::string& state_dir, Settlement s) {
    auto r = load_settled(host, state_dir);
    if (!r) return r.error();
    if (s.count < s.devices.size()) s.count = s.devices.size();
    if (s.devices.size() > k_devices_listed) s.devices.resize(k_devices_listed);
    r->settlements.push_back(std::move(s));
    while (r->settlements.size() > k_settlements_kept)
        r->settlements.erase(r->settlements.begin());
    if (auto st = host.make_dirs(state_dir); !st) return st;
    return host.write_atomic(
        settled_path(state_dir),
        record_json(*r).dump(2, ' ', false, json::error_handler_t::replace) + "\n", 0644);
}

} // namespace vfioctl::vfio
