#include "boot/journal.hpp"

#include "host/files.hpp"
#include "util/json_words.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

namespace vfioctl::boot {

namespace {

using nlohmann::json;

// Bytes as lower-case hex digits (JSON strings hold only UTF-8), and back;
// nullopt for anything but pairs of hex digits.
std::string hex(std::string_view b) {
    static const char* const d = "0123456789abcdef";
    std::string out;
    out.reserve(b.size() * 2);
    for (unsigned char c : b) {
        out += d[c >> 4];
        out += d[c & 15];
    }
    return out;
}
std::optional<std::string> unhex(std::string_view h) {
    if (h.size() % 2) return std::nullopt;
    auto v = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    std::string out;
    for (size_t i = 0; i < h.size(); i += 2) {
        int a = v(h[i]), b = v(h[i + 1]);
        if (a < 0 || b < 0) return std::nullopt;
        out += static_cast<char>(a * 16 + b);
    }
    return out;
}

// Fingerprints, formats and operations to JSON.
json fp_json(const Fingerprint& f) {
    return {{"size", f.size}, {"fnv1a64", f.hash}};
}

Format format_from(const std::string& s) {
    for (Format f : {Format::grub_shell, Format::cmdline_file, Format::loader_entry,
                     Format::kernelstub_json, Format::whole_file})
        if (s == format_id(f)) return f;
    return Format::cmdline_file;
}

// Reads the journal's fields: a missing field reads as empty, a field of the
// wrong type is an Error naming the file and the key (the first one found).
struct Reader {
    std::string file;
    std::optional<Error> error;

    void wrong(const std::string& key, const json& v, const char* want) {
        if (!error)
            error = Error{
                "the boot journal has " + util::json_type_words(v) + " where " + want +
                    " belongs, at " + key,
                file, "move it aside (it may say which backups to restore by hand), then retry", 0};
    }
    std::string str(const json& o, const std::string& at, const char* key) {
        auto it = o.find(key);
        if (it == o.end() || it->is_null()) return {};
        if (!it->is_string()) {
            wrong(at + "." + key, *it, "a string");
            return {};
        }
        return it->get<std::string>();
    }
    std::vector<std::string> strs(const json& o, const std::string& at, const char* key) {
        std::vector<std::string> out;
        auto it = o.find(key);
        if (it == o.end() || it->is_null()) return out;
        if (!it->is_array()) {
            wrong(at + "." + key, *it, "a list of strings");
            return out;
        }
        for (size_t i = 0; i < it->size(); ++i) {
            const json& e = (*it)[i];
            if (!e.is_string())
                wrong(at + "." + key + "[" + std::to_string(i) + "]", e, "a string");
            else
                out.push_back(e.get<std::string>());
        }
        return out;
    }
    bool flag(const json& o, const std::string& at, const char* key) {
        auto it = o.find(key);
        if (it == o.end() || it->is_null()) return false;
        if (!it->is_boolean()) {
            wrong(at + "." + key, *it, "true or false");
            return false;
        }
        return it->get<bool>();
    }
    uint64_t number(const json& o, const std::string& at, const char* key, uint64_t dflt) {
        auto it = o.find(key);
        if (it == o.end() || it->is_null()) return dflt;
        if (!it->is_number_unsigned()) {
            wrong(at + "." + key, *it, "a whole number");
            return dflt;
        }
        return it->get<uint64_t>();
    }
    // An array of objects (absent: none).
    const json* objects(const json& o, const std::string& at, const char* key) {
        auto it = o.find(key);
        if (it == o.end() || it->is_null()) return nullptr;
        if (!it->is_array()) {
            wrong(at + "." + key, *it, "a list");
            return nullptr;
        }
        for (size_t i = 0; i < it->size(); ++i)
            if (!(*it)[i].is_object()) {
                wrong(at + "." + key + "[" + std::to_string(i) + "]", (*it)[i], "an object");
                return nullptr;
            }
        return &*it;
    }
    Fingerprint fp(const json& o, const std::string& at, const char* key) {
        Fingerprint f;
        auto it = o.find(key);
        if (it == o.end() || it->is_null()) return f;
        if (!it->is_object()) {
            wrong(at + "." + key, *it, "an object");
            return f;
        }
        auto size = it->find("size");
        if (size != it->end() && !size->is_null()) {
            if (!size->is_number_unsigned())
                wrong(at + "." + key + ".size", *size, "a whole number");
            else
                f.size = size->get<uint64_t>();
        }
        f.hash = str(*it, at + "." + key, "fnv1a64");
        return f;
    }

