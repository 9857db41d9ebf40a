// The boot a journal entry was written in, and settling the entries of an
// earlier boot without touching a device: 'recover', 'recover --at-boot'
// (what vfioctl-recover.service runs) and 'status', against FakeKernel.

#include "cli_run.hpp"
#include "fake_kernel.hpp"
#include "services/host_model.hpp"
#include "util/fault.hpp"
#include "util/strings.hpp"
#include "vfio/bind.hpp"
#include "vfio/settled.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace vfioctl;
using fake::FakeKernel;
using fake::quick;
using fixture::HostTree;
using nlohmann::json;
using test::contains;
using test::run_cli;

namespace {

const char* const k_boot_a = "0d1f2e3c-4b5a-4697-8a8b-9c0d1e2f3a4b";
const char* const k_boot_b = "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9";
const char* const k_state = "/var/lib/vfioctl";

void set_boot(HostTree& t, const std::string& text) {
    t.write(vfio::k_boot_id_path, text);
}

vfio::BootId boot(const char* uuid) {
    auto b = vfio::BootId::parse(uuid);
    EXPECT_TRUE(b.has_value()) << uuid;
    return b.value_or(vfio::BootId{});
}

// A journal holding the seed GPU, bound to vfio-pci in boot entry_boot
// (unknown when null), as a bind writes it.
void journal_gpu(const host::Host& h, const char* entry_boot, const char* phase = "bound") {
    vfio::Journal j;
    vfio::JournalEntry e;
    e.address = fixture::k_seed_gpu;
    e.group = 165;
    e.original_driver = "nvidia";
    e.phase = phase;
    e.since = "2026-11-30T10:00:00Z";
    if (entry_boot) e.boot = boot(entry_boot);
    j.entries.push_back(e);
    ASSERT_TRUE(vfio::save_journal(h, k_state, j).ok());
}

// The GPU bound to vfio-pci by a bind in the running boot.
void bind_gpu(FakeKernel& k) {
    services::HostModel m;
    auto loaded = services::load_host(k, k_state);
    ASSERT_TRUE(loaded.ok());
    m = std::move(loaded).value();
    const pci::PciDevice* d = m.inv.find(*pci::PciAddress::parse(fixture::k_seed_gpu));
    ASSERT_NE(d, nullptr);
    auto r = vfio::execute_bind(k, vfio::plan_bind({d}, m.inv, m.facts, m.groups), quick());
    ASSERT_TRUE(r.ok()) << r.error().describe();
    ASSERT_EQ(k.driver_of(fixture::k_seed_gpu), "vfio-pci");
}

struct Settle : ::testing::Test {
    fixture::TempDir run_base;
    services::Paths paths = test::test_paths(run_base);
};

} // namespace

TEST(BootId, OnlyTheKernelsFormIsABoot) {
    auto b = vfio::BootId::parse(std::string(k_boot_a) + "\n");
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->str(), k_boot_a);
    EXPECT_TRUE(vfio::BootId::parse(k_boot_a).has_value());
    for (std::string bad : {std::string(k_boot_a) + "\r\n", std::string(k_boot_a) + "\n\n",
                            std::string(k_boot_a) + " ", " " + std::string(k_boot_a),
                            std::string("0D1F2E3C-4B5A-4697-8A8B-9C0D1E2F3A4B"),
                            std::string("0d1f2e3c4b5a46978a8b9c0d1e2f3a4b"),
                            std::string("garbage\n"), std::string(""), std::string("\n"),
                            std::string("0d1f2e3c-4b5a-4697-8a8b-9c0d1e2f3a4\xff"),
                            std::string("0d1f2e3c-4b5a-4697-8a8b\0009c0d1e2f3a4b", 36),
                            std::string("0d1f2e3c-4b5a-4697-8a8b-9c0d1e2f3a4bb")})
        EXPECT_FALSE(vfio::BootId::parse(bad).has_value()) << util::printable(bad);
}

