#include "hostile.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>

namespace vfioctl::hostile {

namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
}

// Live paths a command run with --root must never touch: existence, size
// and change time before and after each case.
std::string live_witness() {
    std::string out;
    for (const char* p :
         {"/var/lib/vfioctl", "/var/lib/vfioctl/journal.json", "/var/lib/vfioctl/boot-journal.json",
          "/etc/default/grub", "/etc/kernel/cmdline", "/boot/loader/entries", "/etc/vfioctl"}) {
        struct stat st {};
        if (::lstat(p, &st) != 0)
            out += std::string(p) + ": none\n";
        else
            out += std::string(p) + ": " + std::to_string(st.st_size) + " " +
                   std::to_string(st.st_ctim.tv_sec) + "." + std::to_string(st.st_ctim.tv_nsec) +
                   "\n";
    }
    return out;
}

// The forms a text may not hold: what an uncaught exception, a failed
// assertion or a JSON type error prints.
const char* const k_forbidden[] = {"terminate called", "type_error", "Assertion",
                                   "internal error",   "what():",    "Segmentation fault",
                                   "std::bad_alloc"};

// A state entry shortened for a message, control bytes shown as \xNN.
std::string util_abbrev(const std::string& v) {
    std::string out;
    for (unsigned char c : v.substr(0, 60)) {
        if (c < 0x20 || c >= 0x7f) {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", c);
            out += b;
        } else
            out += static_cast<char>(c);
    }
    return v.size() > 60 ? out + "..." : out;
}

} // namespace

std::string Env::sub(const std::string& s) const {
    std::string out = s;
    replace_all(out, "{root}", tree.root_str());
    replace_all(out, "{sentinel}", sentinel->dir.string());
    replace_all(out, "{sname}", sentinel->name());
    replace_all(out, "{scratch}", scratch.path.string());
    return out;
}

std::vector<std::string> Env::sub(const std::vector<std::string>& v) const {
    std::vector<std::string> out;
    for (const auto& s : v)
        out.push_back(sub(s));
    return out;
}

std::string Env::dev(const std::string& addr) {
    return "/sys/bus/pci/devices/" + addr;
}

std::string Env::up_to_sentinel(const std::string& from, const std::string& rel) const {
    // One "../" per directory of `from` and of the root's own path, and a few more.
    std::string up;
    const auto depth = std::count(from.begin(), from.end(), '/') +
                       std::count(tree.root_str().begin(), tree.root_str().end(), '/') + 3;
    for (long i = 0; i < depth; ++i)
        up += "../";
    return up + fs::path(tree.root_str()).relative_path().parent_path().string() + "/" +
           sentinel->name() + "/" + rel;
}

std::string Env::in_sentinel(const std::string& rel) const {
    return (sentinel->dir / rel).string();
}

void PrintTo(const Case& c, std::ostream* os) {
    *os << c.name;
}

std::string case_name(const testing::TestParamInfo<Case>& info) {
    const std::string& n = info.param.name;
    if (n.empty() || !std::all_of(n.begin(), n.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        }))
        throw std::invalid_argument("bad hostile case name '" + n + "'");
    return n;
}

HostTree make_host(const std::string& name) {
    if (name == "seed_before") return fixture::seed_before(false);
    if (name == "seed_before_held") return fixture::seed_before(true);
    if (name == "seed_after") return fixture::seed_after();
    if (name == "amd") return fixture::amd_host();
    if (name == "shared_group") return fixture::shared_group_host();
    if (name == "critical_group") return fixture::critical_group_host();
    if (name == "firmware_off") return fixture::firmware_off_host();
    if (name == "pvm") return fixture::pvm_host();
    if (name == "vfio_missing") return fixture::vfio_missing_host();
    if (name == "dgx") return fixture::dgx_host();
    throw std::invalid_argument("no fixture host " + name);
}

TreeState tree_state(const fs::path& dir) {
    TreeState out;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
         ++it) {
        const std::string rel = it->path().lexically_relative(dir).string();
        const auto st = it->symlink_status();
        if (fs::is_symlink(st))
            out[rel] = "link:" + fs::read_symlink(it->path()).string();
        else if (fs::is_directory(st))
            out[rel] = "dir";
        else if (fs::is_regular_file(st)) {
            std::ifstream f(it->path(), std::ios::binary);
            std::ostringstream s;
            s << f.rdbuf();
            out[rel] = "file:" + s.str();
        } else {
            out[rel] = "other";
        }
    }
    return out;
}

