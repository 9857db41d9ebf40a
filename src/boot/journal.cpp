#include "boot/journal.hpp"

#include "host/files.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace vfioctl::boot {

namespace {

using nlohmann::json;

// Fingerprints, formats and operations to and from JSON; missing fields read as empty.
json fp_json(const Fingerprint& f) { return {{"size", f.size}, {"fnv1a64", f.hash}}; }

Fingerprint fp_from(const json& j) {
    Fingerprint f;
    f.size = j.value("size", uint64_t{0});
    f.hash = j.value("fnv1a64", std::string());
    return f;
}

Format format_from(const std::string& s) {
    for (Format f : {Format::grub_shell, Format::cmdline_file, Format::loader_entry, Format::kernelstub_json})
        if (s == format_id(f)) return f;
    return Format::cmdline_file;
}

json op_json(const Operation& o) {
    json files = json::array();
    for (const auto& f : o.files)
        files.push_back({{"path", f.path},
                         {"format", format_id(f.format)},
                         {"backup", f.backup},
                         {"before", fp_json(f.before)},
                         {"after", fp_json(f.after)}});
    json changes = json::array();
    for (const auto& c : o.changes)
        changes.push_back({{"path", c.path}, {"variable", c.variable}, {"removed", c.removed}, {"added", c.added}});
    json j = {{"id", o.id},         {"action", o.action},   {"time", o.time},         {"loader", o.loader},
              {"state", o.state},   {"regenerate", o.regenerate}, {"added", o.added}, {"removed", o.removed},
              {"files", files},     {"changes", changes}};
    if (!o.reverts.empty()) j["reverts"] = o.reverts;
    if (!o.reverted_by.empty()) j["reverted_by"] = o.reverted_by;
    return j;
}

Operation op_from(const json& j) {
    Operation o;
    o.id = j.value("id", std::string());
    o.action = j.value("action", std::string());
    o.time = j.value("time", std::string());
    o.loader = j.value("loader", std::string());
    o.state = j.value("state", std::string());
    o.reverts = j.value("reverts", std::string());
    o.reverted_by = j.value("reverted_by", std::string());
    o.regenerate = j.value("regenerate", std::vector<std::string>{});
    o.added = j.value("added", std::vector<std::string>{});
    o.removed = j.value("removed", std::vector<std::string>{});
    if (j.contains("files") && j["files"].is_array())
        for (const auto& f : j["files"])
            o.files.push_back({f.value("path", std::string()), format_from(f.value("format", std::string())),
                               f.value("backup", std::string()), fp_from(f.value("before", json::object())),
                               fp_from(f.value("after", json::object()))});
    if (j.contains("changes") && j["changes"].is_array())
        for (const auto& c : j["changes"])
            o.changes.push_back({c.value("path", std::string()), c.value("variable", std::string()),
                                 c.value("removed", std::string()), c.value("added", std::string())});
    return o;
}

} // namespace

Fingerprint fingerprint(std::string_view data) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : data) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return {data.size(), buf};
}

const Operation* Journal::last_undoable() const {
    for (auto it = operations.rbegin(); it != operations.rend(); ++it) {
        if (it->action == "revert") continue;
        if (it->state == "done" || it->state == "pending") return &*it;
    }
    return nullptr;
}

Operation* Journal::find(std::string_view id) {
    for (auto& o : operations)
        if (o.id == id) return &o;
    return nullptr;
}

std::string journal_path(std::string_view state_dir) {
    std::string d(state_dir);
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    return d + "/boot-journal.json";
}

Result<Journal> parse_journal(std::string_view text, const std::string& path) {
    Journal jr;
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("operations") || !j["operations"].is_array())
        return Error{"the boot journal is not valid JSON", path,
                     "move it aside (it may say which backups to restore by hand), then retry", 0};
    try {
        for (const auto& o : j["operations"])
            if (o.is_object()) jr.operations.push_back(op_from(o));
    } catch (const json::exception& e) {
        // A field of the wrong type ("files": 3, "added": [1]).
        return Error{std::string("the boot journal is corrupt (") + e.what() + ")", path,
                     "move it aside (it may say which backups to restore by hand), then retry", 0};
    }
    return jr;
}

Result<Journal> load_journal(const host::Host& h, std::string_view state_dir) {
    const std::string p = journal_path(state_dir);
    if (!h.exists(p)) return Journal{};
    auto text = h.read(p);
    if (!text) return text.error();
    return parse_journal(*text, p);
}

Status save_journal(const host::Host& h, std::string_view state_dir, const Journal& jr) {
    json ops = json::array();
    for (const auto& o : jr.operations) ops.push_back(op_json(o));
    json j = {{"version", 1}, {"operations", ops}};
    return host::replace_file(h, journal_path(state_dir), j.dump(2) + "\n", "boot.journal", 0644);
}

} // namespace vfioctl::boot
