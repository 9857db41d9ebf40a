#include "vm/profile.hpp"

#include "util/strings.hpp"

#include <cstdlib>
#include <toml++/toml.h>

namespace vfioctl::vm {

namespace {

// "FILE:LINE: " for a node, or "FILE: " when toml++ knows no position.
std::string where(const std::string& file, const toml::source_region& src) {
    if (src.begin.line == 0) return file + ": ";
    return file + ":" + std::to_string(src.begin.line) + ": ";
}

Error bad(const std::string& file, const toml::source_region& src, const std::string& what) {
    return Error{where(file, src) + what, file,
                 "keys: memory cpus machine accel share_host_root share ssh_port console_log gpus "
                 "extra_args firmware ovmf_code ovmf_vars numa hugepages pin_vcpus and [boot] disk "
                 "kernel initrd append",
                 0};
}

std::string type_name(const toml::node& n) {
    switch (n.type()) {
    case toml::node_type::string:
        return "a string";
    case toml::node_type::integer:
        return "an integer";
    case toml::node_type::floating_point:
        return "a float";
    case toml::node_type::boolean:
        return "a boolean";
    case toml::node_type::array:
        return "an array";
    case toml::node_type::table:
        return "a table";
    default:
        return "a date or time";
    }
}

Result<std::string> want_string(const std::string& file, const std::string& key,
                                const toml::node& n) {
    if (const auto* s = n.as_string()) return s->get();
    return bad(file, n.source(), "key '" + key + "' must be a string, not " + type_name(n));
}

Result<int64_t> want_int(const std::string& file, const std::string& key, const toml::node& n,
                         int64_t lo, int64_t hi) {
    const auto* i = n.as_integer();
    if (!i)
        return bad(file, n.source(), "key '" + key + "' must be an integer, not " + type_name(n));
    if (i->get() < lo || i->get() > hi)
        return bad(file, n.source(),
                   "key '" + key + "' must be between " + std::to_string(lo) + " and " +
                       std::to_string(hi));
    return i->get();
}

Result<std::vector<std::string>> want_strings(const std::string& file, const std::string& key,
                                              const toml::node& n) {
    const auto* a = n.as_array();
    if (!a)
        return bad(file, n.source(),
                   "key '" + key + "' must be an array of strings, not " + type_name(n));
    std::vector<std::string> out;
    for (const auto& e : *a) {
        const auto* s = e.as_string();
        if (!s)
            return bad(file, e.source(),
                       "key '" + key + "' must hold only strings, not " + type_name(e));
        out.push_back(s->get());
    }
    return out;
}

Status read_boot(const std::string& file, const toml::table& t, BootSpec& b) {
    for (auto&& [k, v] : t) {
        const std::string key(k.str());
        std::string* dst = key == "disk"     ? &b.disk
                           : key == "kernel" ? &b.kernel
                           : key == "initrd" ? &b.initrd
                           : key == "append" ? &b.append
                                             : nullptr;
        if (!dst) return bad(file, k.source(), "unknown key 'boot." + key + "'");
        auto s = want_string(file, "boot." + key, v);
        if (!s) return s.error();
        *dst = *s;
    }
    return {};
}

} // namespace

const char* accel_id(Accel a) {
    switch (a) {
    case Accel::kvm:
        return "kvm";
    case Accel::tcg:
        return "tcg";
    default:
        return "auto";
    }
}

Result<uint64_t> parse_memory(std::string_view text) {
    std::string t = util::to_lower(util::trim(text));
    uint64_t mul = 1;
    for (const auto& [suffix, m] : std::initializer_list<std::pair<const char*, uint64_t>>{
             {"gib", 1024}, {"mib", 1}, {"g", 1024}, {"m", 1}}) {
        std::string_view sv(suffix);
        if (t.size() > sv.size() && t.compare(t.size() - sv.size(), sv.size(), sv) == 0) {
            t.resize(t.size() - sv.size());
            mul = m;
            break;
        }
    }
    auto n = util::parse_dec(t);
    if (!n || *n == 0 || *n > (1ull << 32))
        return Error{"bad memory size '" + std::string(text) + "'",
                     {},
                     "give MiB (2048) or a size (2G, 512M)",
                     0};
    return *n * mul;
}

Result<Accel> parse_accel(std::string_view text) {
    if (text == "auto") return Accel::automatic;
    if (text == "kvm") return Accel::kvm;
    if (text == "tcg") return Accel::tcg;
    return Error{"bad accelerator '" + std::string(text) + "'", {}, "use auto, kvm or tcg", 0};
}

Result<ShareMode> parse_share(std::string_view text) {
    if (text == "auto") return ShareMode::automatic;
    if (text == "9p") return ShareMode::ninep;
    if (text == "virtiofs") return ShareMode::virtiofs;
    return Error{"bad share '" + std::string(text) + "'", {}, "use auto, 9p or virtiofs", 0};
}

namespace {

// A string key with a fixed set of values; the parser's Error names them.
template <typename T>
Result<T> want_choice(const std::string& file, const std::string& key, const toml::node& n,
                      Result<T> (*parse)(std::string_view)) {
    auto s = want_string(file, key, n);
    if (!s) return s.error();
    auto v = parse(*s);
    if (!v) return bad(file, n.source(), v.error().message + " (" + v.error().hint + ")");
    return *v;
}

} // namespace

Result<Profile> parse_profile(std::string_view text, const std::string& file,
                              const std::string& name) {
    toml::table tbl;
    try {
        tbl = toml::parse(text, file);
    } catch (const toml::parse_error& e) {
        return Error{where(file, e.source()) + std::string(e.description()), file,
                     "the profile is TOML: key = value, strings in quotes", 0};
    }
    Profile p;
    p.name = name;
    p.source = file;
    for (auto&& [k, v] : tbl) {
        const std::string key(k.str());
        if (key == "memory") {
            if (v.is_integer()) {
                auto n = want_int(file, key, v, 1, 1ll << 32);
                if (!n) return n.error();
                p.memory_mib = static_cast<uint64_t>(*n);
            } else {
                auto s = want_string(file, key, v);
                if (!s)
                    return bad(file, v.source(),
                               "key 'memory' must be MiB or a size string (\"4G\"), not " +
                                   type_name(v));
                auto m = parse_memory(*s);
                if (!m) return bad(file, v.source(), m.error().message);
                p.memory_mib = *m;
            }
        } else if (key == "cpus") {
            auto n = want_int(file, key, v, 1, 1024);
            if (!n) return n.error();
            p.cpus = static_cast<int>(*n);
        } else if (key == "machine") {
            auto s = want_string(file, key, v);
            if (!s) return s.error();
            p.machine = *s;
        } else if (key == "accel") {
            auto a = want_choice(file, key, v, parse_accel);
            if (!a) return a.error();
            p.accel = *a;
        } else if (key == "boot") {
            const auto* t = v.as_table();
            if (!t)
                return bad(file, v.source(),
                           "key 'boot' must be a table ([boot]), not " + type_name(v));
            if (auto s = read_boot(file, *t, p.boot); !s) return s.error();
        } else if (key == "share_host_root") {
            const auto* b = v.as_boolean();
            if (!b)
                return bad(file, v.source(),
                           "key 'share_host_root' must be true or false, not " + type_name(v));
            p.share_host_root = b->get();
        } else if (key == "share") {
            auto m = want_choice(file, key, v, parse_share);
            if (!m) return m.error();
            p.share = *m;
        } else if (key == "ssh_port") {
            auto n = want_int(file, key, v, 1, 65535);
            if (!n) return n.error();
            p.ssh_port = static_cast<int>(*n);
        } else if (key == "console_log") {
            auto s = want_string(file, key, v);
            if (!s) return s.error();
            p.console_log = *s;
        } else if (key == "numa") {
            Result<NumaWish> w = NumaWish{};
            if (const auto* i = v.as_integer())
                w = i->get() >= 0 ? parse_numa(std::to_string(i->get()))
                                  : parse_numa("-" + std::to_string(-i->get()));
            else if (v.is_string())
                w = parse_numa(v.as_string()->get());
            else
                return bad(file, v.source(),
                           "key 'numa' must be \"auto\", \"off\" or a node number, not " +
                               type_name(v));
            if (!w) return bad(file, v.source(), w.error().message + " (" + w.error().hint + ")");
            p.numa = *w;
        } else if (key == "hugepages") {
            auto h = want_choice(file, key, v, parse_hugepages);
            if (!h) return h.error();
            p.hugepages = *h;
        } else if (key == "pin_vcpus") {
            const auto* b = v.as_boolean();
            if (!b)
                return bad(file, v.source(),
                           "key 'pin_vcpus' must be true or false, not " + type_name(v));
            p.pin_vcpus = b->get();
        } else if (key == "gpus" || key == "extra_args") {
            auto a = want_strings(file, key, v);
            if (!a) return a.error();
            (key == "gpus" ? p.gpus : p.extra_args) = *a;
        } else if (key == "firmware") {
            auto f = want_choice(file, key, v, parse_firmware);
            if (!f) return f.error();
            p.firmware.kind = *f;
        } else if (key == "ovmf_code" || key == "ovmf_vars") {
            auto s = want_string(file, key, v);
            if (!s) return s.error();
            (key == "ovmf_code" ? p.firmware.ovmf_code : p.firmware.ovmf_vars) = *s;
        } else {
            return bad(file, k.source(), "unknown key '" + key + "'");
        }
    }
    if (!p.boot.disk.empty() && !p.boot.kernel.empty())
        return Error{file + ": [boot] has both disk and kernel", file,
                     "boot either a disk image or a kernel", 0};
    return p;
}

std::vector<std::string> profile_paths(const std::string& name) {
    if (name.find('/') != std::string::npos ||
        (name.size() > 5 && name.compare(name.size() - 5, 5, ".toml") == 0))
        return {name};
    std::vector<std::string> out;
    std::string base;
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x)
        base = x;
    else if (const char* h = std::getenv("HOME"); h && *h)
        base = std::string(h) + "/.config";
    if (!base.empty()) out.push_back(base + "/vfioctl/vms/" + name + ".toml");
    out.push_back("/etc/vfioctl/vms/" + name + ".toml");
    return out;
}

