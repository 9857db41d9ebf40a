// What vfioctl prints when the host hands it hostile bytes (escape
// sequences, bytes that are not UTF-8, wrong types in its own journals),
// and the command-line answers that used to be wrong: repeatable options,
// seconds that are not finite, profile files by path, a revert that
// changes nothing, unknown commands.

#include "support.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>

using namespace vfioctl;
using fixture::HostTree;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& text, const std::string& needle) {
    return text.find(needle) != std::string::npos;
}

// An OSC sequence (sets the terminal's title) and two bytes that are not UTF-8.
const std::string k_osc = "\x1b]0;pwned\x07";
const std::string k_bad_utf8 = "\xff\xfe";
const std::string k_replacement = "\xef\xbf\xbd"; // U+FFFD

// No raw ESC, BEL or other control byte but newline and tab.
void expect_printable(const std::string& text, const std::string& what) {
    for (unsigned char c : text)
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
            ADD_FAILURE() << what << " holds the raw byte " << static_cast<int>(c) << ":\n" << text;
            return;
        }
    EXPECT_FALSE(has(text, k_bad_utf8)) << what << " holds raw bytes that are not UTF-8";
}

// The seed's host after the reboot, with a hostile running command line.
HostTree hostile_cmdline_host() {
    HostTree t = fixture::seed_after();
    t.set_cmdline("BOOT_IMAGE=/boot/vmlinuz " + k_bad_utf8 + " ro " + k_osc +
                  " intel_iommu=on iommu=pt");
    return t;
}

} // namespace

// status --json: valid JSON with U+FFFD for the bad bytes (no type_error,
// no abort); the verdict is the one the clean host gets.
TEST(OutputSafety, StatusJsonWithHostileCmdlineIsValidJson) {
    HostTree t = hostile_cmdline_host();
    auto o = test::run_on(t, {"--json", "status"});
    const auto& clean = test::shared_run("seed_after", {"status", "--json"});
    EXPECT_EQ(o.exit_code, clean.exit_code) << o.err;
    json j = test::json_of(o);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["exit_code"], o.exit_code);
    const std::string cmdline = j["kernel"]["cmdline"];
    EXPECT_TRUE(has(cmdline, k_replacement + k_replacement)) << cmdline;
    EXPECT_TRUE(has(cmdline, k_osc)) << "JSON keeps the text, escaped: " << cmdline;
    EXPECT_FALSE(has(o.out, "\x1b")) << "the ESC byte is \\u001b in the JSON text";
    EXPECT_TRUE(has(o.out, "\\u001b]0;pwned\\u0007")) << o.out;
    EXPECT_EQ(j["iommu"]["enabled"], true);
}

// status as text: the sequence is shown as \xNN, never sent raw.
TEST(OutputSafety, StatusTextEscapesHostileCmdline) {
    HostTree t = hostile_cmdline_host();
    auto o = test::run_on(t, {"status"});
    const auto& clean = test::shared_run("seed_after", {"status", "--json"});
    EXPECT_EQ(o.exit_code, clean.exit_code) << o.err;
    expect_printable(o.out, "stdout");
    expect_printable(o.err, "stderr");
    EXPECT_TRUE(has(
        o.out,
        "command line: BOOT_IMAGE=/boot/vmlinuz \\xff\\xfe ro \\x1b]0;pwned\\x07 intel_iommu=on"))
        << o.out;
}

// iommu show, text and JSON, with the same command line and a hostile
// GRUB value.
TEST(OutputSafety, IommuShowWithHostileCmdlineAndGrubValue) {
    HostTree t = hostile_cmdline_host();
    t.set_grub("intel_iommu=on \x1b[2J" + k_bad_utf8);
    auto text = test::run_on(t, {"iommu", "show"});
    EXPECT_EQ(text.exit_code, 0) << text.err;
    expect_printable(text.out, "stdout");
    expect_printable(text.err, "stderr");
    EXPECT_TRUE(has(text.out, "\\x1b[2J\\xff\\xfe")) << text.out;
    EXPECT_TRUE(has(text.out, "\\x1b]0;pwned\\x07")) << text.out;

    auto js = test::run_on(t, {"--json", "iommu", "show"});
    EXPECT_EQ(js.exit_code, 0) << js.err;
    json j = test::json_of(js);
    ASSERT_TRUE(j.is_object());
    EXPECT_TRUE(has(j["running_cmdline"].get<std::string>(), k_replacement)) << js.out;
    EXPECT_TRUE(has(j["configured_cmdline"].get<std::string>(), "\x1b[2J" + k_replacement))
        << js.out;
}