TEST(BootId, UnknownIsNeverAnotherBootNorTheSame) {
    vfio::BootId unknown;
    EXPECT_FALSE(unknown.known());
    EXPECT_FALSE(unknown.known_other_than(unknown));
    EXPECT_FALSE(unknown.same_known(unknown));
    EXPECT_FALSE(unknown.known_other_than(boot(k_boot_a)));
    EXPECT_FALSE(boot(k_boot_a).known_other_than(unknown));
    EXPECT_FALSE(boot(k_boot_a).known_other_than(boot(k_boot_a)));
    EXPECT_TRUE(boot(k_boot_a).known_other_than(boot(k_boot_b)));
    EXPECT_TRUE(boot(k_boot_a).same_known(boot(k_boot_a)));
}

TEST(BootId, ReadThroughTheHostAndUnknownWhenNotABoot) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    std::string why;
    EXPECT_FALSE(vfio::current_boot(k, &why).known());
    EXPECT_NE(why, "");
    set_boot(t, std::string(k_boot_b) + "\n");
    EXPECT_EQ(vfio::current_boot(k).str(), k_boot_b);
    for (std::string bad : {std::string(k_boot_b) + "\r\n", std::string("garbage\n"),
                            std::string("\xff\xfe\x00\x01", 4)}) {
        set_boot(t, bad);
        why.clear();
        EXPECT_FALSE(vfio::current_boot(k, &why).known()) << util::printable(bad);
        EXPECT_NE(why, "");
    }
}

TEST(EntryBoot, EntriesKeepTheirBootAndOldJournalsReadAsUnknown) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    journal_gpu(k, k_boot_a);
    EXPECT_TRUE(contains(t.read("/var/lib/vfioctl/journal.json"),
                         "\"boot\": \"" + std::string(k_boot_a) + "\""));
    auto j = vfio::load_journal(k, k_state);
    ASSERT_TRUE(j.ok());
    ASSERT_EQ(j->entries.size(), 1u);
    EXPECT_EQ(j->entries[0].boot.str(), k_boot_a);

    // Format 1 as written before the field, and with null: unknown.
    const std::string old =
        "{\"format\": 1, \"devices\": [{\"address\": \"0000:8a:00.0\", \"group\": 165, "
        "\"original_driver\": \"nvidia\", \"original_override\": null, \"phase\": \"bound\", "
        "\"since\": \"2026-11-30T10:00:00Z\"";
    for (std::string tail : {"", ", \"boot\": null"}) {
        auto p = vfio::parse_journal(old + tail + "}]}", "journal.json");
        ASSERT_TRUE(p.ok()) << p.error().describe();
        EXPECT_FALSE(p->entries[0].boot.known()) << tail;
    }
    // A boot that is not a boot id is corruption, never a guess.
    for (std::string tail : {", \"boot\": \"yesterday\"", ", \"boot\": 7",
                             ", \"boot\": \"0D1F2E3C-4B5A-4697-8A8B-9C0D1E2F3A4B\""}) {
        auto p = vfio::parse_journal(old + tail + "}]}", "journal.json");
        ASSERT_FALSE(p.ok()) << tail;
        EXPECT_TRUE(contains(p.error().message, "corrupt")) << p.error().message;
    }
}

TEST(EntryBoot, BindRecordsTheRunningBootOrUnknown) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    set_boot(t, std::string(k_boot_a) + "\n");
    bind_gpu(k);
    auto j = vfio::load_journal(k, k_state);
    ASSERT_TRUE(j.ok());
    ASSERT_EQ(j->entries.size(), 1u);
    EXPECT_EQ(j->entries[0].boot.str(), k_boot_a);

    HostTree u = fixture::seed_after();
    FakeKernel ku(u);
    set_boot(u, "not a boot id\n");
    bind_gpu(ku);
    auto ju = vfio::load_journal(ku, k_state);
    ASSERT_TRUE(ju.ok());
    ASSERT_EQ(ju->entries.size(), 1u);
    EXPECT_FALSE(ju->entries[0].boot.known());
    EXPECT_TRUE(contains(u.read("/var/lib/vfioctl/journal.json"), "\"boot\": null"));
}

