// Category 9: terminal injection. Escape sequences (OSC, CSI, a C1 CSI) and
// bytes that are not UTF-8 in what the host shows vfioctl: a driver's
// name, a network interface's, a mount point, a process's command name,
// an IOMMU group's type, the kernel release, the CPU's model, GRUB values, a
// loader entry's file name, the command line, a VM's record, the state
// directory's name. Text output shows them as \xNN; JSON escapes them
// (\u001b); neither ever carries the raw bytes (expect_sound checks that).

#include "hostile.hpp"

#include <fstream>

namespace vfioctl::hostile {
namespace {

const std::string k_evil = "ev" + k_osc + k_csi + k_c1 + "\xff" + "il";

// The escaped form must be shown: "\x1b]0;pwned\x07" in text, "\u001b]0;pwned\u0007" in JSON.
Check shown_escaped(bool as_json) {
    return [as_json](Env&, const Outcome& o) {
        if (as_json) {
            EXPECT_TRUE(has(o.out, "\\u001b]0;pwned\\u0007")) << o.out.substr(0, 3000);
        } else {
            EXPECT_TRUE(has(o.out + o.err, "\\x1b]0;pwned\\x07")) << o.out.substr(0, 3000) << "\n"
                                                                  << o.err.substr(0, 2000);
        }
    };
}

struct T {
    std::string name;
    std::string host;
    Mutation mutate;
    std::vector<std::string> args; // without --json
    std::set<int> exits;
};

std::vector<T> injections() {
    const std::string gpu = fixture::k_seed_gpu;
    return {
        {"driver_name__groups",
         "seed_after",
         [gpu](Env& e) {
             const std::string dev = e.tree.device_path(gpu);
             e.tree.mkdir("/sys/bus/pci/drivers/" + k_evil);
             e.tree.symlink(
                 dev + "/driver",
                 HostTree::relative_link(dev + "/driver", "/sys/bus/pci/drivers/" + k_evil));
         },
         {"groups", "--gpu"},
         {0}},
        {"driver_name__bind_dry_run",
         "seed_after",
         [gpu](Env& e) {
             const std::string dev = e.tree.device_path(gpu);
             e.tree.mkdir("/sys/bus/pci/drivers/" + k_evil);
             e.tree.symlink(
                 dev + "/driver",
                 HostTree::relative_link(dev + "/driver", "/sys/bus/pci/drivers/" + k_evil));
         },
         {"bind", "--dry-run", gpu},
         {0}},
        {"interface_name__bind_dry_run",
         "seed_after",
         [](Env& e) { e.tree.add_interface("0000:16:00.1", k_evil, true, false); },
         {"bind", "--dry-run", "0000:16:00.1"},
         {1}},
        {"mount_point__bind_dry_run",
         "seed_after",
         [](Env& e) { e.tree.mount("nvme0n1p1", "/mnt/" + k_evil, "vfat"); },
         {"bind", "--dry-run", "--force", fixture::k_root_nvme},
         {1}},
        {"process_comm__bind_dry_run",
         "seed_after",
         [](Env& e) { e.tree.add_process(31337, k_evil, {"/dev/nvidia0"}); },
         {"bind", "--dry-run", gpu},
         {1}},
        {"group_type__groups",
         "seed_after",
         [](Env& e) { e.tree.write("/sys/kernel/iommu_groups/165/type", k_evil + "\n"); },
         {"groups", "--gpu"},
         {0}},
        {"kernel_release__status",
         "seed_after",
         [](Env& e) { e.tree.write("/proc/sys/kernel/osrelease", "6.8.0-" + k_evil + "\n"); },
         {"status"},
         {0, 3}},
        {"cpu_vendor__status",
         "seed_before",
         [](Env& e) {
             fixture::CpuSpec c;
             c.vendor = "Genuine" + k_evil;
             e.tree.set_cpu(c);
         },
         {"status"},
         {0, 3}},
        {"grub_value__iommu_show",
         "seed_before",
         [](Env& e) { e.tree.set_grub("intel_iommu=off " + k_evil); },
         {"iommu", "show"},
         {0}},
        {"grub_value__iommu_enable_dry_run",
         "seed_before",
         [](Env& e) { e.tree.set_grub("intel_iommu=off " + k_evil); },
         {"iommu", "enable", "--permanent", "--dry-run"},
         {0}},
        {"loader_entry_name__iommu_show",
         "seed_before",
         [](Env& e) {
             e.tree.remove("/etc/default/grub");
             e.tree.write("/boot/loader/loader.conf", "timeout 3\n");
             e.tree.write("/boot/loader/entries/" + k_evil + ".conf",
                          "title " + k_evil + "\nlinux /vmlinuz\noptions ro intel_iommu=off\n");
         },
         {"iommu", "show"},
         {0}},
        {"cmdline__status",
         "seed_after",
         [](Env& e) {
             e.tree.set_cmdline("BOOT_IMAGE=/vmlinuz " + k_evil + " intel_iommu=on iommu=pt");
         },
         {"status"},
         {0, 3}},
        {"cmdline__iommu_show",
         "seed_after",
         [](Env& e) { e.tree.set_cmdline("BOOT_IMAGE=/vmlinuz " + k_evil + " intel_iommu=on"); },
         {"iommu", "show"},
         {0}},
        {"device_entry_name__groups",
         "seed_after",
         [](Env& e) {
             e.tree.symlink("/sys/bus/pci/devices/" + k_evil,
                            "../../../devices/pci0000:88/nowhere");
         },
         {"groups", "--all"},
         {0, 1}},
        {"vm_record__vm_status",
         "seed_after",
         [](Env& e) {
             const fs::path d = e.scratch.path / "run" / "r";
             fs::create_directories(d);
             std::ofstream(d / "vm.json", std::ios::binary) << json{
                 {"name", "r"},
                 {"pid", 4194304},
                 {"accel", k_evil},
                 {"console_log", "/" + k_evil},
                 {"qmp_socket", "/" + k_evil},
                 {"devices", {"0000:8a:00.0"}},
                 {"device_ids", {k_evil}}}.dump(-1, ' ', false, json::error_handler_t::replace);
         },
         {"vm", "status", "r", "--run-dir", "{scratch}/run"},
         {1}},
        {"state_dir_name__recover",
         "seed_after",
         [](Env& e) { e.tree.write("/var/lib/" + k_evil + "/journal.json", "garbage"); },
         {"recover", "--state-dir", "/var/lib/" + k_evil},
         {1}},
        {"journal_driver__recover",
         "seed_after",
         [gpu](Env& e) {
             e.tree.write("/var/lib/vfioctl/journal.json",
                          json{{"format", 1},
                               {"devices",
                                {{{"address", gpu},
                                  {"group", 165},
                                  {"original_driver", k_evil},
                                  {"original_override", nullptr},
                                  {"phase", "bound"},
                                  {"since", ""}}}}}
                              .dump(-1, ' ', false, json::error_handler_t::replace));
         },
         {"recover"},
         {1}},
        {"profile_path__vm_start",
         "seed_after",
         [](Env& e) {
             const fs::path p = e.scratch.path / (k_evil + ".toml");
             std::ofstream(p) << "cpus = = 1\n";
         },
         {"vm", "start", "{scratch}/" + k_evil + ".toml", "--run-dir", "{scratch}/run"},
         {1, 2}},
    };
}

std::vector<Case> terminal_cases() {
    std::vector<Case> v;
    for (const auto& t : injections())
        for (bool as_json : {false, true}) {
            std::vector<std::string> args = t.args;
            if (as_json) args.insert(args.begin(), "--json");
            // recover may make its lock, nothing else.
            std::set<std::string> lock = {"var/lib/vfioctl/lock", "var/lib/" + k_evil + "/lock"};
            v.push_back(Case{.name = t.name + (as_json ? "__json" : "__text"),
                             .host = t.host,
                             .mutate = t.mutate,
                             .args = args,
                             .exits = t.exits,
                             .read_only = true,
                             .may_change = lock,
                             .check = shown_escaped(as_json)});
        }
    return v;
}

} // namespace

INSTANTIATE_TEST_SUITE_P(Terminal, Hostile, testing::ValuesIn(terminal_cases()), case_name);

} // namespace vfioctl::hostile