// A driver link whose name carries an escape sequence and a byte that is
// not UTF-8: groups prints it escaped, and as valid JSON.
TEST(OutputSafety, HostileDriverNameInGroups) {
    HostTree t = fixture::seed_after();
    const std::string evil = "nv" + k_osc + "\xff";
    const std::string dev = t.device_path(fixture::k_seed_gpu);
    t.mkdir("/sys/bus/pci/drivers/" + evil);
    t.symlink(dev + "/driver",
              HostTree::relative_link(dev + "/driver", "/sys/bus/pci/drivers/" + evil));
    auto text = test::run_on(t, {"groups"});
    EXPECT_EQ(text.exit_code, 0) << text.err;
    expect_printable(text.out, "stdout");
    expect_printable(text.err, "stderr");
    EXPECT_TRUE(has(text.out, "nv\\x1b]0;pwned\\x07\\xff")) << text.out;

    auto js = test::run_on(t, {"--json", "groups", "--device", fixture::k_seed_gpu});
    EXPECT_EQ(js.exit_code, 0) << js.err;
    json j = test::json_of(js);
    auto devs = test::vfioctl_devices(j);
    ASSERT_EQ(devs.count(fixture::k_seed_gpu), 1u) << js.out;
    EXPECT_EQ(devs[fixture::k_seed_gpu]["driver"], "nv" + k_osc + k_replacement);
}

// explain echoes the message it matched: escaped in text, valid in JSON.
TEST(OutputSafety, ExplainInputWithEscapesAndBadBytes) {
    const std::string msg = "vfio 0000:8a:00.0: no iommu_group found " + k_osc + k_bad_utf8;
    const auto& tree = test::shared_host("seed_before");
    auto text = test::run_on(tree, {"explain", msg});
    EXPECT_EQ(text.exit_code, 0) << text.err;
    expect_printable(text.out, "stdout");
    EXPECT_TRUE(has(text.out, "no iommu_group found")) << text.out;

    auto js = test::run_on(tree, {"--json", "explain", msg});
    EXPECT_EQ(js.exit_code, 0) << js.err;
    json j = test::json_of(js);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["recognised"], true);
}

// A number where the boot journal holds a string: every command that reads
// it says which file and key, and none aborts.
TEST(OutputSafety, BootJournalWithWrongTypesIsAClearError) {
    HostTree t = fixture::seed_before();
    const std::string grub = t.read("/etc/default/grub");
    t.write(
        "/var/lib/vfioctl/boot-journal.json",
        R"({"version": 1, "operations": [{"id": 20240611, "action": "enable", "state": "done"}]})");
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"iommu", "revert", "--yes"}, {"iommu", "enable", "--permanent", "--yes"}}) {
        SCOPED_TRACE(args[1]);
        auto o = test::run_on(t, args);
        EXPECT_EQ(o.exit_code, 1) << o.err;
        EXPECT_TRUE(has(o.err,
                        "vfioctl: error: the boot journal has a number where a string belongs, at "
                        "operations[0].id: "))
            << o.err;
        EXPECT_TRUE(has(o.err, "/var/lib/vfioctl/boot-journal.json")) << o.err;
        EXPECT_EQ(t.read("/etc/default/grub"), grub) << "nothing may change";
    }
    auto js = test::run_on(t, {"--json", "iommu", "revert", "--yes"});
    EXPECT_EQ(js.exit_code, 1);
    json j = test::json_of(js);
    EXPECT_TRUE(has(j.value("error", ""), "operations[0].id")) << js.out;
    EXPECT_EQ(j["exit_code"], 1);

    // 'show' never fails on a readable root: it reports the journal's error.
    auto show = test::run_on(t, {"--json", "iommu", "show"});
    EXPECT_EQ(show.exit_code, 0) << show.err;
    EXPECT_TRUE(has(test::json_of(show).value("journal_error", ""), "operations[0].id"))
        << show.out;

    // Deeper: a fingerprint's size as a string.
    t.write("/var/lib/vfioctl/boot-journal.json",
            R"({"version": 1, "operations": [{"id": "1", "action": "enable", "state": "done",
                "files": [{"path": "/etc/default/grub", "before": {"size": "12", "fnv1a64": "00"}}]}]})");
    auto deep = test::run_on(t, {"iommu", "revert", "--yes"});
    EXPECT_EQ(deep.exit_code, 1);
    EXPECT_TRUE(has(deep.err,
                    "a string where a whole number belongs, at operations[0].files[0].before.size"))
        << deep.err;
}