// The reboot gave the GPU back to nvidia; the journal still says it was
// bound in boot A. Settling writes nothing to the kernel.
TEST(Settling, EarlierBootIsSettledWithoutAnyKernelWrite) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    journal_gpu(k, k_boot_a);
    set_boot(t, std::string(k_boot_b) + "\n");
    for (auto mode : {vfio::RecoverMode::full, vfio::RecoverMode::at_boot}) {
        journal_gpu(k, k_boot_a);
        auto r = vfio::recover(k, quick(), mode);
        ASSERT_TRUE(r.ok()) << r.error().describe();
        EXPECT_EQ(k.writes(), std::vector<std::string>{});
        ASSERT_TRUE(r->settled.has_value());
        EXPECT_EQ(r->settled->count, 1u);
        EXPECT_EQ(r->settled->boot.str(), k_boot_b);
        ASSERT_EQ(r->settled->devices.size(), 1u);
        EXPECT_EQ(r->settled->devices[0].address, fixture::k_seed_gpu);
        EXPECT_EQ(r->settled->devices[0].boot.str(), k_boot_a);
        EXPECT_TRUE(r->changes.empty());
        EXPECT_TRUE(r->left.empty());
        EXPECT_FALSE(k.exists("/var/lib/vfioctl/journal.json"));
        EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    }
    auto rec = vfio::load_settled(k, k_state);
    ASSERT_TRUE(rec.ok()) << rec.error().describe();
    ASSERT_EQ(rec->settlements.size(), 2u);
    const auto& last = *rec->last();
    EXPECT_EQ(last.boot.str(), k_boot_b);
    ASSERT_EQ(last.devices.size(), 1u);
    EXPECT_EQ(last.devices[0].original_driver, std::optional<std::string>("nvidia"));
    EXPECT_EQ(last.devices[0].phase, "bound");
    EXPECT_EQ(last.devices[0].boot.str(), k_boot_a);
    EXPECT_NE(last.at, "");
}

TEST(Settling, CurrentBootEntriesAreRecoveredAsBefore) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    set_boot(t, std::string(k_boot_a) + "\n");
    bind_gpu(k);
    auto r = vfio::recover(k, quick());
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_FALSE(r->settled.has_value());
    ASSERT_EQ(r->changes.size(), 1u);
    EXPECT_TRUE(r->changes[0].changed);
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    EXPECT_EQ(k.override_of(fixture::k_seed_gpu), "(null)");
    EXPECT_FALSE(k.exists("/var/lib/vfioctl/journal.json"));
    EXPECT_FALSE(k.exists("/var/lib/vfioctl/settled.json"));
}

