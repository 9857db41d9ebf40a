// Category 1: command-line arguments. Unknown commands and options, bad
// --root and --state-dir values, seconds that are no number, PCI addresses
// that are paths, huge or carry control bytes, repeated options. Each ends
// in a usage error (2) or a clear failure (1) and changes nothing.

#include "hostile.hpp"

namespace vfioctl::hostile {
namespace {

const std::string k_long(10000, 'a');

// A usage error, named on stderr, nothing changed.
Case usage(std::string name, std::vector<std::string> args, std::string says = {}) {
    return Case{.name = std::move(name),
                .args = std::move(args),
                .exits = {2},
                .check = says.empty() ? Check{} : err_has(says)};
}

// A usage error for arguments that carry their own --root.
Case usage_noroot(std::string name, std::vector<std::string> args, std::string says = {}) {
    Case c = usage(std::move(name), std::move(args), std::move(says));
    c.no_root = true;
    return c;
}

// A clear failure (exit 1) of a command that changes nothing.
Case fails(std::string name, std::vector<std::string> args, std::string says = {}) {
    return Case{.name = std::move(name),
                .args = std::move(args),
                .exits = {1},
                .check = says.empty() ? Check{} : err_has(says)};
}

std::vector<Case> cli_cases() {
    std::vector<Case> v;
    // Commands and options that do not exist.
    v.push_back(usage("unknown_command", {"frobnicate"}, "unknown command 'frobnicate'"));
    v.push_back(usage("empty_command", {""}));
    v.push_back(usage("no_command", {}, "needs a command"));
    v.push_back(usage("json_and_no_command", {"--json"}, "needs a command"));
    v.push_back(usage("unknown_global_option", {"--frob", "status"}, "--frob"));
    v.push_back(usage("unknown_status_option", {"status", "--frob"}, "--frob"));
    v.push_back(
        usage("unknown_bind_option_json", {"--json", "bind", "--frob", "8a:00.0"}, "--frob"));
    v.push_back(usage("unknown_iommu_command", {"iommu", "frob"}, "unknown command 'frob'"));
    v.push_back(
        usage("unknown_vm_command_json", {"--json", "vm", "frob"}, "unknown command 'frob'"));
    v.push_back(usage("option_with_escape", {"--fr" + k_csi + "ob", "status"}, "\\x1b[2J"));
    v.push_back(usage("command_with_osc", {"st" + k_osc}, "\\x1b]0;pwned\\x07"));
    v.push_back(usage("command_not_utf8_json", {"--json", "st" + k_bad_utf8}, "\\xff\\xfe"));
    v.push_back(
        usage("unbind_devices_and_all", {"unbind", "--all", "8a:00.0"}, "either devices or --all"));
    v.push_back(usage("unbind_nothing", {"unbind"}, "either devices or --all"));
    v.push_back(usage("bind_nothing_json", {"--json", "bind"}, "no device given"));
    v.push_back(usage("repeated_state_dir", {"recover", "--state-dir", "/a", "--state-dir", "/b"},
                      "--state-dir"));

    // --root: empty, missing, a file, no host tree, twice, huge, escapes.
    v.push_back(usage_noroot("root_empty", {"--root", "", "status"}, "--root is empty"));
    v.push_back(usage_noroot("root_empty_bind_json",
                             {"--root", "", "--json", "bind", "--force", "8a:00.0"},
                             "--root is empty"));
    v.push_back(usage_noroot("root_missing", {"--root", "{scratch}/nope", "status"},
                             "--root is not a directory"));
    v.push_back(usage_noroot("root_is_a_file", {"--root", "{root}/proc/cmdline", "groups"},
                             "--root is not a directory"));
    v.push_back(usage_noroot("root_not_a_host_tree",
                             {"--root", "{root}/sys", "bind", "--force", "8a:00.0"},
                             "not a host tree"));
    v.push_back(usage_noroot("root_is_the_sentinel", {"--root", "{sentinel}", "recover"},
                             "not a host tree"));
    v.push_back(usage_noroot("root_twice", {"--root", "{root}", "--root", "{scratch}", "status"},
                             "--root"));
    v.push_back(usage_noroot("root_10k", {"--root", "/" + k_long, "status"}));
    v.push_back(usage_noroot("root_with_escape", {"--root", "{scratch}/" + k_osc, "status"},
                             "\\x1b]0;pwned\\x07"));
    v.push_back(Case{.name = "root_with_dotdot_is_the_tree",
                     .args = {"--root", "{root}/sys/..", "--json", "groups"},
                     .exits = {0},
                     .no_root = true});
    v.push_back(Case{.name = "root_with_trailing_slashes",
                     .args = {"--root", "{root}///", "--json", "status"},
                     .exits = {0},
                     .no_root = true});

    // --state-dir: relative, '..', empty, huge, into the sentinel.
    v.push_back(
        usage("state_dir_relative", {"recover", "--state-dir", "var/lib/vfioctl"}, "--state-dir"));
    v.push_back(
        usage("state_dir_dotdot", {"recover", "--state-dir", "/var/../../{sname}"}, "--state-dir"));
    v.push_back(
        usage("state_dir_only_dotdot", {"unbind", "--all", "--state-dir", "/.."}, "--state-dir"));
    v.push_back(usage("state_dir_empty", {"recover", "--state-dir", ""}, "--state-dir"));
    v.push_back(usage("state_dir_dotdot_bind", {"bind", "8a:00.0", "--state-dir", "/../../{sname}"},
                      "--state-dir"));
    v.push_back(
        usage("state_dir_dotdot_iommu",
              {"iommu", "enable", "--permanent", "--yes", "--state-dir", "/x/../../../{sname}"},
              "--state-dir"));
    v.push_back(fails("state_dir_10k", {"recover", "--state-dir", "/" + k_long}));
    v.push_back(Case{.name = "state_dir_with_escape",
                     .args = {"--json", "recover", "--state-dir", "/var/lib/" + k_csi},
                     .exits = {0},
                     .read_only = false,
                     .check = [](Env& e, const Outcome&) {
                         EXPECT_TRUE(fs::exists(e.tree.path("/var/lib/" + k_csi + "/lock")));
                     }});

    // Seconds that are no number of seconds (bind's range is 0.1 to 3600).
    for (const auto& [name, value] :
         std::vector<std::pair<std::string, std::string>>{{"nan", "nan"},
                                                          {"NaN", "NaN"},
                                                          {"inf", "inf"},
                                                          {"minus_inf", "-inf"},
                                                          {"negative", "-1"},
                                                          {"overflow", "1e400"},
                                                          {"underflow", "1e-400"},
                                                          {"empty", ""},
                                                          {"unit", "5s"},
                                                          {"trailing_space", "5 "},
                                                          {"zero", "0"},
                                                          {"above_range", "3601"},
                                                          {"escape", "5" + k_csi}}) {
        v.push_back(usage("bind_timeout_" + name,
                          {"bind", "--dry-run", "8a:00.0", "--timeout=" + value}, "--timeout"));
    }
    v.push_back(usage("vm_start_wait_nan", {"vm", "start", "x", "--wait=nan"}, "--wait"));
    v.push_back(
        usage("vm_stop_timeout_negative", {"vm", "stop", "x", "--timeout=-5"}, "--timeout"));
    v.push_back(Case{.name = "bind_timeout_hex_is_a_number",
                     .args = {"bind", "--dry-run", "8a:00.0", "--timeout=0x10"},
                     .exits = {0}});

    // PCI addresses and IDs that are paths, huge, not ASCII, or carry escapes.
    for (const auto& [name, target] : std::vector<std::pair<std::string, std::string>>{
             {"bdf_with_dotdot", "0000:8a:00.0/../.."},
             {"bdf_path", "../../../etc"},
             {"bdf_function_8", "8a:00.8"},
             {"bdf_domain_too_big", "10000:8a:00.0"},
             {"bdf_300_chars", "0000:8a:00.0" + std::string(288, '0')},
             {"bdf_10k", k_long + ":00.0"},
             {"bdf_fullwidth", "\xef\xbc\x98\xef\xbd\x81:00.0"},
             {"bdf_not_utf8", "8a:00.0" + k_bad_utf8},
             {"bdf_with_osc", "8a:00.0" + k_osc},
             {"id_not_hex", "10de:zzzz"},
             {"id_half", "10de:"},
             {"id_colon", ":"},
             {"id_too_long", "10de:23360"}}) {
        v.push_back(fails("bind_" + name, {"--json", "bind", "--dry-run", target}));
    }
    // Surrounding white space is trimmed: the address names that device.
    v.push_back(Case{.name = "bind_bdf_newline_is_trimmed",
                     .args = {"--json", "bind", "--dry-run", "8a:00.0\n"},
                     .exits = {0},
                     .check = out_has("\"address\": \"0000:8a:00.0\"")});
    v.push_back(
        usage("bind_only_dashes", {"--json", "bind", "--dry-run", "--"}, "no device given"));
    v.push_back(fails("bind_no_such_device", {"--json", "bind", "--dry-run", "ffff:ff:1f.7"},
                      "no PCI device at ffff:ff:1f.7"));
    v.push_back(fails("bind_no_such_id", {"bind", "--force", "ffff:0001"},
                      "no PCI device with ID ffff:0001"));
    v.push_back(
        fails("bind_option_after_dashes", {"bind", "--", "--force"}, "'--force' is neither"));
    v.push_back(
        fails("bind_gpu_out_of_range", {"bind", "--dry-run", "--gpu", "99"}, "there is no GPU 99"));
    v.push_back(Case{.name = "bind_gpu_negative",
                     .args = {"bind", "--dry-run", "--gpu", "-1"},
                     .exits = {2},
                     .check = [](Env&, const Outcome& o) {
                         EXPECT_TRUE(has(o.err, "--gpu")) << o.err;
                         EXPECT_LT(o.err.size(), 400u) << "a short message: " << o.err;
                     }});
    v.push_back(
        usage("bind_gpu_huge", {"bind", "--dry-run", "--gpu", "99999999999999999999"}, "--gpu"));
    v.push_back(fails("unbind_bdf_with_dotdot", {"unbind", "0000:8a:00.0/../../../..", "--force"}));
    v.push_back(
        fails("groups_device_path", {"--json", "groups", "--device", "../../../../" + k_long}));
    v.push_back(fails("groups_device_with_osc", {"groups", "--device", "8a:00.0" + k_osc},
                      "\\x1b]0;pwned\\x07"));
    v.push_back(usage("vm_status_name_path", {"vm", "status", "../../{sname}"}, "bad VM name"));
    v.push_back(
        usage("vm_stop_name_path", {"vm", "stop", "--force", "../../{sname}"}, "bad VM name"));
    v.push_back(usage("vm_console_name_path", {"vm", "console", "../../{sname}"}, "bad VM name"));

    // Repeated flags are taken once; --help and --version answer and change nothing.
    v.push_back(Case{.name = "json_twice", .args = {"--json", "--json", "status"}, .exits = {0}});
    v.push_back(Case{.name = "dry_run_twice",
                     .args = {"bind", "--dry-run", "--dry-run", "8a:00.0"},
                     .exits = {0},
                     .check = out_has("dry run: nothing changed")});
    v.push_back(Case{.name = "help", .args = {"--help"}, .exits = {0}});
    v.push_back(Case{.name = "bind_help", .args = {"bind", "--help"}, .exits = {0}});
    v.push_back(
        Case{.name = "version", .args = {"--version"}, .exits = {0}, .check = out_has("vfioctl ")});

    // snapshot into places it must not write.
    v.push_back(fails("snapshot_into_the_sentinel", {"snapshot", "{sentinel}"}));
    v.push_back(fails("snapshot_into_the_tree", {"snapshot", "{root}"}));
    v.push_back(Case{.name = "snapshot_empty_dir_name", .args = {"snapshot", ""}, .exits = {1, 2}});
    v.push_back(Case{.name = "snapshot_dir_with_escape",
                     .args = {"--json", "snapshot", "{scratch}/snap" + k_csi},
                     .exits = {0},
                     .check = [](Env& e, const Outcome&) {
                         EXPECT_TRUE(fs::is_directory(e.scratch.path / ("snap" + k_csi + "/sys")));
                     }});
    return v;
}

} // namespace

INSTANTIATE_TEST_SUITE_P(Cli, Hostile, testing::ValuesIn(cli_cases()), case_name);

} // namespace vfioctl::hostile