// A revert whose files are already as they were changes nothing and says
// so with exit 1, never "Reverted"; the journal entry is closed after it.
TEST(OutputSafety, RevertThatChangesNothingSaysSo) {
    HostTree t = fixture::seed_before();
    const std::string original = t.read("/etc/default/grub");
    auto en = test::run_on(t, {"iommu", "enable", "--permanent", "--yes"});
    ASSERT_EQ(en.exit_code, 0) << en.err;
    ASSERT_NE(t.read("/etc/default/grub"), original);
    t.write("/etc/default/grub", original); // put back by hand

    auto dry = test::run_on(t, {"--json", "iommu", "revert", "--dry-run"});
    EXPECT_EQ(dry.exit_code, 1) << dry.err;
    json d = test::json_of(dry);
    EXPECT_EQ(d["changed"], false);
    EXPECT_TRUE(has(d.value("error", ""),
                    "nothing was reverted: /etc/default/grub is already as before 'enable'"))
        << dry.out;

    auto rv = test::run_on(t, {"iommu", "revert", "--yes"});
    EXPECT_EQ(rv.exit_code, 1) << rv.out << rv.err;
    EXPECT_TRUE(has(
        rv.err,
        "vfioctl: error: nothing was reverted: /etc/default/grub is already as before 'enable'"))
        << rv.err;
    EXPECT_FALSE(has(rv.out, "Reverted")) << rv.out;
    EXPECT_TRUE(has(rv.out, "/etc/default/grub: already as it was before")) << rv.out;
    EXPECT_EQ(t.read("/etc/default/grub"), original);

    auto again = test::run_on(t, {"iommu", "revert", "--yes"});
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_TRUE(has(again.err, "nothing to revert")) << again.err;
    auto show = test::run_on(t, {"iommu", "show"});
    EXPECT_FALSE(has(show.out, "'vfioctl iommu revert' undoes it")) << show.out;
}

// Two --gpu before "--": both reach the request (the second, a device that
// does not exist, is what stops it) and the command keeps its options.
TEST(OutputSafety, GpuIsRepeatable) {
    HostTree t = fixture::seed_after();
    t.write("/boot/vmlinuz-test", "kernel");
    fixture::TempDir runs;
    for (const auto& cmd : std::vector<std::vector<std::string>>{
             {"vm", "run", "--kernel", "/boot/vmlinuz-test", "--gpu", "8a:00.0", "--gpu",
              "0000:99:00.0", "--run-dir", runs.path.string(), "--", "sh", "-c", "exit 0"},
             {"vm", "start", "two", "--kernel", "/boot/vmlinuz-test", "--gpu", "8a:00.0", "--gpu",
              "0000:99:00.0", "--run-dir", runs.path.string()}}) {
        SCOPED_TRACE(cmd[1]);
        auto o = test::run_on(t, cmd);
        EXPECT_EQ(o.exit_code, 1) << o.err;
        EXPECT_FALSE(has(o.err, "At Most")) << o.err;
        EXPECT_TRUE(has(o.err, "no PCI device at 0000:99:00.0")) << o.err;
        EXPECT_EQ(t.read("/sys/bus/pci/devices/0000:8a:00.0/driver_override"), "(null)\n");
    }
    // --qemu-arg too: the second one no longer stops the parse.
    auto q = test::run_on(t, {"vm", "start", "q", "--kernel", "/boot/nope", "--qemu-arg=-no-reboot",
                              "--qemu-arg=-S", "--run-dir", runs.path.string()});
    EXPECT_EQ(q.exit_code, 1) << q.err;
    EXPECT_TRUE(has(q.err, "kernel not found: /boot/nope")) << q.err;
}