// Unknown is not safe: whatever is unknown, the entry is restored as
// before (plain recover) and never settled.
TEST(Settling, UnknownBootIsNeverSettled) {
    struct Case {
        const char* name;
        std::optional<std::string> boot_id; // nullopt: no file
        const char* entry_boot;             // nullptr: the entry's is unknown
    };
    const std::vector<Case> cases = {
        {"boot_id missing", std::nullopt, k_boot_a},
        {"boot_id with CRLF", std::string(k_boot_b) + "\r\n", k_boot_a},
        {"boot_id garbage", std::string("garbage\n"), k_boot_a},
        {"boot_id not UTF-8", std::string("\xc3\x28\xa0\xa1\xf0\x28\x8c\xbc\n"), k_boot_a},
        {"journal without boot", std::string(k_boot_b) + "\n", nullptr},
    };
    for (const auto& c : cases) {
        HostTree t = fixture::seed_after();
        FakeKernel k(t);
        // The device is on vfio-pci (as it may still be, for all we know).
        set_boot(t, std::string(k_boot_a) + "\n");
        bind_gpu(k);
        journal_gpu(k, c.entry_boot);
        if (c.boot_id)
            set_boot(t, *c.boot_id);
        else
            t.remove(vfio::k_boot_id_path);
        const size_t before = k.writes().size();

        auto at_boot = vfio::recover(k, quick(), vfio::RecoverMode::at_boot);
        ASSERT_TRUE(at_boot.ok()) << c.name << ": " << at_boot.error().describe();
        EXPECT_FALSE(at_boot->settled.has_value()) << c.name;
        ASSERT_EQ(at_boot->left.size(), 1u) << c.name;
        EXPECT_EQ(k.writes().size(), before) << c.name;
        EXPECT_TRUE(k.exists("/var/lib/vfioctl/journal.json")) << c.name;
        EXPECT_FALSE(k.exists("/var/lib/vfioctl/settled.json")) << c.name;

        auto full = vfio::recover(k, quick());
        ASSERT_TRUE(full.ok()) << c.name << ": " << full.error().describe();
        EXPECT_FALSE(full->settled.has_value()) << c.name;
        ASSERT_EQ(full->changes.size(), 1u) << c.name;
        EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia") << c.name;
        EXPECT_EQ(k.override_of(fixture::k_seed_gpu), "(null)") << c.name;
        EXPECT_FALSE(k.exists("/var/lib/vfioctl/settled.json")) << c.name;
    }
}

// A restore begun in this boot marks the entry with this boot: killed
// half-way, the entry is restored again in this boot, never settled.
TEST(Settling, RestoreInThisBootTakesTheEntryIntoThisBoot) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    set_boot(t, std::string(k_boot_a) + "\n");
    bind_gpu(k);
    set_boot(t, std::string(k_boot_b) + "\n"); // as if bound in an earlier boot, still on vfio-pci
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        util::arm_fault_point("restore.override", 1);
        (void)vfio::give_back(k, {}, {}, false, quick());
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 86);
    auto j = vfio::load_journal(k, k_state);
    ASSERT_TRUE(j.ok());
    ASSERT_EQ(j->entries.size(), 1u);
    EXPECT_EQ(j->entries[0].boot.str(), k_boot_b);
    EXPECT_EQ(j->entries[0].phase, "restoring");
    auto r = vfio::recover(k, quick());
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_FALSE(r->settled.has_value());
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
}

// Killed between the settled record and the journal: the entry is still
// in the journal and is settled (and recorded) again, with no kernel write.
TEST(Settling, KilledAfterTheRecordSettlesAgain) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    journal_gpu(k, k_boot_a);
    set_boot(t, std::string(k_boot_b) + "\n");
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        util::arm_fault_point("settle.recorded", 1);
        (void)vfio::recover(k, quick(), vfio::RecoverMode::at_boot);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 86);
    EXPECT_TRUE(k.exists("/var/lib/vfioctl/journal.json"));
    auto first = vfio::load_settled(k, k_state);
    ASSERT_TRUE(first.ok()) << first.error().describe();
    EXPECT_EQ(first->settlements.size(), 1u);
    auto r = vfio::recover(k, quick(), vfio::RecoverMode::at_boot);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_FALSE(k.exists("/var/lib/vfioctl/journal.json"));
    auto second = vfio::load_settled(k, k_state);
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(second->settlements.size(), 2u);
    EXPECT_EQ(k.writes(), std::vector<std::string>{});
}

