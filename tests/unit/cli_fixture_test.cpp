// The built vfioctl against each fixture host: exit codes and the JSON that
// 'status' and 'groups' print.

#include "support.hpp"

#include <algorithm>
#include <gtest/gtest.h>

using namespace vfioctl;
using nlohmann::json;
using test::any_contains;
using test::json_of;
using test::shared_host;
using test::shared_run;

namespace {

// The status JSON of a shared host, checked to agree with the exit code.
json status_of(const std::string& host, int expected_exit) {
    const auto& o = shared_run(host, {"status", "--json"});
    EXPECT_EQ(o.exit_code, expected_exit) << host << "\n" << o.err;
    json j = json_of(o);
    if (j.is_object()) {
        EXPECT_EQ(j.value("exit_code", -1), o.exit_code) << host;
    }
    return j;
}

// The .gpus entry for addr; a test failure and null when absent.
json gpu(const json& status, const std::string& addr) {
    for (const auto& g : status["gpus"])
        if (g["address"] == addr) return g;
    ADD_FAILURE() << "no GPU " << addr << " in " << status["gpus"].dump();
    return nullptr;
}

// The summary row for feature.
json summary_row(const json& status, const std::string& feature) {
    for (const auto& r : status["summary"])
        if (r["feature"] == feature) return r;
    ADD_FAILURE() << "no summary row " << feature;
    return json::object({{"now", ""}, {"after", ""}});
}

// The only group in a filtered 'groups --json'.
json only_group(const json& groups) {
    EXPECT_EQ(groups["groups"].size(), 1u) << groups.dump();
    return groups["groups"].empty() ? json::object() : groups["groups"][0];
}

std::vector<std::string> member_addresses(const json& group) {
    std::vector<std::string> out;
    for (const auto& d : group["devices"])
        out.push_back(d["address"]);
    return out;
}

json device_in(const json& group, const std::string& addr) {
    for (const auto& d : group["devices"])
        if (d["address"] == addr) return d;
    ADD_FAILURE() << addr << " not in group " << group.dump();
    return json::object();
}

} // namespace

TEST(CliSeedBefore, StatusSaysWillWorkAfterEnableAndReboot) {
    json j = status_of("seed_before", 3);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["verdict"], "will_work_after");
    EXPECT_EQ(j["iommu"]["platform"], "intel");
    EXPECT_EQ(j["iommu"]["acpi_table"], "DMAR");
    EXPECT_EQ(j["iommu"]["enabled"], false);
    EXPECT_EQ(j["iommu"]["group_count"], 0);
    EXPECT_TRUE(j["iommu"]["units"].empty());
    ASSERT_EQ(j["gpus"].size(), 1u);
    const json& g = j["gpus"][0];
    EXPECT_EQ(g["address"], fixture::k_seed_gpu);
    EXPECT_EQ(g["id"], "10de:2336");
    EXPECT_EQ(g["driver"], "nvidia");
    EXPECT_EQ(g["iommu_group"], nullptr);
    EXPECT_EQ(g["verdict"], "will_work_after");
    EXPECT_TRUE(any_contains(g["causes"], "intel_iommu=off")) << g["causes"].dump();
    EXPECT_TRUE(any_contains(g["steps"], "vfioctl iommu enable")) << g["steps"].dump();
    EXPECT_TRUE(any_contains(g["steps"], "reboot")) << g["steps"].dump();
    EXPECT_TRUE(any_contains(j["kernel"]["notes"], "intel_iommu=off makes iommu=pt moot"));
    EXPECT_EQ(j["kernel"]["intel_iommu"], "off");
    EXPECT_EQ(j["kernel"]["passthrough"], true);
    EXPECT_EQ(j["reboot_required"], true);
    EXPECT_EQ(summary_row(j, "VM GPU passthrough")["now"], "Fails");
    EXPECT_EQ(summary_row(j, "VM GPU passthrough")["after"], "Works");
    EXPECT_EQ(summary_row(j, "VFIO support")["now"], "No");
    EXPECT_EQ(summary_row(j, "VFIO support")["after"], "Yes");
    EXPECT_EQ(summary_row(j, "IOMMU groups")["now"], "None");
    EXPECT_EQ(summary_row(j, "Host GPU usage")["now"], "Works");
    EXPECT_EQ(summary_row(j, "Security isolation")["now"], "Limited");
    EXPECT_EQ(summary_row(j, "Reboot required")["after"], "Yes");
    EXPECT_TRUE(j["gpus"][0]["in_use"].empty());
}