// verify --in-guest checks every --expect.
TEST(OutputSafety, ExpectIsRepeatable) {
    auto o =
        test::run_on(test::shared_host("seed_after"), {"--json", "verify", "--in-guest", "--expect",
                                                       "10de:2336", "--expect", "10de:ffff"});
    EXPECT_EQ(o.exit_code, 1) << o.err;
    json j = test::json_of(o);
    std::map<std::string, bool> checks;
    for (const auto& c : j["checks"])
        checks[c["check"].get<std::string>()] = c["ok"].get<bool>();
    ASSERT_EQ(checks.count("10de:2336 is on the bus"), 1u) << o.out;
    ASSERT_EQ(checks.count("10de:ffff is on the bus"), 1u) << o.out;
    EXPECT_TRUE(checks["10de:2336 is on the bus"]);
    EXPECT_FALSE(checks["10de:ffff is on the bus"]);
    EXPECT_EQ(j["ok"], false);
}

// Every seconds option refuses nan, inf, negative and huge values as a
// usage error, and still takes a plain number.
TEST(OutputSafety, SecondsMustBeFinite) {
    HostTree tree = fixture::seed_after();
    fixture::TempDir runs;
    const std::string rd = runs.path.string();
    struct Case {
        std::vector<std::string> args; // before the option
        std::string option;
        bool command = false; // 'vm run' takes "-- true" after it
    };
    const std::vector<Case> cases = {
        {{"vm", "run", "--kernel", "/boot/nope", "--run-dir", rd}, "--timeout", true},
        {{"vm", "run", "--kernel", "/boot/nope", "--run-dir", rd}, "--boot-timeout", true},
        {{"vm", "start", "x", "--kernel", "/boot/nope", "--run-dir", rd}, "--wait"},
        {{"vm", "stop", "x", "--run-dir", rd}, "--timeout"},
        {{"verify", "--kernel", "/boot/nope"}, "--timeout"},
        {{"bind", "8a:00.0", "--dry-run"}, "--timeout"},
    };
    auto argv = [](const Case& c, const std::string& value) {
        auto args = c.args;
        args.push_back(c.option + "=" + value); // "=": "-inf" is no option
        if (c.command) args.insert(args.end(), {"--", "true"});
        return args;
    };
    for (const auto& c : cases) {
        for (const char* bad : {"nan", "inf", "-inf", "-1", "1e400", "ten"}) {
            SCOPED_TRACE(c.args[0] + " " + c.args[1] + " " + c.option + "=" + bad);
            auto o = test::run_on(tree, argv(c, bad));
            EXPECT_EQ(o.exit_code, 2) << o.err;
            EXPECT_TRUE(has(o.err, "not a number of seconds")) << o.err;
            EXPECT_EQ(o.out, "");
        }
        SCOPED_TRACE(c.args[0] + " " + c.args[1] + " " + c.option + "=5");
        auto ok = test::run_on(tree, argv(c, "5"));
        EXPECT_NE(ok.exit_code, 2) << "5 seconds is fine: " << ok.err;
        EXPECT_FALSE(has(ok.err, "not a number of seconds")) << ok.err;
    }
}

// vm start takes a .toml file by relative or absolute path: the file is
// read (its bad key is reported with its line; its kernel is looked for).
TEST(OutputSafety, VmStartReadsAProfileFileByPath) {
    HostTree t = fixture::seed_before();
    fixture::TempDir dir;
    fixture::TempDir runs;
    const fs::path bad = dir.path / "bad.toml";
    const fs::path good = dir.path / "good.toml";
    { std::ofstream(bad) << "cpus = 2\n\nbogus = true\n"; }
    { std::ofstream(good) << "cpus = 2\n[boot]\nkernel = \"/boot/nope\"\n"; }
    const std::string rel = "./" + fs::relative(bad, fs::current_path()).string();
    for (const std::string& arg : {bad.string(), rel}) {
        SCOPED_TRACE(arg);
        auto o = test::run_on(t, {"vm", "start", arg, "--run-dir", runs.path.string()});
        EXPECT_EQ(o.exit_code, 1) << o.err;
        EXPECT_TRUE(has(o.err, "/bad.toml:3: unknown key 'bogus'")) << o.err;
        EXPECT_FALSE(has(o.err, "bad VM name")) << o.err;
    }
    const std::string good_rel = "./" + fs::relative(good, fs::current_path()).string();
    for (const std::string& arg : {good.string(), good_rel}) {
        SCOPED_TRACE(arg);
        auto o = test::run_on(t, {"vm", "start", arg, "--run-dir", runs.path.string()});
        EXPECT_EQ(o.exit_code, 1) << o.err;
        EXPECT_TRUE(has(o.err, "kernel not found: /boot/nope")) << o.err;
        EXPECT_FALSE(has(o.err, "bad VM name")) << o.err;
    }
}