TEST(SettledRecord, IsBoundedAndWrittenWhole) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    for (size_t n = 0; n < vfio::k_settlements_kept + 5; ++n) {
        vfio::Settlement s;
        s.at = "2026-11-30T10:00:" + std::to_string(10 + n) + "Z";
        s.boot = boot(k_boot_b);
        for (size_t d = 0; d < 100; ++d) {
            vfio::JournalEntry e;
            e.address = fmt::format("0000:{:02x}:00.0", d);
            e.group = static_cast<int>(d);
            e.phase = "bound";
            e.original_driver = "e1000e";
            e.boot = boot(k_boot_a);
            s.devices.push_back(e);
        }
        ASSERT_TRUE(vfio::append_settlement(k, k_state, s).ok());
    }
    auto rec = vfio::load_settled(k, k_state);
    ASSERT_TRUE(rec.ok()) << rec.error().describe();
    ASSERT_EQ(rec->settlements.size(), vfio::k_settlements_kept);
    // The oldest went first.
    EXPECT_EQ(rec->settlements.front().at, "2026-11-30T10:00:15Z");
    EXPECT_EQ(rec->last()->at, "2026-11-30T10:00:30Z");
    for (const auto& s : rec->settlements) {
        EXPECT_EQ(s.count, 100u);
        EXPECT_EQ(s.devices.size(), vfio::k_devices_listed);
    }
    EXPECT_LT(t.read("/var/lib/vfioctl/settled.json").size(), vfio::k_settled_max_bytes);
    // Atomic: the file was renamed into place; no temporary is left.
    auto names = k.list(k_state);
    ASSERT_TRUE(names.ok());
    EXPECT_EQ(*names, std::vector<std::string>{"settled.json"});
}

TEST_F(Settle, CorruptOrOversizedRecordIsReportedAndKept) {
    for (std::string bad : {std::string("{\"format\": 1, \"settlements\": [{\"at"),
                            std::string("{\"format\": 2, \"settlements\": []}"),
                            std::string(vfio::k_settled_max_bytes + 10, ' ')}) {
        HostTree t = fixture::seed_after();
        FakeKernel k(t);
        journal_gpu(k, k_boot_a);
        set_boot(t, std::string(k_boot_b) + "\n");
        t.write("/var/lib/vfioctl/settled.json", bad);
        auto r = run_cli(k, {"recover", "--at-boot"}, paths);
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_TRUE(contains(r.err, "the settled record is corrupt")) << r.err;
        EXPECT_EQ(t.read("/var/lib/vfioctl/settled.json"), bad);
        EXPECT_TRUE(k.exists("/var/lib/vfioctl/journal.json"));
        EXPECT_EQ(k.writes(), std::vector<std::string>{});

        auto st = run_cli(k, {"--json", "status"}, paths);
        json j = st.json();
        ASSERT_TRUE(j.is_object()) << st.out;
        EXPECT_TRUE(j["settled"]["error"].is_string()) << j["settled"];
        EXPECT_TRUE(contains(j["settled"]["error"].get<std::string>(), "corrupt"));
        auto text = run_cli(k, {"status"}, paths);
        EXPECT_TRUE(contains(text.out, "Settled after a reboot\n  the record cannot be read: "))
            << text.out;
    }
}

