// Category 2: sysfs attributes. Each mutation damages one attribute or link
// of the seed's H100 (8a:00.0) the way a broken, hostile or half-recorded
// tree would, and runs the three commands that read it: groups --json,
// status --json and bind --dry-run --json. None may crash, hang, write, or
// call the GPU fit for passthrough when its group cannot be established.

#include "hostile.hpp"

namespace vfioctl::hostile {
namespace {

const std::string k_gpu = fixture::k_seed_gpu;

std::string gpu_path(const std::string& attr) {
    return Env::dev(k_gpu) + "/" + attr;
}

// A mutation that writes (or replaces) one attribute of the GPU.
Mutation put(std::string attr, std::string data) {
    return [attr, data](Env& e) {
        e.tree.remove(gpu_path(attr));
        e.tree.write(gpu_path(attr), data);
    };
}
Mutation drop(std::string attr) {
    return [attr](Env& e) { e.tree.remove(gpu_path(attr)); };
}
Mutation as_dir(std::string attr) {
    return [attr](Env& e) {
        e.tree.remove(gpu_path(attr));
        e.tree.mkdir(gpu_path(attr));
    };
}
Mutation link(std::string attr, std::string target) {
    return [attr, target](Env& e) { e.tree.symlink(gpu_path(attr), e.sub(target)); };
}
// A link named attr climbing out of the tree into the sentinel's rel.
Mutation link_out(std::string attr, std::string rel) {
    return [attr, rel](Env& e) {
        e.tree.symlink(gpu_path(attr), e.up_to_sentinel(gpu_path(attr), rel));
    };
}
// The config space with a byte patched.
Mutation patch_config(size_t offset_of_cap_next) {
    return [offset_of_cap_next](Env& e) {
        std::string cfg = e.tree.read(gpu_path("config"));
        const auto cap = static_cast<unsigned char>(cfg[0x34]);
        if (offset_of_cap_next == 0)
            cfg[cap + 1] = static_cast<char>(cap); // a capability that is its own next
        else {
            // The first extended capability's next pointer (bits 20..31) back at itself.
            cfg[0x102] = static_cast<char>((cfg[0x102] & 0x0f) | 0x00);
            cfg[0x103] = static_cast<char>(0x10);
        }
        e.tree.write(gpu_path("config"), cfg);
    };
}

// The GPU's object in groups --json, or null.
json gpu_in_groups(const json& j) {
    auto devs = test::vfioctl_devices(j);
    auto it = devs.find(k_gpu);
    return it == devs.end() ? json(nullptr) : it->second;
}

// The GPU's verdict in status --json ("" when not listed).
std::string gpu_verdict(const json& j) {
    if (!j.is_object() || !j.contains("gpus") || !j["gpus"].is_array()) return "";
    for (const auto& g : j["gpus"])
        if (g.is_object() && g.value("address", "") == k_gpu) return g.value("verdict", "");
    return "";
}

struct Mut {
    std::string name;
    Mutation mutate;
    // The identity still comes through (from the config header or the files).
    bool identity_kept = true;
    // The GPU's group cannot be established: status must not say it will
    // work, bind must refuse.
    bool group_lost = false;
};

std::vector<Mut> mutations() {
    std::string random4k;
    for (int i = 0; i < 4096; ++i)
        random4k += static_cast<char>((i * 7919 + 13) & 0xff);
    return {
        {"vendor_missing", drop("vendor")},
        {"vendor_empty", put("vendor", "")},
        {"vendor_garbage", put("vendor", "zz\x01q\n")},
        {"vendor_overflow", put("vendor", "0x100000000000000000000\n")},
        {"vendor_escape", put("vendor", "0x10de" + k_osc + k_bad_utf8 + "\n")},
        {"vendor_nul_bytes", put("vendor", std::string("0x10de\0\0\0\n", 10))},
        {"vendor_directory", as_dir("vendor")},
        {"device_garbage", put("device", "0xGHIJ\n")},
        {"class_overflow", put("class", "0xffffffffffffffffff\n")},
        {"class_storage", put("class", "0x010802\n")},
        {"resource_garbage", put("resource", "not a resource line\n\x7f\x7f\n")},
        {"resource_truncated", put("resource", "0x0000002000000000 0x00000020")},
        {"resource_100k_line",
         put_made(gpu_path("resource"), [] { return std::string(100000, '7') + "\n"; })},
        {"config_missing", drop("config")},
        {"config_empty", put("config", "")},
        {"config_10_bytes",
         put("config", std::string("\xde\x10\x36\x23\x00\x00\x10\x00\xa1\x00", 10))},
        {"config_random", put("config", random4k)},
        {"config_capability_loop", patch_config(0)},
        {"config_ext_capability_loop", patch_config(1)},
        {"numa_node_garbage", put("numa_node", "-99999999999999999999999\n")},
        {"irq_garbage", put("irq", "\xff\xff\n")},
        {"driver_dangling", link("driver", "../../../../bus/pci/drivers/gone")},
        {"driver_absolute", link("driver", "/sys/bus/pci/drivers/nvidia")},
        {"driver_out_of_the_tree", link_out("driver", "x")},
        {"driver_into_the_sentinel", link("driver", "{sentinel}/x")},
        {"driver_is_a_file", put("driver", "nvidia\n")},
        {"driver_link_loop", link("driver", "driver")},
        {"driver_override_garbage",
         [](Env& e) {
             e.tree.remove(gpu_path("driver"));
             e.tree.write(gpu_path("driver_override"), std::string(10000, 'v') + k_osc + "\n");
         }},
        {"iommu_group_missing", drop("iommu_group"), true, true},
        {"iommu_group_dangling", link("iommu_group", "../../../../kernel/iommu_groups/9999"), true,
         true},
        {"iommu_group_out_of_the_tree", link_out("iommu_group", "lib"), true, true},
        {"iommu_group_into_the_sentinel", link("iommu_group", "{sentinel}/lib"), true, true},
        {"iommu_group_not_a_number",
         [](Env& e) {
             e.tree.mkdir("/sys/kernel/iommu_groups/abc/devices");
             e.tree.symlink(gpu_path("iommu_group"), "../../../../kernel/iommu_groups/abc");
         },
         true, true},
        {"iommu_group_huge_number",
         [](Env& e) {
             e.tree.mkdir("/sys/kernel/iommu_groups/99999999999999999999/devices");
             e.tree.symlink(gpu_path("iommu_group"),
                            "../../../../kernel/iommu_groups/99999999999999999999");
         },
         true, true},
        {"iommu_group_is_a_file", put("iommu_group", "165\n"), true, true},
        {"iommu_group_link_loop", link("iommu_group", "iommu_group"), true, true},
        {"device_dir_is_a_file",
         [](Env& e) {
             e.tree.remove(Env::dev(k_gpu));
             e.tree.write(Env::dev(k_gpu), "0000:8a:00.0\n");
         },
         false},
        {"device_link_dangling",
         [](Env& e) { e.tree.symlink(Env::dev(k_gpu), "../../../devices/pci0000:88/nowhere"); },
         false},
        {"stray_entries_in_devices",
         [](Env& e) {
             e.tree.mkdir("/sys/bus/pci/devices/garbage");
             e.tree.symlink("/sys/bus/pci/devices/0000:8a:00.0x",
                            "../../../devices/pci0000:88/0000:88:02.0/0000:8a:00.0");
             e.tree.write("/sys/bus/pci/devices/" + k_osc, "x");
         }},
        {"group_members_listed_wrong",
         [](Env& e) {
             // The group lists a member that does not exist and one outside the tree.
             e.tree.symlink("/sys/kernel/iommu_groups/165/devices/0000:ee:00.0",
                            "../../../../devices/pci0000:ee/0000:ee:00.0");
             e.tree.symlink("/sys/kernel/iommu_groups/165/devices/" + e.sentinel->name(),
                            e.sentinel->dir.string());
         }},
        {"group_type_garbage",
         [](Env& e) {
             e.tree.write("/sys/kernel/iommu_groups/165/type", k_osc + k_bad_utf8 + "\n");
         }},
    };
}

std::vector<Case> sysfs_cases() {
    std::vector<Case> v;
    for (const auto& m : mutations()) {
        v.push_back(Case{.name = m.name + "__groups_json",
                         .mutate = m.mutate,
                         .args = {"--json", "groups", "--all"},
                         .exits = {0, 1},
                         .check = [m](Env&, const Outcome& o) {
                             if (!m.identity_kept || o.exit_code != 0) return;
                             json g = gpu_in_groups(parse_json(o));
                             ASSERT_TRUE(g.is_object()) << "the GPU is gone from groups:\n"
                                                        << o.out.substr(0, 3000);
                             EXPECT_EQ(g.value("id", ""), "10de:2336") << g.dump();
                             if (m.group_lost) {
                                 EXPECT_NE(g["iommu_group"], json(165)) << g.dump();
                             }
                         }});
        v.push_back(Case{.name = m.name + "__status_json",
                         .mutate = m.mutate,
                         .args = {"--json", "status"},
                         .exits = {0, 1, 3},
                         .check = [m](Env&, const Outcome& o) {
                             if (!m.group_lost) return;
                             const std::string verdict = gpu_verdict(parse_json(o));
                             EXPECT_NE(verdict, "will_work") << o.out.substr(0, 3000);
                             EXPECT_NE(o.exit_code, 0);
                         }});
        v.push_back(Case{.name = m.name + "__bind_dry_run",
                         .mutate = m.mutate,
                         .args = {"--json", "bind", "--dry-run", k_gpu},
                         .exits = {0, 1},
                         .check = [m](Env&, const Outcome& o) {
                             if (m.group_lost) {
                                 EXPECT_EQ(o.exit_code, 1) << o.out;
                                 auto kinds = kinds_for(parse_json(o)["refused"], k_gpu);
                                 EXPECT_FALSE(kinds.empty())
                                     << "refused for its group: " << o.out.substr(0, 3000);
                             }
                         }});
        // unbind of a device that is not journaled reads its group from the link.
        if (m.group_lost)
            v.push_back(Case{.name = m.name + "__unbind",
                             .mutate = m.mutate,
                             .args = {"unbind", k_gpu, "--timeout", "1"},
                             .exits = {0, 1},
                             .read_only = false});
    }
    return v;
}

// The vfio-pci driver directory and the probe file, so that a bind on a
// fixture tree gets as far as its writes (no kernel answers them).
void plant_vfio(Env& e) {
    for (const char* f : {"bind", "unbind", "new_id", "remove_id"})
        e.tree.write(std::string("/sys/bus/pci/drivers/vfio-pci/") + f, "");
    e.tree.write("/sys/bus/pci/drivers_probe", "");
    e.tree.mkdir("/sys/module/vfio_pci");
}

// Real binds (not dry runs) whose write targets are links out of the tree:
// the writes must land inside the tree or fail, never in the sentinel.
std::vector<Case> write_link_cases() {
    std::vector<Case> v;
    struct W {
        std::string name;
        std::string path; // host path replaced by a link
        bool absolute;    // absolute link to the sentinel, else '..' out of the tree
    };
    const std::vector<W> ws = {
        {"driver_override_absolute", gpu_path("driver_override"), true},
        {"driver_override_relative", gpu_path("driver_override"), false},
        {"unbind_absolute", "/sys/bus/pci/drivers/nvidia/unbind", true},
        {"unbind_relative", "/sys/bus/pci/drivers/nvidia/unbind", false},
        {"drivers_probe_absolute", "/sys/bus/pci/drivers_probe", true},
        {"vfio_bind_relative", "/sys/bus/pci/drivers/vfio-pci/bind", false},
        {"vfio_new_id_absolute", "/sys/bus/pci/drivers/vfio-pci/new_id", true},
        {"journal_dir_absolute", "/var/lib/vfioctl", true},
        {"journal_dir_relative", "/var/lib/vfioctl", false},
        {"journal_file_absolute", "/var/lib/vfioctl/journal.json", true},
        {"lock_file_relative", "/var/lib/vfioctl/lock", false},
    };
    for (const auto& w : ws) {
        const bool dir = w.path == "/var/lib/vfioctl";
        const std::string rel = dir ? "lib"
                                : w.path.find("driver_override") != std::string::npos
                                    ? "x/driver_override"
                                    : "secret";
        v.push_back(Case{.name = "bind_writes_through_" + w.name,
                         .mutate =
                             [w, rel](Env& e) {
                                 plant_vfio(e);
                                 if (w.path != "/var/lib/vfioctl") e.tree.mkdir("/var/lib/vfioctl");
                                 e.tree.remove(w.path);
                                 e.tree.symlink(w.path, w.absolute ? e.in_sentinel(rel)
                                                                   : e.up_to_sentinel(w.path, rel));
                             },
                         .args = {"--json", "bind", "--timeout", "1", k_gpu},
                         .exits = {1},
                         .read_only = false,
                         .check =
                             [](Env& e, const Outcome&) {
                                 // Whatever the bind did, it was given back: the override is unset
                                 // again.
                                 const auto ov = e.tree.path(gpu_path("driver_override"));
                                 if (!fs::is_symlink(ov)) {
                                     const std::string now =
                                         e.tree.read(gpu_path("driver_override"));
                                     EXPECT_TRUE(now == "(null)\n" || now == "\n" || now.empty())
                                         << now;
                                 }
                             }});
    }
    return v;
}

// The critical group host: the GPU shares its group with the root NVMe.
// Hiding the NVMe from one of the two views of the group must never make
// the GPU look fit for passthrough.
std::vector<Case> critical_cases() {
    std::vector<Case> v;
    const std::string nvme = fixture::k_critical_nvme, gpu = fixture::k_critical_gpu;
    const std::vector<std::pair<std::string, Mutation>> muts = {
        {"nvme_group_link_missing",
         [nvme](Env& e) { e.tree.remove(Env::dev(nvme) + "/iommu_group"); }},
        {"nvme_group_link_dangling",
         [nvme](Env& e) {
             e.tree.symlink(Env::dev(nvme) + "/iommu_group",
                            "../../../../kernel/iommu_groups/4242");
         }},
        {"nvme_group_link_out_of_the_tree",
         [nvme](Env& e) {
             const std::string l = Env::dev(nvme) + "/iommu_group";
             e.tree.symlink(l, e.up_to_sentinel(l, "lib"));
         }},
        {"nvme_left_out_of_the_group_listing",
         [nvme](Env& e) {
             auto g = e.tree.group_of(nvme);
             e.tree.remove("/sys/kernel/iommu_groups/" + std::to_string(*g) + "/devices/" + nvme);
         }},
        {"group_devices_dir_missing",
         [gpu](Env& e) {
             auto g = e.tree.group_of(gpu);
             e.tree.remove("/sys/kernel/iommu_groups/" + std::to_string(*g) + "/devices");
         }},
        {"nvme_device_dir_unreadable",
         [nvme](Env& e) {
             e.tree.remove(Env::dev(nvme));
             e.tree.write(Env::dev(nvme), "gone\n");
         }},
        {"groups_dir_is_a_file",
         [](Env& e) {
             e.tree.remove("/sys/kernel/iommu_groups");
             e.tree.write("/sys/kernel/iommu_groups", "not a directory\n");
         }},
        {"groups_dir_link_out",
         [](Env& e) {
             e.tree.remove("/sys/kernel/iommu_groups");
             e.tree.symlink("/sys/kernel/iommu_groups",
                            e.up_to_sentinel("/sys/kernel/iommu_groups", "lib"));
         }},
    };
    for (const auto& [name, m] : muts) {
        v.push_back(Case{.name = "critical_" + name + "__status_json",
                         .host = "critical_group",
                         .mutate = m,
                         // Unknown (3), or a clear failure (1) when libpci cannot enumerate at all.
                         .args = {"--json", "status"},
                         .exits = {1, 3},
                         .check = [gpu, name](Env&, const Outcome& o) {
                             json j = parse_json(o);
                             EXPECT_NE(j.value("verdict", ""), "will_work")
                                 << o.out.substr(0, 3000);
                             // No group can be listed at all: unknown, exit 3 (README).
                             if (name.rfind("groups_dir_", 0) == 0) {
                                 EXPECT_EQ(o.exit_code, 3);
                                 EXPECT_EQ(j.value("verdict", ""), "unknown")
                                     << o.out.substr(0, 3000);
                             }
                             for (const auto& g : j.value("gpus", json::array()))
                                 if (g.value("address", "") == gpu) {
                                     EXPECT_NE(g.value("verdict", ""), "will_work") << g.dump();
                                 }
                         }});
        v.push_back(
            Case{.name = "critical_" + name + "__bind_force",
                 .host = "critical_group",
                 .mutate =
                     [m](Env& e) {
                         m(e);
                         plant_vfio(e);
                     },
                 .args = {"--json", "bind", "--force", gpu},
                 .exits = {1},
                 // Refused before anything is written: the tree stays as it was (read_only).
                 .check =
                     [gpu, nvme](Env&, const Outcome& o) {
                         json j = parse_json(o);
                         if (!j.contains("refused") && j.contains("error"))
                             return; // failed before planning
                         EXPECT_EQ(j.value("changed", true), false) << o.out.substr(0, 3000);
                         EXPECT_FALSE(kinds_for(j["refused"], gpu).empty() &&
                                      kinds_for(j["refused"], nvme).empty())
                             << "refused: " << o.out.substr(0, 3000);
                     }});
    }
    return v;
}

} // namespace

INSTANTIATE_TEST_SUITE_P(Sysfs, Hostile, testing::ValuesIn(sysfs_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(SysfsLinks, Hostile, testing::ValuesIn(write_link_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(SysfsCritical, Hostile, testing::ValuesIn(critical_cases()), case_name);

} // namespace vfioctl::hostile