    Operation op(const json& j, const std::string& at) {
        Operation o;
        o.id = str(j, at, "id");
        o.action = str(j, at, "action");
        o.time = str(j, at, "time");
        o.loader = str(j, at, "loader");
        o.state = str(j, at, "state");
        o.reverts = str(j, at, "reverts");
        o.reverted_by = str(j, at, "reverted_by");
        o.regenerate = strs(j, at, "regenerate");
        o.added = strs(j, at, "added");
        o.removed = strs(j, at, "removed");
        if (const json* files = objects(j, at, "files"))
            for (size_t i = 0; i < files->size(); ++i) {
                const json& f = (*files)[i];
                const std::string fa = at + ".files[" + std::to_string(i) + "]";
                JournalFile jf{str(f, fa, "path"), format_from(str(f, fa, "format")),
                               str(f, fa, "backup"), fp(f, fa, "before"), fp(f, fa, "after")};
                jf.created = flag(f, fa, "created");
                jf.removed = flag(f, fa, "removed");
                jf.mode = static_cast<unsigned>(number(f, fa, "mode", 0644));
                if (auto c = unhex(str(f, fa, "content_hex")))
                    jf.content = std::move(*c);
                else
                    wrong(fa + ".content_hex", f["content_hex"], "hexadecimal digits");
                o.files.push_back(std::move(jf));
            }
        if (auto t = j.find("trial"); t != j.end() && !t->is_null()) {
            if (!t->is_object()) {
                wrong(at + ".trial", *t, "an object");
            } else {
                const std::string ta = at + ".trial";
                TrialInfo ti;
                ti.marker = str(*t, ta, "marker");
                ti.entry = str(*t, ta, "entry");
                ti.cmdline = str(*t, ta, "cmdline");
                ti.boot_id = str(*t, ta, "boot_id");
                ti.panic_s = static_cast<int>(number(*t, ta, "panic_s", 0) & 0xffff);
                ti.oneshot = strs(*t, ta, "oneshot");
                ti.goal_action = str(*t, ta, "goal_action");
                ti.goal_platform = str(*t, ta, "goal_platform");
                ti.goal_pt = !t->contains("goal_pt") || flag(*t, ta, "goal_pt");
                ti.confirmed_by = str(*t, ta, "confirmed_by");
                o.trial = std::move(ti);
            }
        }
        if (const json* changes = objects(j, at, "changes"))
            for (size_t i = 0; i < changes->size(); ++i) {
                const json& c = (*changes)[i];
                const std::string ca = at + ".changes[" + std::to_string(i) + "]";
                o.changes.push_back({str(c, ca, "path"), str(c, ca, "variable"),
                                     str(c, ca, "removed"), str(c, ca, "added")});
            }
        return o;
    }
};

json op_json(const Operation& o) {
    json files = json::array();
    for (const auto& f : o.files) {
        json jf = {{"path", f.path},
                   {"format", format_id(f.format)},
                   {"backup", f.backup},
                   {"before", fp_json(f.before)},
                   {"after", fp_json(f.after)}};
        if (f.created) {
            jf["created"] = true;
            jf["mode"] = f.mode;
        }
        if (f.removed) {
            jf["removed"] = true;
            jf["mode"] = f.mode;
            if (!f.content.empty()) jf["content_hex"] = hex(f.content);
        }
        files.push_back(std::move(jf));
    }
    json changes = json::array();
    for (const auto& c : o.changes)
        changes.push_back({{"path", c.path},
                           {"variable", c.variable},
                           {"removed", c.removed},
                           {"added", c.added}});
    json j = {{"id", o.id},         {"action", o.action},   {"time", o.time},
              {"loader", o.loader}, {"state", o.state},     {"regenerate", o.regenerate},
              {"added", o.added},   {"removed", o.removed}, {"files", files},
              {"changes", changes}};
    if (o.trial)
        j["trial"] = {
            {"marker", o.trial->marker},
            {"entry", o.trial->entry},
            {"cmdline", o.trial->cmdline},
            {"boot_id", o.trial->boot_id.empty() ? json(nullptr) : json(o.trial->boot_id)},
            {"panic_s", o.trial->panic_s},
            {"oneshot", o.trial->oneshot},
            {"goal_action", o.trial->goal_action},
            {"goal_platform", o.trial->goal_platform},
            {"goal_pt", o.trial->goal_pt},
            {"confirmed_by", o.trial->confirmed_by}};
    if (!o.reverts.empty()) j["reverts"] = o.reverts;
    if (!o.reverted_by.empty()) j["reverted_by"] = o.reverted_by;
    return j;
}

} // namespace

Fingerprint fingerprint(std::string_view data) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : data) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    char buf[17];
    (void)std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return {data.size(), buf};
}

const Operation* Journal::last_undoable() const {
    for (auto it = operations.rbegin(); it != operations.rend(); ++it) {
        // Only the boot configuration's own changes: a trial, an enable, a
        // disable (not a revert, nor the files of a persistent binding).
        if (it->action != "enable" && it->action != "disable" && it->action != "trial") continue;
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
    while (d.size() > 1 && d.back() == '/')
        d.pop_back();
    return d + "/boot-journal.json";
}

Result<Journal> parse_journal(std::string_view text, const std::string& path) {
    Journal jr;
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("operations") ||
        !j["operations"].is_array())
        return Error{"the boot journal is not valid JSON", path,
                     "move it aside (it may say which backups to restore by hand), then retry", 0};
    Reader r{path, std::nullopt};
    const json& ops = j["operations"];
    for (size_t i = 0; i < ops.size() && !r.error; ++i) {
        const std::string at = "operations[" + std::to_string(i) + "]";
        if (!ops[i].is_object())
            r.wrong(at, ops[i], "an object");
        else
            jr.operations.push_back(r.op(ops[i], at));
    }
    if (r.error) return *r.error;
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
    for (const auto& o : jr.operations)
        ops.push_back(op_json(o));
    json j = {{"version", 1}, {"operations", ops}};
    return host::replace_file(h, journal_path(state_dir),
                              j.dump(2, ' ', false, json::error_handler_t::replace) + "\n",
                              "boot.journal", 0644);
}

} // namespace vfioctl::boot