TEST_F(Settle, RecoverAtBootSettlesAndStatusShowsIt) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    journal_gpu(k, k_boot_a);
    set_boot(t, std::string(k_boot_b) + "\n");

    // Before: status says the entry is of an earlier boot.
    auto before = run_cli(k, {"--json", "status"}, paths);
    json jb = before.json();
    ASSERT_EQ(jb["journal_pending"].size(), 1u) << before.out;
    EXPECT_EQ(jb["journal_pending"][0]["boot"], k_boot_a);
    EXPECT_EQ(jb["journal_pending"][0]["boot_state"], "earlier");
    EXPECT_EQ(jb["settled"]["last"], nullptr);

    auto r = run_cli(k, {"recover", "--at-boot"}, paths);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "Settled 1 journal entry of an earlier boot at ")) << r.out;
    EXPECT_TRUE(contains(r.out, "  0000:8a:00.0: was on nvidia, bound since 2026-11-30T10:00:00Z "
                                "in boot " +
                                    std::string(k_boot_a) + "\n"))
        << r.out;
    EXPECT_EQ(k.writes(), std::vector<std::string>{});
    EXPECT_FALSE(k.exists("/var/lib/vfioctl/journal.json"));

    auto text = run_cli(k, {"status"}, paths);
    EXPECT_TRUE(contains(text.out, "\nSettled after a reboot (/var/lib/vfioctl/settled.json)\n"
                                   "  Settled 1 journal entry of an earlier boot at "))
        << text.out;
    EXPECT_TRUE(contains(text.out, "    0000:8a:00.0: was on nvidia, bound since")) << text.out;
    auto js = run_cli(k, {"--json", "status"}, paths);
    json j = js.json();
    ASSERT_TRUE(j.is_object()) << js.out;
    EXPECT_EQ(j["boot_id"], k_boot_b);
    EXPECT_EQ(j["settled"]["error"], nullptr);
    const json& last = j["settled"]["last"];
    EXPECT_EQ(last["count"], 1);
    EXPECT_EQ(last["boot"], k_boot_b);
    ASSERT_EQ(last["devices"].size(), 1u) << last;
    EXPECT_EQ(last["devices"][0]["address"], fixture::k_seed_gpu);
    EXPECT_EQ(last["devices"][0]["boot"], k_boot_a);
    EXPECT_EQ(last["devices"][0]["original_driver"], "nvidia");
    EXPECT_EQ(last["devices"][0]["phase"], "bound");
    EXPECT_EQ(j["journal_pending"], json::array());
    EXPECT_EQ(j["journal_unknown_boot"], json::array());

    // Nothing more to settle.
    auto again = run_cli(k, {"--json", "recover", "--at-boot"}, paths);
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(again.json()["settled"], nullptr);
    EXPECT_EQ(again.json()["left"], json::array());
}

TEST_F(Settle, RecoverAtBootLeavesUnknownAndCurrentBootEntriesWithExitFour) {
    struct Case {
        std::optional<std::string> boot_id;
        const char* entry_boot;
        const char* reason;
    };
    for (const Case& c :
         std::vector<Case>{{std::string(k_boot_b) + "\n", nullptr, "boot_unknown"},
                           {std::string(k_boot_a) + "\n", k_boot_a, "this_boot"},
                           {std::nullopt, k_boot_a, "current_boot_unknown"},
                           {std::string("garbage"), k_boot_a, "current_boot_unknown"}}) {
        HostTree t = fixture::seed_after();
        FakeKernel k(t);
        if (c.boot_id) set_boot(t, *c.boot_id);
        journal_gpu(k, c.entry_boot);
        auto text = run_cli(k, {"recover", "--at-boot"}, paths);
        EXPECT_EQ(text.exit_code, 4) << c.reason;
        EXPECT_TRUE(contains(text.err, "vfioctl: error: 1 journal entry was not settled: "
                                       "0000:8a:00.0"))
            << text.err;
        EXPECT_TRUE(contains(text.err, "run 'vfioctl recover'")) << text.err;
        auto js = run_cli(k, {"--json", "recover", "--at-boot"}, paths);
        EXPECT_EQ(js.exit_code, 4);
        json j = js.json();
        ASSERT_TRUE(j.is_object()) << js.out;
        EXPECT_EQ(j["exit_code"], 4);
        EXPECT_EQ(j["settled"], nullptr);
        ASSERT_EQ(j["left"].size(), 1u) << js.out;
        EXPECT_EQ(j["left"][0]["address"], fixture::k_seed_gpu);
        EXPECT_EQ(j["left"][0]["reason"], c.reason);
        EXPECT_EQ(k.writes(), std::vector<std::string>{}) << c.reason;
        EXPECT_TRUE(k.exists("/var/lib/vfioctl/journal.json"));
        EXPECT_FALSE(k.exists("/var/lib/vfioctl/settled.json"));

        if (std::string(c.reason) != "this_boot") {
            auto st = run_cli(k, {"--json", "status"}, paths);
            EXPECT_EQ(st.json()["journal_unknown_boot"], json::array({fixture::k_seed_gpu}))
                << c.reason;
            auto stt = run_cli(k, {"status"}, paths);
            EXPECT_TRUE(contains(stt.out, "its boot is unknown: never settled")) << stt.out;
        }
    }
}