Result<Profile> load_profile(const host::Tree& host, const host::Tree& user_files,
                             const std::string& name, bool allow_missing) {
    auto paths = profile_paths(name);
    for (size_t i = 0; i < paths.size(); ++i) {
        const auto& path = paths[i];
        // /etc is the host's (under --root); the user's own files are read as they are.
        const bool host_path = util::starts_with(path, "/etc/");
        Result<std::string> text = host_path ? host.read(path) : user_files.read(path);
        if (!text) {
            if (text.error().errnum == ENOENT) continue;
            return text.error();
        }
        std::string vm_name = name;
        if (paths.size() == 1) {
            vm_name = std::filesystem::path(name).stem().string();
        }
        return parse_profile(*text, path, vm_name);
    }
    if (allow_missing) {
        Profile p;
        p.name = paths.size() == 1 ? std::filesystem::path(name).stem().string() : name;
        return p;
    }
    return Error{"no profile '" + name + "'",
                 {},
                 "looked in " + util::join(paths, " and ") +
                     "; write one there, or give --kernel or --disk to boot without one",
                 0};
}

Result<Profile> load_profile(const host::Tree& host, const std::string& name, bool allow_missing) {
    // The user's files are never under --root; a live host is its own.
    if (host.is_live()) return load_profile(host, host, name, allow_missing);
    return load_profile(host, host::Tree("/"), name, allow_missing);
}