TEST(CliSeedBefore, TextStatusTellsTheSameStory) {
    const auto& o = shared_run("seed_before", {"status"});
    EXPECT_EQ(o.exit_code, 3);
    EXPECT_NE(o.out.find("intel_iommu=off makes iommu=pt moot"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("WILL WORK AFTER"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("vfioctl iommu enable"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("VM GPU passthrough"), std::string::npos) << o.out;
}

TEST(CliSeedBefore, GroupsListsEveryFunctionAsUngrouped) {
    const auto& t = shared_host("seed_before");
    const auto& o = shared_run("seed_before", {"groups", "--json"});
    EXPECT_EQ(o.exit_code, 0) << o.err;
    json j = json_of(o);
    EXPECT_EQ(j["iommu_enabled"], false);
    EXPECT_EQ(j["group_count"], 0);
    EXPECT_TRUE(j["groups"].empty());
    EXPECT_NE(j.value("off_cause", "").find("intel_iommu=off"), std::string::npos);
    std::vector<std::string> listed;
    for (const auto& d : j["ungrouped"])
        listed.push_back(d["address"]);
    EXPECT_EQ(listed, t.addresses());

    const auto& text = shared_run("seed_before", {"groups"});
    EXPECT_EQ(text.exit_code, 0);
    EXPECT_NE(text.out.find("No IOMMU groups"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("vfioctl iommu enable"), std::string::npos) << text.out;
}

TEST(CliSeedBefore, DeviceFilterFindsTheH100OutsideAnyGroup) {
    const auto& o = shared_run("seed_before", {"groups", "--device", "10de:2336", "--json"});
    EXPECT_EQ(o.exit_code, 0) << o.err;
    json j = json_of(o);
    EXPECT_TRUE(j["groups"].empty());
    ASSERT_EQ(j["ungrouped"].size(), 1u);
    EXPECT_EQ(j["ungrouped"][0]["address"], fixture::k_seed_gpu);
    // The seed's "10de 2336" form names the same device.
    const auto& seed_form = shared_run("seed_before", {"groups", "--device", "10de 2336"});
    EXPECT_EQ(seed_form.exit_code, 0) << seed_form.err;
    EXPECT_NE(seed_form.out.find("8a:00.0 [10de:2336]"), std::string::npos) << seed_form.out;
}

TEST(CliSeedBeforeHeld, TheHolderIsNamedByPidAndCommand) {
    json j = status_of("seed_before_held", 3);
    json g = gpu(j, fixture::k_seed_gpu);
    ASSERT_TRUE(g.is_object());
    const std::string who =
        "pid " + std::to_string(fixture::k_holder_pid) + " (" + fixture::k_holder_comm + ")";
    EXPECT_TRUE(any_contains(g["in_use"], who + " holds /dev/nvidia0")) << g["in_use"].dump();
    EXPECT_TRUE(any_contains(g["causes"], who)) << g["causes"].dump();
    auto steps = test::strings_of(g["steps"]);
    EXPECT_EQ(std::count(steps.begin(), steps.end(), "stop that process (" + who + ")"), 1)
        << g["steps"].dump();
    EXPECT_EQ(g["verdict"], "will_work_after");
    EXPECT_NE(std::find(g["flags"].begin(), g["flags"].end(), "in_use"), g["flags"].end());
}

TEST(CliSeedAfter, TheH100IsAloneInAnIdentityGroupAndWorks) {
    const auto& t = shared_host("seed_after");
    json j = status_of("seed_after", 0);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["verdict"], "will_work");
    EXPECT_EQ(j["iommu"]["enabled"], true);
    EXPECT_EQ(j["iommu"]["default_domain"], "identity");
    EXPECT_EQ(j["iommu"]["group_count"], t.groups().size());
    EXPECT_GE(j["iommu"]["group_count"].get<int>(), 150);
    EXPECT_EQ(j["iommu"]["units"].size(), 14u);
    EXPECT_EQ(j["iommu"]["interrupt_remapping"], true);
    EXPECT_EQ(j["kernel"]["intel_iommu"], "on");
    EXPECT_FALSE(any_contains(j["kernel"]["notes"], "moot"));
    json g = gpu(j, fixture::k_seed_gpu);
    ASSERT_TRUE(g.is_object());
    EXPECT_EQ(g["verdict"], "will_work");
    EXPECT_EQ(g["iommu_group"], *t.group_of(fixture::k_seed_gpu));
    EXPECT_EQ(g["group_members"], json::array({fixture::k_seed_gpu}));
    EXPECT_TRUE(g["must_go_too"].empty());
    EXPECT_TRUE(g["causes"].empty());
    EXPECT_EQ(j["reboot_required"], false);
    EXPECT_EQ(summary_row(j, "VM GPU passthrough")["now"], "Works");
}

TEST(CliSeedAfter, DeviceAndGpuFiltersShowTheSameSingleGroup) {
    const auto& t = shared_host("seed_after");
    for (const auto& filter :
         std::vector<std::vector<std::string>>{{"groups", "--device", "10de:2336", "--json"},
                                               {"groups", "--device", "8a:00.0", "--json"},
                                               {"groups", "--gpu", "--json"}}) {
        const auto& o = shared_run("seed_after", filter);
        EXPECT_EQ(o.exit_code, 0) << o.err;
        json grp = only_group(json_of(o));
        EXPECT_EQ(grp["number"], *t.group_of(fixture::k_seed_gpu));
        EXPECT_EQ(member_addresses(grp), std::vector<std::string>{fixture::k_seed_gpu});
        EXPECT_EQ(grp["type"], "identity");
        EXPECT_EQ(grp["viable"], true);
        EXPECT_EQ(grp["isolated"], true);
        EXPECT_TRUE(grp["must_go_together"].empty());
    }
}

TEST(CliAmd, IvrsUnitAndTheAudioFunctionTravelsWithTheGpu) {
    json j = status_of("amd", 0);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["iommu"]["platform"], "amd");
    EXPECT_EQ(j["iommu"]["acpi_table"], "IVRS");
    EXPECT_EQ(j["iommu"]["units"], json::array({"ivhd0"}));
    EXPECT_EQ(j["cpu"]["vendor"], "AuthenticAMD");
    EXPECT_EQ(j["cpu"]["virtualization"], "svm");
    EXPECT_EQ(j["kvm"]["backend"], "kvm_amd");
    json g = gpu(j, fixture::k_amd_gpu);
    ASSERT_TRUE(g.is_object());
    EXPECT_EQ(g["id"], "1002:744c");
    EXPECT_EQ(g["verdict"], "will_work");
    EXPECT_EQ(g["must_go_too"], json::array({fixture::k_amd_audio}));

    const auto& o = shared_run("amd", {"groups", "--device", "1002:744c", "--json"});
    EXPECT_EQ(o.exit_code, 0) << o.err;
    json grp = only_group(json_of(o));
    EXPECT_EQ(member_addresses(grp),
              (std::vector<std::string>{fixture::k_amd_gpu, fixture::k_amd_audio}));
    EXPECT_EQ(grp["isolated"], true);
    json audio = device_in(grp, fixture::k_amd_audio);
    EXPECT_EQ(audio["flags"], json::array({"gpu_companion"}));
    EXPECT_EQ(audio["driver"], "snd_hda_intel");
    EXPECT_EQ(device_in(grp, fixture::k_amd_gpu)["flags"], json::array({"gpu"}));
}

TEST(CliAmd, TheIommuFunctionItselfIsInNoGroup) {
    const auto& o = shared_run("amd", {"groups", "--json"});
    json j = json_of(o);
    ASSERT_EQ(j["ungrouped"].size(), 1u);
    EXPECT_EQ(j["ungrouped"][0]["address"], "0000:00:00.2");
    EXPECT_EQ(j["ungrouped"][0]["class"], "0806");
}

TEST(CliSharedGroup, TheOtherEndpointMustGoTooButNotTheBridge) {
    json j = status_of("shared_group", 0);
    json g = gpu(j, fixture::k_shared_gpu);
    ASSERT_TRUE(g.is_object());
    EXPECT_EQ(g["verdict"], "will_work");
    EXPECT_EQ(g["must_go_too"], json::array({fixture::k_shared_other}));
    EXPECT_EQ(g["group_members"], json::array({fixture::k_shared_bridge, fixture::k_shared_gpu,
                                               fixture::k_shared_other}));
    EXPECT_TRUE(any_contains(g["warnings"], "not isolated")) << g["warnings"].dump();
    EXPECT_TRUE(any_contains(g["warnings"], "06:02.0")) << g["warnings"].dump();
    EXPECT_EQ(j["iommu"]["default_domain"], "DMA-FQ");

    const auto& o =
        shared_run("shared_group", {"groups", "--device", fixture::k_shared_gpu, "--json"});
    json grp = only_group(json_of(o));
    EXPECT_EQ(grp["isolated"], false);
    EXPECT_EQ(grp["viable"], true);
    EXPECT_NE(std::find(grp["must_go_together"].begin(), grp["must_go_together"].end(),
                        fixture::k_shared_other),
              grp["must_go_together"].end());
    EXPECT_EQ(device_in(grp, fixture::k_shared_bridge)["flags"], json::array({"bridge"}));
}

TEST(CliCriticalGroup, TheRootFilesystemsNvmeMakesItNotViable) {
    json j = status_of("critical_group", 3);
    json g = gpu(j, fixture::k_critical_gpu);
    ASSERT_TRUE(g.is_object());
    EXPECT_EQ(g["verdict"], "will_not_work");
    EXPECT_TRUE(any_contains(g["causes"], "14:00.0")) << g["causes"].dump();
    EXPECT_TRUE(any_contains(g["causes"], "root filesystem")) << g["causes"].dump();
    bool listed = false;
    for (const auto& c : j["host_critical"])
        listed |= c["address"] == fixture::k_critical_nvme &&
                  c["reason"].get<std::string>().find("root filesystem") != std::string::npos;
    EXPECT_TRUE(listed) << j["host_critical"].dump();

    const auto& o =
        shared_run("critical_group", {"groups", "--device", fixture::k_critical_gpu, "--json"});
    json grp = only_group(json_of(o));
    EXPECT_EQ(grp["viable"], false);
    ASSERT_EQ(grp["critical"].size(), 1u);
    EXPECT_EQ(grp["critical"][0]["address"], fixture::k_critical_nvme);
    EXPECT_NE(grp["verdict"].get<std::string>().find("NOT viable"), std::string::npos);
    json flags = device_in(grp, fixture::k_critical_nvme)["flags"];
    EXPECT_NE(std::find(flags.begin(), flags.end(), "host_critical"), flags.end()) << flags.dump();
}

TEST(CliFirmwareOff, VtdIsOffInTheFirmwareAndNoRebootHelps) {
    json j = status_of("firmware_off", 3);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["iommu"]["platform"], "none");
    EXPECT_EQ(j["iommu"]["acpi_table"], nullptr);
    EXPECT_EQ(j["verdict"], "will_not_work");
    json g = gpu(j, fixture::k_seed_gpu);
    ASSERT_TRUE(g.is_object());
    EXPECT_EQ(g["verdict"], "will_not_work");
    EXPECT_TRUE(any_contains(g["steps"], "VT-d")) << g["steps"].dump();
    EXPECT_TRUE(any_contains(g["steps"], "firmware")) << g["steps"].dump();
    EXPECT_FALSE(any_contains(g["steps"], "iommu enable")) << g["steps"].dump();
    EXPECT_EQ(j["reboot_required"], false);
}

TEST(CliPvm, KvmFromPvmIsNotUsableAndTcgIsUsed) {
    json j = status_of("pvm", 0);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["kvm"]["present"], true);
    EXPECT_EQ(j["kvm"]["usable"], false);
    EXPECT_EQ(j["kvm"]["backend"], "kvm_pvm");
    EXPECT_EQ(j["kvm"]["accelerator"], "tcg");
    EXPECT_NE(j["kvm"]["reason"].get<std::string>().find("PVM"), std::string::npos);
    EXPECT_EQ(j["cpu"]["hypervisor"], true);
    EXPECT_TRUE(any_contains(j["alternatives"], "TCG")) << j["alternatives"].dump();
}