TEST_F(Settle, PlainRecoverSettlesEarlierBootsThenRecoversTheRest) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    set_boot(t, std::string(k_boot_b) + "\n");
    bind_gpu(k); // this boot
    // And an entry of boot A for a device the reboot gave back.
    auto j = vfio::load_journal(k, k_state);
    ASSERT_TRUE(j.ok());
    vfio::JournalEntry e;
    e.address = "0000:00:1f.6";
    e.group = 7;
    e.original_driver = "e1000e";
    e.phase = "bound";
    e.since = "2026-11-29T10:00:00Z";
    e.boot = boot(k_boot_a);
    j->entries.insert(j->entries.begin(), e);
    ASSERT_TRUE(vfio::save_journal(k, k_state, *j).ok());
    const size_t before = k.writes().size();

    auto r = run_cli(k, {"--json", "recover"}, paths);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json out = r.json();
    EXPECT_EQ(out["settled"]["count"], 1);
    EXPECT_EQ(out["settled"]["devices"][0]["address"], "0000:00:1f.6");
    ASSERT_EQ(out["changes"].size(), 1u) << r.out;
    EXPECT_EQ(out["changes"][0]["address"], fixture::k_seed_gpu);
    EXPECT_EQ(out["changes"][0]["to"], "nvidia");
    EXPECT_EQ(out["boot"], k_boot_b);
    EXPECT_EQ(out["at_boot"], false);
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    // Only the GPU of this boot was written to.
    for (size_t i = before; i < k.writes().size(); ++i)
        EXPECT_FALSE(contains(k.writes()[i], "0000:00:1f.6")) << k.writes()[i];
    EXPECT_GT(k.writes().size(), before);
    EXPECT_FALSE(k.exists("/var/lib/vfioctl/journal.json"));
}

TEST_F(Settle, HelpNamesTheBootModeAndItsExitCode) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    auto r = run_cli(k, {"recover", "--help"}, paths);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_TRUE(contains(r.out, "--at-boot")) << r.out;
    EXPECT_TRUE(contains(r.out, "4 (--at-boot) entries left for 'vfioctl recover'")) << r.out;
}

// A bind over an entry of an earlier boot takes what the device has now as
// its original driver: the reboot gave it back, and the old entry's driver
// may be long gone. An entry of this boot (a killed bind) is kept as before.
TEST(EntryBoot, BindOverAnEarlierBootsEntryTakesTheDriverItHasNow) {
    for (const char* entry_boot : {k_boot_a, k_boot_b}) {
        HostTree t = fixture::seed_after();
        FakeKernel k(t);
        vfio::Journal j;
        vfio::JournalEntry e;
        e.address = fixture::k_seed_gpu;
        e.group = 165;
        e.original_driver = "nouveau";
        e.phase = "bound";
        e.boot = boot(entry_boot);
        j.entries.push_back(e);
        ASSERT_TRUE(vfio::save_journal(k, k_state, j).ok());
        set_boot(t, std::string(k_boot_b) + "\n");
        bind_gpu(k);
        auto after = vfio::load_journal(k, k_state);
        ASSERT_TRUE(after.ok());
        ASSERT_EQ(after->entries.size(), 1u);
        EXPECT_EQ(after->entries[0].original_driver,
                  std::optional<std::string>(entry_boot == k_boot_a ? "nvidia" : "nouveau"))
            << entry_boot;
        EXPECT_EQ(after->entries[0].boot.str(), k_boot_b);
    }
}