// Sets every file's and link's times to 1970: a later write shows in its
// mtime even where it lands within the clock tick the file was made in
// (file times come from a coarse clock), and has the same size.
void age_tree(const fs::path& dir) {
    const struct timespec old[2] = {{1, 0}, {1, 0}};
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
         ++it) {
        const auto st = it->symlink_status();
        if (!fs::is_directory(st))
            ::utimensat(AT_FDCWD, it->path().c_str(), old, AT_SYMLINK_NOFOLLOW);
    }
}

TreeState tree_stamps(const fs::path& dir) {
    TreeState out;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
         ++it) {
        struct stat st {};
        if (::lstat(it->path().c_str(), &st) != 0) {
            out[it->path().lexically_relative(dir).string()] = "gone";
            continue;
        }
        // A directory's own times change with its entries, which are stamped themselves.
        std::string s = std::to_string(st.st_mode) + " " + std::to_string(st.st_ino);
        if (!S_ISDIR(st.st_mode))
            s += " " + std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
                 std::to_string(st.st_mtim.tv_nsec) + " " + std::to_string(st.st_ctim.tv_sec) +
                 "." + std::to_string(st.st_ctim.tv_nsec);
        if (S_ISLNK(st.st_mode)) s += " -> " + fs::read_symlink(it->path()).string();
        out[it->path().lexically_relative(dir).string()] = s;
    }
    return out;
}

std::string tree_diff(const TreeState& a, const TreeState& b) {
    std::string out;
    int n = 0;
    auto note = [&](const std::string& s) {
        if (n++ < 8) out += "  " + s + "\n";
    };
    for (const auto& [k, v] : a) {
        auto it = b.find(k);
        if (it == b.end())
            note("removed: " + k);
        else if (it->second != v)
            note("changed: " + k + " (" + util_abbrev(v) + " -> " + util_abbrev(it->second) + ")");
    }
    for (const auto& [k, v] : b)
        if (!a.count(k)) note("added: " + k + " (" + util_abbrev(v) + ")");
    if (n > 8) out += "  ... " + std::to_string(n - 8) + " more\n";
    return out;
}

bool has(const std::string& text, const std::string& needle) {
    return text.find(needle) != std::string::npos;
}

json parse_json(const Outcome& o) {
    try {
        return json::parse(o.out);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "stdout is not JSON (" << e.what() << "):\n"
                      << o.out.substr(0, 2000) << "\nstderr:\n"
                      << o.err.substr(0, 2000);
        return nullptr;
    }
}

std::vector<std::string> kinds_for(const json& arr, const std::string& address) {
    std::vector<std::string> out;
    if (!arr.is_array()) return out;
    for (const auto& o : arr)
        if (o.is_object() && o.value("address", "") == address) out.push_back(o.value("kind", ""));
    return out;
}

bool wants_json(const std::vector<std::string>& args) {
    for (const auto& a : args) {
        if (a == "--") return false;
        if (a == "--json") return true;
    }
    return false;
}