Status apply_overrides(Profile& p, const ProfileOverrides& o) {
    if (o.memory) {
        auto m = parse_memory(*o.memory);
        if (!m) return m.error();
        p.memory_mib = *m;
    }
    if (o.cpus) p.cpus = *o.cpus;
    if (o.machine) p.machine = *o.machine;
    if (o.accel) {
        auto a = parse_accel(*o.accel);
        if (!a) return a.error();
        p.accel = *a;
    }
    if (o.disk) {
        p.boot.disk = *o.disk;
        p.boot.kernel.clear();
    }
    if (o.kernel) {
        p.boot.kernel = *o.kernel;
        p.boot.disk.clear();
    }
    if (o.initrd) p.boot.initrd = *o.initrd;
    if (o.append) p.boot.append = *o.append;
    if (o.share_host_root) p.share_host_root = *o.share_host_root;
    if (o.share) {
        auto m = parse_share(*o.share);
        if (!m) return m.error();
        p.share = *m;
    }
    if (o.ssh_port) p.ssh_port = *o.ssh_port;
    if (o.console_log) p.console_log = *o.console_log;
    p.gpus.insert(p.gpus.end(), o.gpus.begin(), o.gpus.end());
    p.extra_args.insert(p.extra_args.end(), o.extra_args.begin(), o.extra_args.end());
    return {};
}

Status check_vm_name(const std::string& name) {
    bool ok = !name.empty() && name.size() <= 64 && name[0] != '.';
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
            ok = false;
    if (!ok)
        return Error{"bad VM name '" + name + "'",
                     {},
                     "use letters, digits, '_', '-' and '.' (at most 64)",
                     0};
    return {};
}

} // namespace vfioctl::vm