// An unknown command is named, with the commands there are.
TEST(OutputSafety, UnknownCommandIsNamed) {
    auto top = test::run_vfioctl({"frobnicate"});
    EXPECT_EQ(top.exit_code, 2);
    EXPECT_TRUE(has(top.err, "vfioctl: error: unknown command 'frobnicate'")) << top.err;
    EXPECT_TRUE(has(top.err, "status, groups, explain")) << top.err;
    EXPECT_FALSE(has(top.err, "A subcommand is required")) << top.err;

    auto vm = test::run_vfioctl({"vm", "frobnicate"});
    EXPECT_EQ(vm.exit_code, 2);
    EXPECT_TRUE(has(vm.err, "vfioctl: error: unknown command 'frobnicate'")) << vm.err;
    EXPECT_TRUE(
        has(vm.err, "the commands of 'vfioctl vm': start, stop, status, list, console, run"))
        << vm.err;

    auto none = test::run_vfioctl({"vm"});
    EXPECT_EQ(none.exit_code, 2);
    EXPECT_TRUE(has(none.err, "'vfioctl vm' needs a command")) << none.err;

    auto js = test::run_vfioctl({"--json", "iommu", "frobnicate"});
    EXPECT_EQ(js.exit_code, 2);
    json j = test::json_of(js);
    EXPECT_EQ(j.value("error", ""), "unknown command 'frobnicate'");
    EXPECT_EQ(j["exit_code"], 2);

    auto escaped = test::run_vfioctl({"frob" + k_osc});
    EXPECT_EQ(escaped.exit_code, 2);
    expect_printable(escaped.err, "stderr");
    EXPECT_TRUE(has(escaped.err, "unknown command 'frob\\x1b]0;pwned\\x07'")) << escaped.err;
}

// A parse error quotes the argument as given: its bytes are escaped like
// any text, and --json gets the error as JSON (CLI11 printed both raw, and
// no JSON at all).
TEST(OutputSafety, ParseErrorsAreEscapedAndJson) {
    const auto& tree = test::shared_host("seed_after");
    auto text = test::run_on(tree, {"bind", "--dry-run", "8a:00.0", "--timeout=" + k_osc});
    EXPECT_EQ(text.exit_code, 2);
    expect_printable(text.err, "stderr");
    EXPECT_TRUE(
        has(text.err, "vfioctl: error: --timeout: '\\x1b]0;pwned\\x07' is not a number of seconds"))
        << text.err;
    auto opt = test::run_on(tree, {"--fr" + k_osc, "status"});
    EXPECT_EQ(opt.exit_code, 2);
    expect_printable(opt.err, "stderr");
    EXPECT_TRUE(has(opt.err, "--fr\\x1b]0;pwned\\x07")) << opt.err;

    auto js = test::run_on(tree, {"--json", "bind", "--frob", "8a:00.0"});
    EXPECT_EQ(js.exit_code, 2);
    json j = test::json_of(js);
    EXPECT_TRUE(has(j.value("error", ""), "--frob")) << js.out;
    EXPECT_EQ(j["exit_code"], 2);

    // --gpu's range is named in a few words (not DBL_MAX's 309 digits).
    auto gpu = test::run_on(tree, {"bind", "--dry-run", "--gpu", "-1"});
    EXPECT_EQ(gpu.exit_code, 2);
    EXPECT_LT(gpu.err.size(), 400u) << gpu.err;
}

