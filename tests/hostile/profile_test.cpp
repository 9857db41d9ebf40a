// Category 6: VM profiles and VM records. 'vm start' with malformed TOML,
// wrong types, huge values, paths that climb out, GPUs that are paths or
// host-critical; 'vm status' and 'vm list' on damaged run directories.
// QEMU never starts: under --root vfioctl runs no program (the fixture's
// qemu-system-x86_64 is a stub), so a well-formed profile gets as far as
// binding its GPUs in the tree, fails to launch, and gives them back.

#include "hostile.hpp"

#include <fstream>

namespace vfioctl::hostile {
namespace {

// A profile file in the scratch directory (a user's own file), and the
// kernel it names made inside the tree when `kernel` is set.
Mutation profile(std::string file, std::string text, bool kernel = false) {
    return [file, text, kernel](Env& e) {
        const fs::path p = e.scratch.path / file;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
        if (kernel) e.tree.write("/boot/vmlinuz-test", "not a kernel");
    };
}

const std::string k_kernel = "[boot]\nkernel = \"/boot/vmlinuz-test\"\n";

// After a failed start nothing of the VM is left: no run directory, the
// GPU's override as it was.
Check nothing_left(std::string vm) {
    return [vm](Env& e, const Outcome& o) {
        EXPECT_FALSE(fs::exists(e.scratch.path / "run" / vm)) << "run directory left behind\n"
                                                              << o.err;
        // Unset: as the fixture made it, or cleared by a give-back ("\n", which the kernel shows as
        // "(null)").
        const std::string ov = e.tree.read(Env::dev(fixture::k_seed_gpu) + "/driver_override");
        EXPECT_TRUE(ov == "(null)\n" || ov == "\n") << ov;
    };
}

Case start(std::string name, Mutation m, std::string file, std::set<int> exits,
           std::string says = {}) {
    const std::string vm = fs::path(file).stem().string();
    return Case{
        .name = "vm_start_" + name,
        .mutate = m,
        .args = {"vm", "start", "{scratch}/" + file, "--run-dir", "{scratch}/run", "--wait", "1"},
        .exits = std::move(exits),
        .check = all_of({says.empty() ? Check{} : err_has(says), nothing_left(vm)})};
}

std::vector<Case> profile_cases() {
    std::vector<Case> v;
    v.push_back(
        start("toml_syntax_error", profile("a.toml", "cpus = = 2\n"), "a.toml", {1}, "a.toml:1:"));
    v.push_back(start("unknown_key", profile("a.toml", "cpus = 2\nrm_rf = true\n"), "a.toml", {1},
                      "unknown key 'rm_rf'"));
    v.push_back(start("cpus_is_a_string", profile("a.toml", "cpus = \"2\"\n"), "a.toml", {1},
                      "must be an integer"));
    v.push_back(start("cpus_overflows", profile("a.toml", "cpus = 99999999999999999999999\n"),
                      "a.toml", {1}));
    v.push_back(start("cpus_zero", profile("a.toml", "cpus = 0\n" + k_kernel, true), "a.toml", {1},
                      "between 1 and 1024"));
    v.push_back(start("memory_huge", profile("a.toml", "memory = \"99999999999999G\"\n"), "a.toml",
                      {1}, "bad memory size"));
    v.push_back(start("memory_negative", profile("a.toml", "memory = -1\n"), "a.toml", {1}));
    v.push_back(start("ssh_port_out_of_range", profile("a.toml", "ssh_port = 70000\n"), "a.toml",
                      {1}, "between 1 and 65535"));
    v.push_back(
        start("nul_bytes", profile("a.toml", std::string("cpus = 2\0\0\n", 11)), "a.toml", {1}));
    v.push_back(
        start("not_utf8_string", profile("a.toml", "machine = \"q35\xff\xfe\"\n"), "a.toml", {1}));
    v.push_back(start(
        "megabyte_of_comments",
        [](Env& e) {
            profile("a.toml",
                    std::string(1 << 20, '#') + "\ncpus = 2\n[boot]\nkernel = \"/boot/none\"\n")(e);
        },
        "a.toml", {1}, "kernel not found"));
    v.push_back(start("disk_and_kernel",
                      profile("a.toml", "[boot]\nkernel = \"/k\"\ndisk = \"/d\"\n"), "a.toml", {1},
                      "both disk and kernel"));
    v.push_back(start("kernel_climbs_out",
                      profile("a.toml", "[boot]\nkernel = \"../../../../../../etc/shadow\"\n"),
                      "a.toml", {1}, "kernel not found"));
    v.push_back(start(
        "kernel_in_the_sentinel",
        [](Env& e) {
            profile("a.toml", "[boot]\nkernel = \"" + e.in_sentinel("secret") + "\"\n")(e);
        },
        "a.toml", {1}, "kernel not found"));
    v.push_back(start(
        "escapes_in_every_string",
        profile(
            "a.toml",
            "machine = \"q35\\u001b]0;pwned\\u0007\"\nextra_args = [\"-name\", \"\\u001b[2J\"]\n"
            "console_log = \"/tmp/\\u001b[2J.log\"\n[boot]\nkernel = "
            "\"/boot/\\u001b]0;x\\u0007\"\n"),
        "a.toml", {1}, "kernel not found: /boot/\\x1b]0;x\\x07"));
    v.push_back(start("gpu_is_a_path",
                      profile("a.toml", "gpus = [\"../../../../x\"]\n" + k_kernel, true), "a.toml",
                      {1}));
    v.push_back(start("gpu_is_the_root_disk",
                      profile("a.toml", "gpus = [\"01:00.0\"]\n" + k_kernel, true), "a.toml", {1},
                      "refusing to bind"));
    v.push_back(start("gpu_is_taken_and_given_back",
                      [](Env& e) {
                          profile("a.toml",
                                  "gpus = [\"8a:00.0\"]\nshare_host_root = false\n" + k_kernel,
                                  true)(e);
                          // vfio-pci present, so that the bind gets as far as its writes.
                          for (const char* f : {"bind", "unbind", "new_id"})
                              e.tree.write(std::string("/sys/bus/pci/drivers/vfio-pci/") + f, "");
                          e.tree.write("/sys/bus/pci/drivers_probe", "");
                      },
                      "a.toml", {1}));
    v.back().read_only = false;
    v.push_back(
        start("share_virtiofs_refused",
              profile("a.toml", "share = \"virtiofs\"\nshare_host_root = true\n" + k_kernel, true),
              "a.toml", {2}, "9p only"));
    // The profile's name is a path, or one that carries escapes.
    v.push_back(Case{.name = "vm_start_name_climbs_out",
                     .args = {"vm", "start", "../../../../x", "--run-dir", "{scratch}/run"},
                     .exits = {1, 2}});
    v.push_back(Case{.name = "vm_start_name_with_escape",
                     .args = {"vm", "start", "x" + k_osc, "--run-dir", "{scratch}/run"},
                     .exits = {2},
                     .check = err_has("bad VM name")});
    // Profiles of the host's /etc/vfioctl/vms (under --root).
    v.push_back(Case{
        .name = "vm_start_etc_profile_garbage",
        .mutate = [](Env& e) { e.tree.write("/etc/vfioctl/vms/evil.toml", "\x01\x02[[[boot\n"); },
        .args = {"vm", "start", "evil", "--run-dir", "{scratch}/run"},
        .exits = {1},
        .check = err_has("evil.toml")});
    v.push_back(Case{
        .name = "vm_start_etc_profile_link_out",
        .mutate =
            [](Env& e) { e.tree.symlink("/etc/vfioctl/vms/evil.toml", e.in_sentinel("secret")); },
        .args = {"vm", "start", "evil", "--run-dir", "{scratch}/run"},
        .exits = {1},
        .check = err_has("no profile 'evil'")});
    return v;
}

// A run directory's record, written as given.
Mutation record(std::string vm, std::function<std::string(Env&)> text) {
    return [vm, text](Env& e) {
        const fs::path d = e.scratch.path / "run" / vm;
        fs::create_directories(d);
        std::ofstream(d / "vm.json", std::ios::binary) << text(e);
    };
}

std::vector<Case> record_cases() {
    const json base = {{"name", "r"},
                       {"pid", 4194304},
                       {"started", 1700000000},
                       {"accel", "tcg"},
                       {"qmp_socket", "/nonexistent/qmp.sock"},
                       {"console_socket", "/nonexistent/c.sock"},
                       {"console_log", "/nonexistent/c.log"},
                       {"pidfile", "/nonexistent/p"},
                       {"ssh_port", nullptr},
                       {"devices", json::array()},
                       {"device_ids", json::array()},
                       {"argv", json::array()},
                       {"profile", ""}};
    auto with = [base](std::function<void(json&, Env&)> f) {
        return [base, f](Env& e) {
            json j = base;
            f(j, e);
            return j.dump();
        };
    };
    struct R {
        std::string name;
        std::function<std::string(Env&)> text;
        std::set<int> exits;
    };
    const std::vector<R> rs = {
        {"garbage",
         [](Env&) {
             return std::string("\x7f"
                                "ELF not json");
         },
         {1}},
        {"truncated",
         [base](Env&) {
             auto t = base.dump();
             return t.substr(0, t.size() / 2);
         },
         {1}},
        {"pid_is_a_string", with([](json& j, Env&) { j["pid"] = "1"; }), {1}},
        {"devices_not_strings",
         with([](json& j, Env&) {
             j["devices"] = json::array({1, nullptr});
         }),
         {1}},
        {"dead_pid_with_hostile_devices",
         with([](json& j, Env& e) {
             j["devices"] =
                 json::array({"../../../../" + e.sentinel->name(), "0000:8a:00.0" + k_osc});
             j["device_ids"] = json::array({"zz", "yy"});
         }),
         {0, 1}},
        {"pid_1_and_a_file_for_socket",
         with([](json& j, Env& e) {
             j["pid"] = 1;
             j["qmp_socket"] = e.in_sentinel("secret");
             j["name"] = "r" + k_osc;
             j["console_log"] = "/" + k_csi;
         }),
         {0, 1}},
        {"negative_pid", with([](json& j, Env&) { j["pid"] = -1; }), {1}},
        {"pid_wraps_to_1", with([](json& j, Env&) { j["pid"] = 4294967297ull; }), {1}},
        {"fewer_ids_than_devices",
         with([](json& j, Env&) {
             j["devices"] = json::array({"0000:8a:00.0", "0000:8b:00.0", "0000:8c:00.0"});
             j["device_ids"] = json::array();
         }),
         {1}},
    };
    std::vector<Case> v;
    for (const auto& r : rs) {
        for (const auto& [cmd, args] :
             std::vector<std::pair<std::string, std::vector<std::string>>>{
                 {"vm_status_json", {"--json", "vm", "status", "r", "--run-dir", "{scratch}/run"}},
                 {"vm_status", {"vm", "status", "r", "--run-dir", "{scratch}/run"}},
                 {"vm_list", {"vm", "list", "--run-dir", "{scratch}/run"}}}) {
            v.push_back(Case{.name = "vm_record_" + r.name + "__" + cmd,
                             .mutate = record("r", r.text),
                             .args = args,
                             .exits = cmd == "vm_list" ? std::set<int>{0} : r.exits});
        }
    }
    // A dead VM's record whose devices are paths: stop gives back only PCI
    // addresses, inside the tree, and removes the run directory.
    v.push_back(Case{.name = "vm_record_dead_pid_with_hostile_devices__vm_stop",
                     .mutate = record("r", rs[4].text),
                     .args = {"--json", "vm", "stop", "r", "--run-dir", "{scratch}/run"},
                     .exits = {0, 1},
                     .read_only = false,
                     .check = [](Env& e, const Outcome&) {
                         const std::string ov =
                             e.tree.read(Env::dev(fixture::k_seed_gpu) + "/driver_override");
                         EXPECT_TRUE(ov == "(null)\n" || ov == "\n") << ov;
                     }});
    return v;
}

} // namespace

INSTANTIATE_TEST_SUITE_P(Profile, Hostile, testing::ValuesIn(profile_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(VmRecord, Hostile, testing::ValuesIn(record_cases()), case_name);

} // namespace vfioctl::hostile
