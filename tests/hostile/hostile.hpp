#pragma once
// The hostile-input suite (issue #11): each case is a fixture host, one
// mutation and one vfioctl command run as a subprocess; every case gets the
// same checks (expect_sound) and some assert their exact outcome on top.
// Cases are generated in tables, one file per category, and run as
// value-parameterized tests: "Sysfs/Hostile.Case/gpu_vendor_garbage__groups_json".

#include "sentinel.hpp"
#include "support.hpp"

#include <filesystem>
#include <functional>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <string>
#include <vector>

namespace vfioctl::hostile {

namespace fs = std::filesystem;
using fixture::HostTree;
using fixture::Outcome;
using nlohmann::json;

// An OSC sequence (sets the terminal's title), a CSI one (clears the
// screen), bytes that are not UTF-8, and a C1 control (CSI to some terminals).
inline const std::string k_osc = "\x1b]0;pwned\x07";
inline const std::string k_csi = "\x1b[2J";
inline const std::string k_bad_utf8 = "\xff\xfe";
inline const std::string k_c1 = "\xc2\x9b";

// Every path and byte a command may see of one case's world.
struct Env {
    HostTree tree;
    std::unique_ptr<test::Sentinel> sentinel;
    fixture::TempDir scratch; // profiles, VM run dirs, HOME: outside the tree, the case's own

    // "{root}", "{sentinel}", "{sname}" (the sentinel's name) and "{scratch}" replaced.
    std::string sub(const std::string& s) const;
    std::vector<std::string> sub(const std::vector<std::string>& v) const;
    // "/sys/bus/pci/devices/ADDR".
    static std::string dev(const std::string& addr);
    // A relative link target from host path `from` up to the root and on
    // into the sentinel ("../../../..-sentinel/rel"): '..' must stop at the root.
    std::string up_to_sentinel(const std::string& from, const std::string& rel) const;
    // The sentinel's real path of rel.
    std::string in_sentinel(const std::string& rel) const;
};

using Mutation = std::function<void(Env&)>;
using Check = std::function<void(Env&, const Outcome&)>;

// One hostile case.
struct Case {
    std::string name;                // letters, digits and '_'
    std::string host = "seed_after"; // fixture host (make_host)
    Mutation mutate;                 // the hostile change; may be empty
    std::vector<std::string> args;   // after "--root TREE" (Env::sub applied)
    std::set<int> exits;             // the exit codes that are a correct answer
    bool read_only = true;           // the tree itself must be unchanged too
    std::set<std::string>
        may_change;         // ... but for these (relative to the root: "var/lib/vfioctl/lock")
    Check check;            // exact-outcome asserts; may be empty
    bool use_stdin = false; // feed stdin_data() on standard input
    std::function<std::string()> stdin_data; // made when the case runs: tables stay small
    bool no_root = false;                    // args carry their own --root (or none)
    // Replaces the single run: a case that runs several commands (kills,
    // concurrency). It calls expect_sound itself.
    std::function<void(Env&)> body;
};

void PrintTo(const Case& c, std::ostream* os);
std::string case_name(const testing::TestParamInfo<Case>& info);

// The named fixture hosts of tests/unit/support.hpp, built fresh.
HostTree make_host(const std::string& name);

// Every entry under a directory: a file's bytes, a link's target, "dir".
using TreeState = std::map<std::string, std::string>;
TreeState tree_state(const fs::path& dir);
// The same entries by what lstat says (type, size, inode, mtime, ctime,
// a link's target): any write, rename or new entry shows, without reading
// thousands of files. For the check that a command left the tree alone.
TreeState tree_stamps(const fs::path& dir);
// Names the differences of two states (at most a few).
std::string tree_diff(const TreeState& a, const TreeState& b);

// vfioctl [--root TREE] ARGS in env, with HOME, XDG_CONFIG_HOME, the VM
// run directory and the kernel cache in env's scratch directory.
Outcome run(Env& env, const std::vector<std::string>& args, bool with_root = true,
            const std::string* stdin_data = nullptr);
// The variables run() adds to a child's environment ("NAME=value").
std::vector<std::string> child_env(const Env& env);

// The checks every case gets: not killed, no timeout, an expected exit
// code, a failure (1, 2) says why on stderr and an answer (3) says it on
// stdout, no "terminate called"/type_error/assertion/internal-error text,
// no raw control byte (but \n, \t) or invalid UTF-8 on either stream, JSON
// on stdout with --json, and the sentinel unchanged.
void expect_sound(const Env& env, const std::vector<std::string>& args, const Outcome& o,
                  const std::set<int>& exits);
// True when args ask for JSON (a "--json" before any "--").
bool wants_json(const std::vector<std::string>& args);
// No control byte but \n and \t, no C1 control, valid UTF-8.
void expect_printable(const std::string& text, const std::string& what);
bool valid_utf8(const std::string& s);

// Runs one case: host, sentinel, planted links, mutation, command, checks.
void run_case(const Case& c);

// A fresh env for c (host built, sentinel and links planted, mutation applied).
std::unique_ptr<Env> make_env(const Case& c);

// Helpers for the checks.
bool has(const std::string& text, const std::string& needle);
json parse_json(const Outcome& o);
// The kinds of the obstacles for address in a bind --json array ("refused", "blocked").
std::vector<std::string> kinds_for(const json& arr, const std::string& address);
// The exit codes of a command: read-only diagnosis, bind and the like.
inline const std::set<int> k_any = {0, 1, 2, 3};

class Hostile : public testing::TestWithParam<Case> {};

} // namespace vfioctl::hostile

namespace vfioctl::hostile {

// Check builders.
inline Check err_has(std::string needle) {
    return [needle](Env&, const Outcome& o) {
        EXPECT_TRUE(has(o.err, needle)) << "stderr lacks '" << needle << "':\n"
                                        << o.err.substr(0, 3000);
    };
}
inline Check out_has(std::string needle) {
    return [needle](Env&, const Outcome& o) {
        EXPECT_TRUE(has(o.out, needle)) << "stdout lacks '" << needle << "':\n"
                                        << o.out.substr(0, 3000);
    };
}
inline Check out_lacks(std::string needle) {
    return [needle](Env&, const Outcome& o) {
        EXPECT_FALSE(has(o.out, needle)) << "stdout holds '" << needle << "':\n"
                                         << o.out.substr(0, 3000);
    };
}
inline Check all_of(std::vector<Check> checks) {
    return [checks](Env& e, const Outcome& o) {
        for (const auto& c : checks)
            if (c) c(e, o);
    };
}
// A tree file replaced by what gen makes, when the case runs: big inputs
// are never held in the tables (each test process builds them all).
inline Mutation put_made(std::string host_path, std::function<std::string()> gen) {
    return [host_path, gen](Env& e) {
        e.tree.remove(host_path);
        e.tree.write(host_path, gen());
    };
}
// A tree file is byte-for-byte what it was made as.
inline Check file_is(std::string host_path, std::string content) {
    return [host_path, content](Env& e, const Outcome&) {
        EXPECT_EQ(e.tree.read(host_path), content) << host_path;
    };
}

} // namespace vfioctl::hostile