// A C1 control (U+009B, CSI to some terminals) from the host: text shows
// its bytes as \xNN, JSON as \u009b (nlohmann's dump left it raw).
TEST(OutputSafety, C1ControlsAreEscapedInJsonToo) {
    HostTree t = fixture::seed_after();
    t.set_cmdline("BOOT_IMAGE=/boot/vmlinuz \xc2\x9b"
                  "2J intel_iommu=on iommu=pt");
    auto js = test::run_on(t, {"--json", "status"});
    EXPECT_FALSE(has(js.out, "\xc2\x9b")) << "raw C1 control in JSON";
    EXPECT_TRUE(has(js.out, "\\u009b2J")) << js.out;
    json j = test::json_of(js);
    EXPECT_TRUE(has(j["kernel"]["cmdline"].get<std::string>(), "\xc2\x9b"
                                                               "2J"));
    auto text = test::run_on(t, {"status"});
    EXPECT_FALSE(has(text.out, "\xc2\x9b"));
    EXPECT_TRUE(has(text.out, "\\xc2\\x9b2J")) << text.out;
}

// A damaged VM record: 'vm status NAME' named no VM at all (the record's
// error was dropped), printed nlohmann's exception text, and with fewer
// device_ids than devices read past the end (SIGSEGV). A PID that does
// not fit an int wrapped (4294967297 read as 1, which 'vm stop --force'
// would kill). Each is now a damaged record, named; a dead VM's status
// says on stderr why it exits 1.
TEST(OutputSafety, DamagedVmRecordsAreNamed) {
    const auto& tree = test::shared_host("seed_after");
    fixture::TempDir runs;
    auto status = [&](const json& rec, bool as_json) {
        fs::create_directories(runs.path / "r");
        { std::ofstream(runs.path / "r" / "vm.json") << rec.dump(); }
        std::vector<std::string> args = {"vm", "status", "r", "--run-dir", runs.path.string()};
        if (as_json) args.insert(args.begin(), "--json");
        return test::run_on(tree, args);
    };
    // 4194304: pid_max is at most 2^22, so no process has it.
    const json dead = {{"name", "r"},
                       {"pid", 4194304},
                       {"devices", {"0000:8a:00.0"}},
                       {"device_ids", {"10de:2336"}}};
    struct C {
        std::function<void(json&)> edit;
        std::string says;
    };
    for (const C& c : std::vector<C>{
             {[](json& j) {
                  j["devices"] = {"0000:8a:00.0", "0000:8b:00.0"};
                  j["device_ids"] = json::array();
              },
              "VM record is damaged (devices and device_ids differ in length (2 and 0))"},
             {[](json& j) { j["pid"] = "1"; },
              "VM record is damaged (pid is a string, not a whole number)"},
             {[](json& j) { j["pid"] = 4294967297ull; },
              "VM record is damaged (pid is out of range)"},
             {[](json&) {}, "VM 'r' is not running"}}) {
        SCOPED_TRACE(c.says);
        json rec = dead;
        c.edit(rec);
        for (bool as_json : {false, true}) {
            auto o = status(rec, as_json);
            EXPECT_EQ(o.signal, 0);
            EXPECT_EQ(o.exit_code, 1) << o.err;
            EXPECT_TRUE(has(o.err, c.says)) << o.err;
            EXPECT_FALSE(has(o.err + o.out, "type_error")) << o.err;
            if (as_json) {
                EXPECT_TRUE(test::json_of(o).is_object());
            }
        }
    }
}

// explain exits 1 when it recognises nothing: with --json it said so only
// in the JSON ("recognised": false), nothing on stderr.
TEST(OutputSafety, ExplainWithoutAMatchSaysSoOnStderrWithJsonToo) {
    const auto& tree = test::shared_host("seed_before");
    for (bool as_json : {false, true}) {
        std::vector<std::string> args = {"explain", "nothing known here"};
        if (as_json) args.insert(args.begin(), "--json");
        auto o = test::run_on(tree, args);
        EXPECT_EQ(o.exit_code, 1);
        EXPECT_TRUE(has(o.err, "no known QEMU, VFIO or NVIDIA message")) << o.err;
        if (as_json) {
            EXPECT_EQ(test::json_of(o)["recognised"], false);
        }
    }
}