bool valid_utf8(const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80           ? 1
                   : (c >> 5) == 0x6  ? 2
                   : (c >> 4) == 0xe  ? 3
                   : (c >> 3) == 0x1e ? 4
                                      : 0;
        if (n == 0 || i + n > s.size()) return false;
        uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
        for (size_t k = 1; k < n; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        // Overlong forms, surrogates, beyond U+10FFFF.
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

void expect_printable(const std::string& text, const std::string& what) {
    for (size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        const bool c1 = c == 0xc2 && i + 1 < text.size() &&
                        static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                        static_cast<unsigned char>(text[i + 1]) < 0xa0;
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f || c1) {
            ADD_FAILURE() << what << " holds the raw control byte 0x" << std::hex
                          << static_cast<int>(c) << std::dec << " at offset " << i << ":\n"
                          << text.substr(i > 200 ? i - 200 : 0, 400);
            return;
        }
    }
    EXPECT_TRUE(valid_utf8(text)) << what << " is not valid UTF-8:\n" << text.substr(0, 2000);
}

std::vector<std::string> child_env(const Env& env) {
    const std::string s = env.scratch.path.string();
    return {"VFIOCTL_FORBID_LIVE_WRITES=1",     "HOME=" + s + "/home",
            "XDG_CONFIG_HOME=" + s + "/config", "XDG_RUNTIME_DIR=" + s + "/xdg",
            "VFIOCTL_RUN_DIR=" + s + "/run",    "VFIOCTL_CACHE_DIR=" + s + "/cache"};
}

Outcome run(Env& env, const std::vector<std::string>& args, bool with_root,
            const std::string* stdin_data) {
    const std::string s = env.scratch.path.string();
    test::RunOptions opt;
    opt.env = child_env(env);
    if (stdin_data) {
        const std::string in = s + "/stdin";
        std::ofstream(in, std::ios::binary) << *stdin_data;
        opt.stdin_path = in;
    }
    return with_root ? test::run_on(env.tree, args, opt) : test::run_vfioctl(args, opt);
}

void expect_sound(const Env& env, const std::vector<std::string>& args, const Outcome& o,
                  const std::set<int>& exits) {
    // HOSTILE_SHOW=1: what each run printed, to read the answers themselves.
    if (const char* show = std::getenv("HOSTILE_SHOW"); show && *show == '1')
        std::fprintf(stderr, "--- exit %d\n--- stdout:\n%s\n--- stderr:\n%s\n", o.exit_code,
                     o.out.substr(0, 1500).c_str(), o.err.substr(0, 1500).c_str());
    EXPECT_EQ(o.signal, 0) << "killed by signal " << o.signal
                           << " (a hang is killed after the timeout)";
    EXPECT_TRUE(exits.count(o.exit_code)) << "exit code " << o.exit_code << "\nstdout:\n"
                                          << o.out.substr(0, 3000) << "\nstderr:\n"
                                          << o.err.substr(0, 3000);
    if (o.exit_code == 1 || o.exit_code == 2) {
        EXPECT_FALSE(o.err.find_first_not_of(" \t\n") == std::string::npos)
            << "exit " << o.exit_code << " but nothing on stderr says why; stdout:\n"
            << o.out.substr(0, 2000);
    }
    if (o.exit_code == 3) {
        EXPECT_FALSE(o.out.find_first_not_of(" \t\n") == std::string::npos)
            << "exit 3 without an answer on stdout";
    }
    for (const char* bad : k_forbidden) {
        EXPECT_FALSE(has(o.err, bad)) << "stderr holds '" << bad << "':\n" << o.err.substr(0, 3000);
        EXPECT_FALSE(has(o.out, bad)) << "stdout holds '" << bad << "':\n" << o.out.substr(0, 3000);
    }
    expect_printable(o.out, "stdout");
    expect_printable(o.err, "stderr");
    if (wants_json(args) && o.exit_code >= 0) {
        json j = parse_json(o);
        EXPECT_TRUE(j.is_object()) << "--json prints one object:\n" << o.out.substr(0, 2000);
        if (j.is_object() && j.contains("exit_code")) {
            EXPECT_EQ(j["exit_code"], o.exit_code) << o.out.substr(0, 2000);
        }
    }
    if (env.sentinel) {
        const auto now = env.sentinel->snapshot();
        EXPECT_EQ(now, env.sentinel->before) << "the sentinel beside the tree changed:\n"
                                             << tree_diff(env.sentinel->before, now);
    }
}

std::unique_ptr<Env> make_env(const Case& c) {
    auto env = std::make_unique<Env>(Env{make_host(c.host), nullptr, fixture::TempDir()});
    env->sentinel = std::make_unique<test::Sentinel>(env->tree);
    // Links into the sentinel that every tree carries: absolute, relative
    // with '..', and to the whole directory. No command may write through them.
    env->tree.symlink("/etc/hostile-abs", env->in_sentinel("secret"));
    env->tree.symlink("/var/hostile-up", env->up_to_sentinel("/var/hostile-up", "secret"));
    env->tree.symlink("/srv/hostile-dir", env->sentinel->dir.string());
    for (const char* d : {"home", "config", "xdg", "run", "cache"})
        fs::create_directories(env->scratch.path / d);
    if (c.mutate) c.mutate(*env);
    return env;
}

void run_case(const Case& c) {
    auto env = make_env(c);
    const std::string live_before = live_witness();
    if (c.body) {
        c.body(*env);
    } else {
        const auto args = env->sub(c.args);
        if (c.read_only) age_tree(env->tree.root());
        const TreeState before = c.read_only ? tree_stamps(env->tree.root()) : TreeState{};
        const std::string in = c.use_stdin && c.stdin_data ? c.stdin_data() : std::string();
        const Outcome o = run(*env, args, !c.no_root, c.use_stdin ? &in : nullptr);
        SCOPED_TRACE("vfioctl " + std::string(c.no_root ? "" : "--root TREE ") + [&] {
            std::string s;
            for (const auto& a : args)
                s += (a.size() > 80 ? a.substr(0, 80) + "..." : a) + " ";
            return s;
        }());
        expect_sound(*env, args, o, c.exits);
        if (c.read_only) {
            TreeState after = tree_stamps(env->tree.root());
            TreeState was = before;
            for (const auto& p : c.may_change) {
                was.erase(p);
                after.erase(p);
            }
            EXPECT_TRUE(was == after) << "the tree changed:\n" << tree_diff(was, after);
        }
        if (c.check) c.check(*env, o);
    }
    EXPECT_EQ(live_witness(), live_before) << "a path of the live host changed";
}

TEST_P(Hostile, Case) {
    run_case(GetParam());
}

} // namespace vfioctl::hostile
