// Category 5: vfioctl's own journals, damaged or hostile. The bind journal
// (/var/lib/vfioctl/journal.json) under recover, unbind --all and status;
// the boot journal (boot-journal.json) under iommu show, revert and
// enable. A journal that cannot be trusted is a clear error that names it,
// the file is kept byte for byte, and nothing is written outside the tree.

#include "hostile.hpp"

#include <sys/stat.h>

namespace vfioctl::hostile {
namespace {

const std::string k_journal = "/var/lib/vfioctl/journal.json";
const std::string k_boot_journal = "/var/lib/vfioctl/boot-journal.json";

json entry(const std::string& address, const json& driver = "nvidia", const json& phase = "bound") {
    return {{"address", address},           {"group", 165},   {"original_driver", driver},
            {"original_override", nullptr}, {"phase", phase}, {"since", "2024-06-11T10:00:00Z"}};
}
std::string journal_of(const json& devices, int format = 1) {
    return json{{"format", format}, {"devices", devices}}.dump(2);
}

struct J {
    std::string name;
    std::function<std::string(Env&)> text; // the journal's bytes
    bool corrupt;                          // must be refused as it is
};

std::vector<J> bind_journals() {
    const std::string gpu = fixture::k_seed_gpu;
    return {
        {"truncated",
         [gpu](Env&) {
             auto t = journal_of(json::array({entry(gpu)}));
             return t.substr(0, t.size() / 2);
         },
         true},
        {"empty", [](Env&) { return std::string(); }, true},
        {"nul_bytes", [](Env&) { return std::string(64, '\0'); }, true},
        {"array_not_object", [gpu](Env&) { return json::array({entry(gpu)}).dump(); }, true},
        {"format_99", [gpu](Env&) { return journal_of(json::array({entry(gpu)}), 99); }, true},
        {"group_is_a_string",
         [gpu](Env&) {
             json e = entry(gpu);
             e["group"] = "165";
             return journal_of(json::array({e}));
         },
         true},
        {"address_is_a_number",
         [](Env&) {
             json e = entry("x");
             e["address"] = 138;
             return journal_of(json::array({e}));
         },
         true},
        {"address_with_dotdot",
         [](Env& e) {
             return journal_of(json::array({entry("../../../../" + e.sentinel->name() + "/x")}));
         },
         true},
        {"address_short_form", [](Env&) { return journal_of(json::array({entry("8a:00.0")})); },
         true},
        {"driver_with_dotdot",
         [gpu](Env& e) {
             return journal_of(
                 json::array({entry(gpu, "../../../../../../../" + e.sentinel->name() + "/lib")}));
         },
         true},
        {"driver_with_slash",
         [gpu](Env&) { return journal_of(json::array({entry(gpu, "nvidia/../../../module")})); },
         true},
        {"driver_with_escape",
         [gpu](Env&) { return journal_of(json::array({entry(gpu, "nv" + k_osc)})); }, true},
        {"phase_unknown",
         [gpu](Env&) { return journal_of(json::array({entry(gpu, "nvidia", "exploded")})); },
         false},
        {"megabyte_override",
         [gpu](Env&) {
             json e = entry(gpu);
             e["original_override"] = std::string(1 << 20, 'o');
             return journal_of(json::array({e}));
         },
         false},
        {"duplicate_entries",
         [gpu](Env&) {
             return journal_of(json::array({entry(gpu), entry(gpu, "nouveau")}));
         },
         false},
        {"device_that_is_gone",
         [](Env&) { return journal_of(json::array({entry("0000:ee:00.0")})); }, false},
        {"ten_thousand_entries_of_gone_devices",
         [](Env&) {
             json devs = json::array();
             for (int i = 0; i < 10000; ++i) {
                 char a[16];
                 std::snprintf(a, sizeof a, "%04x:ee:%02x.%x", i / 256, (i / 8) % 32, i % 8);
                 devs.push_back(entry(a));
             }
             return journal_of(devs);
         },
         false},
    };
}

// The bind journal's cases: the file is written, then recover, unbind
// --all and status run on it.
std::vector<Case> bind_journal_cases() {
    std::vector<Case> v;
    for (const auto& j : bind_journals()) {
        Mutation m = [j](Env& e) { e.tree.write(k_journal, j.text(e)); };
        // A corrupt journal is refused and kept as it was; the tree is not
        // touched (read_only). A sound one is worked through.
        auto kept = [j](Env& e, const Outcome& o) {
            if (!j.corrupt) return;
            EXPECT_EQ(o.exit_code, 1);
            EXPECT_TRUE(has(o.err, "journal")) << o.err;
            EXPECT_EQ(e.tree.read(k_journal), j.text(e)) << "the journal was not kept as it was";
        };
        for (const auto& [cmd, args] :
             std::vector<std::pair<std::string, std::vector<std::string>>>{
                 {"recover", {"--json", "recover", "--timeout", "1"}},
                 {"unbind_all", {"unbind", "--all", "--timeout", "1"}}}) {
            v.push_back(Case{.name = "bind_journal_" + j.name + "__" + cmd,
                             .mutate = m,
                             .args = args,
                             .exits = j.corrupt ? std::set<int>{1} : std::set<int>{0, 1},
                             .read_only = j.corrupt,
                             .may_change = {"var/lib/vfioctl/lock"},
                             .check = kept});
        }
        // status lists a readable journal's entries, and warns of an unreadable one.
        v.push_back(Case{.name = "bind_journal_" + j.name + "__status_json",
                         .mutate = m,
                         .args = {"--json", "status"},
                         .exits = {0, 3},
                         .check = [j](Env& e, const Outcome& o) {
                             if (j.corrupt) {
                                 EXPECT_TRUE(has(o.err, "journal")) << o.err;
                             }
                             EXPECT_EQ(e.tree.read(k_journal), j.text(e));
                         }});
    }
    // The journal, or its directory, is a link out of the tree.
    for (bool dir : {false, true})
        v.push_back(Case{
            .name = std::string("bind_journal_") + (dir ? "dir" : "file") + "_link_out__recover",
            .mutate =
                [dir](Env& e) {
                    if (dir)
                        e.tree.symlink("/var/lib/vfioctl", e.sentinel->dir.string() + "/lib");
                    else
                        e.tree.symlink(k_journal, e.up_to_sentinel(k_journal, "secret"));
                },
            .args = {"--json", "recover"},
            .exits = {0, 1},
            .read_only = false});
    return v;
}

// The boot journal: the seed's host after a real 'iommu enable', with the
// journal then damaged.
std::vector<Case> boot_journal_cases() {
    struct BJ {
        std::string name;
        std::function<std::string(Env&, const json&)> text; // from the real journal
        bool corrupt;
    };
    const std::vector<BJ> bjs = {
        {"truncated",
         [](Env&, const json& j) {
             auto t = j.dump(2);
             return t.substr(0, t.size() * 2 / 3);
         },
         true},
        {"nul_bytes", [](Env&, const json&) { return std::string(100, '\0'); }, true},
        {"operations_not_a_list",
         [](Env&, json j) {
             j["operations"] = "all";
             return j.dump();
         },
         true},
        {"version_is_a_string",
         [](Env&, json j) {
             j["version"] = "1";
             return j.dump();
         },
         false},
        {"files_not_an_array",
         [](Env&, json j) {
             j["operations"][0]["files"] = "grub";
             return j.dump();
         },
         true},
        {"size_negative",
         [](Env&, json j) {
             j["operations"][0]["files"][0]["before"]["size"] = -1;
             return j.dump();
         },
         true},
        {"path_out_of_the_tree",
         [](Env& e, json j) {
             j["operations"][0]["files"][0]["path"] =
                 "/../../../../" + e.sentinel->name() + "/secret";
             return j.dump();
         },
         false},
        {"backup_out_of_the_tree",
         [](Env& e, json j) {
             j["operations"][0]["files"][0]["backup"] = e.in_sentinel("secret");
             return j.dump();
         },
         false},
        {"path_is_relative",
         [](Env&, json j) {
             j["operations"][0]["files"][0]["path"] = "etc/default/grub";
             return j.dump();
         },
         false},
        {"action_unknown",
         [](Env&, json j) {
             j["operations"][0]["action"] = "detonate";
             return j.dump();
         },
         false},
        {"escapes_everywhere",
         [](Env&, json j) {
             j["operations"][0]["id"] = "1" + k_osc;
             j["operations"][0]["added"] = json::array({"intel_iommu=on" + k_csi});
             return j.dump();
         },
         false},
        {"megabyte_of_operations",
         [](Env&, json j) {
             for (int i = 0; i < 3000; ++i) {
                 json op = j["operations"][0];
                 op["id"] = "2024" + std::to_string(i);
                 op["state"] = "reverted";
                 j["operations"].push_back(op);
             }
             return j.dump();
         },
         false},
    };
    std::vector<Case> v;
    for (const auto& b : bjs) {
        Mutation m = [b](Env& e) {
            // A real enable first, so that the journal has a real shape; then
            // the file put back by hand, so that enable has work to do again.
            const std::string grub = e.tree.read("/etc/default/grub");
            auto o = run(e, {"iommu", "enable", "--permanent", "--yes"});
            if (o.exit_code != 0) throw std::runtime_error("enable failed: " + o.err);
            e.tree.write("/etc/default/grub", grub);
            e.tree.write(k_boot_journal, b.text(e, json::parse(e.tree.read(k_boot_journal))));
        };
        // A corrupt journal is named; read_only (but the lock) shows it was kept as it was.
        auto kept = [b](Env&, const Outcome& o) {
            if (b.corrupt) {
                EXPECT_TRUE(has(o.err + o.out, "journal")) << o.err;
            }
        };
        v.push_back(Case{.name = "boot_journal_" + b.name + "__iommu_show_json",
                         .host = "seed_before",
                         .mutate = m,
                         .args = {"--json", "iommu", "show"},
                         .exits = {0},
                         .check = [b](Env&, const Outcome& o) {
                             if (b.corrupt) {
                                 EXPECT_TRUE(parse_json(o).contains("journal_error"))
                                     << o.out.substr(0, 2000);
                             }
                         }});
        v.push_back(Case{.name = "boot_journal_" + b.name + "__revert",
                         .host = "seed_before",
                         .mutate = m,
                         .args = {"iommu", "revert", "--yes"},
                         .exits = b.corrupt ? std::set<int>{1} : std::set<int>{0, 1},
                         .read_only = b.corrupt,
                         .may_change = {"var/lib/vfioctl/boot.lock"},
                         .check = kept});
        v.push_back(Case{.name = "boot_journal_" + b.name + "__enable",
                         .host = "seed_before",
                         .mutate = m,
                         .args = {"iommu", "enable", "--permanent", "--yes"},
                         .exits = b.corrupt ? std::set<int>{1} : std::set<int>{0, 1},
                         .read_only = b.corrupt,
                         .may_change = {"var/lib/vfioctl/boot.lock"},
                         .check = kept});
    }
    return v;
}

} // namespace

INSTANTIATE_TEST_SUITE_P(BindJournal, Hostile, testing::ValuesIn(bind_journal_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(BootJournal, Hostile, testing::ValuesIn(boot_journal_cases()), case_name);

} // namespace vfioctl::hostile