TEST(CliVfioMissing, TheMissingModulesAreNamed) {
    json j = status_of("vfio_missing", 3);
    json g = gpu(j, fixture::k_seed_gpu);
    ASSERT_TRUE(g.is_object());
    EXPECT_EQ(g["verdict"], "will_not_work");
    for (const char* m : {"vfio", "vfio_iommu_type1", "vfio_pci"})
        EXPECT_TRUE(any_contains(g["causes"], m)) << m << " " << g["causes"].dump();
    for (const auto& m : j["vfio"]["modules"])
        EXPECT_EQ(m["available"], false) << m.dump();
    EXPECT_EQ(j["vfio"]["module_list"], true);
    // After the step that boots a kernel with VFIO, it is there.
    EXPECT_TRUE(any_contains(g["steps"], "boot a kernel built with VFIO")) << g["steps"].dump();
    EXPECT_EQ(summary_row(j, "VFIO support")["after"], "Yes");
}

TEST(CliDgx, EveryH100WorksAndTheBmcConsoleDoesNot) {
    const auto& t = shared_host("dgx");
    json j = status_of("dgx", 0);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["iommu"]["group_count"], t.groups().size());
    int h100 = 0;
    for (const auto& g : j["gpus"]) {
        if (g["id"] == "10de:2330") {
            ++h100;
            EXPECT_EQ(g["verdict"], "will_work") << g["address"];
            EXPECT_EQ(g["group_members"], json::array({g["address"]}));
        } else {
            EXPECT_EQ(g["id"], "1a03:2000");
            EXPECT_EQ(g["verdict"], "will_not_work");
            EXPECT_EQ(g["boot_vga"], true);
            EXPECT_TRUE(any_contains(g["causes"], "boot VGA")) << g["causes"].dump();
        }
    }
    EXPECT_EQ(h100, 8);
    EXPECT_EQ(j["gpus"].size(), 9u);

    const auto& sw = shared_run("dgx", {"groups", "--device", "10de:22a3", "--json"});
    json nvs = json_of(sw);
    EXPECT_EQ(nvs["groups"].size(), 4u);
    for (const auto& grp : nvs["groups"]) {
        EXPECT_EQ(grp["devices"].size(), 1u);
        EXPECT_EQ(grp["isolated"], true);
    }
    const auto& gpus = shared_run("dgx", {"groups", "--gpu", "--json"});
    EXPECT_EQ(json_of(gpus)["groups"].size(), 9u);
}

TEST(CliEveryHost, JsonExitCodeMatchesAndStderrIsQuiet) {
    for (const auto& name : test::host_names()) {
        const auto& o = shared_run(name, {"status", "--json"});
        json j = json_of(o);
        ASSERT_TRUE(j.is_object()) << name;
        EXPECT_EQ(j["exit_code"], o.exit_code) << name;
        EXPECT_EQ(o.exit_code == 0, j["verdict"] == "will_work") << name;
        // A well-formed host gives no warnings.
        EXPECT_EQ(o.err, "") << name;
    }
}
