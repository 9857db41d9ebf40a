// The diagnosis as pure functions: hand-built facts, inventories and groups in,
// verdicts, causes and steps out.

#include "boot/cmdline.hpp"
#include "iommu/diagnosis.hpp"

#include <algorithm>
#include <gtest/gtest.h>

using namespace vfioctl;
using iommu::Verdict;

namespace {

pci::PciAddress addr(const char* s) {
    return *pci::PciAddress::parse(s);
}

// A function with the given identity and class (0x0302 for a 3D controller).
pci::PciDevice device(const char* a, uint16_t vendor, uint16_t dev, uint16_t cls,
                      std::optional<int> group, const char* driver = nullptr) {
    pci::PciDevice d;
    d.addr = addr(a);
    d.vendor = vendor;
    d.device = dev;
    d.class_code = cls;
    d.bridge = (cls >> 8) == 0x06;
    d.iommu_group = group;
    if (driver) d.driver = driver;
    return d;
}

pci::Inventory inventory(std::vector<pci::PciDevice> devs) {
    pci::Inventory inv;
    inv.devices = std::move(devs);
    std::sort(inv.devices.begin(), inv.devices.end(),
              [](const pci::PciDevice& x, const pci::PciDevice& y) { return x.addr < y.addr; });
    return inv;
}

iommu::IommuGroup group(int n, std::vector<const char*> members, std::string type = "identity") {
    iommu::IommuGroup g;
    g.number = n;
    g.type = std::move(type);
    for (auto* m : members)
        g.devices.push_back(addr(m));
    std::sort(g.devices.begin(), g.devices.end());
    return g;
}

// An Intel host with every vfio module available and KVM usable.
host::SystemFacts intel_facts(std::string cmdline, bool units) {
    host::SystemFacts f;
    f.kernel_release = "6.8.0-45-generic";
    f.cmdline = std::move(cmdline);
    f.cpu.vendor = "GenuineIntel";
    f.cpu.vmx = true;
    f.acpi_dmar = true;
    if (units) f.iommu_units = {"dmar0", "dmar1"};
    f.module_list = true;
    for (const auto& n : host::vfio_module_names())
        f.vfio_modules.push_back({n, true, false, false});
    f.kvm.present = f.kvm.usable = true;
    f.kvm.backend = "kvm_intel";
    return f;
}

bool contains(const std::vector<std::string>& v, std::string_view needle) {
    return std::any_of(v.begin(), v.end(),
                       [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

bool contains(const std::vector<host::DeviceUse>& v, std::string_view needle) {
    return std::any_of(v.begin(), v.end(), [&](const host::DeviceUse& u) {
        return u.what().find(needle) != std::string::npos;
    });
}

const iommu::SummaryRow* row(const iommu::Diagnosis& dx, std::string_view feature) {
    for (const auto& r : dx.summary)
        if (r.feature == feature) return &r;
    return nullptr;
}

} // namespace

TEST(IommuState, DecidesThePlatformFromTablesAndUnitsNotTheCpu) {
    auto cmd = boot::interpret(boot::tokenize("intel_iommu=on"));
    host::SystemFacts f = intel_facts("intel_iommu=on", true);
    f.cpu.vendor = "AuthenticAMD"; // TCG's -cpu max claims AMD while the IOMMU is Intel's
    auto s = iommu::iommu_state(f, cmd, {});
    EXPECT_EQ(s.platform, "intel");
    EXPECT_EQ(s.acpi_table, "DMAR");
    EXPECT_TRUE(s.enabled);

    f.acpi_ivrs = true; // both tables: the units say which one the kernel uses
    EXPECT_EQ(iommu::iommu_state(f, cmd, {}).platform, "intel");
    f.iommu_units = {"ivhd0"};
    EXPECT_EQ(iommu::iommu_state(f, cmd, {}).platform, "amd");

    host::SystemFacts none = intel_facts("", false);
    none.acpi_dmar = false;
    auto n = iommu::iommu_state(none, cmd, {});
    EXPECT_EQ(n.platform, "none");
    EXPECT_FALSE(n.acpi_table.has_value());
    EXPECT_FALSE(n.cmdline_fixable);

    none.iommu_units = {"ivhd0"};
    EXPECT_EQ(iommu::iommu_state(none, cmd, {}).platform, "amd");
    none.iommu_units = {"smmu3.0x0000"};
    EXPECT_EQ(iommu::iommu_state(none, cmd, {}).platform, "other");
}

TEST(IommuState, NamesTheCommandLineCauseWhenTheIommuIsOff) {
    auto off = [](const char* cmdline, host::SystemFacts f) {
        return iommu::iommu_state(f, boot::interpret(boot::tokenize(cmdline)), {});
    };
    auto s = off("intel_iommu=off iommu=pt", intel_facts("", false));
    EXPECT_FALSE(s.enabled);
    EXPECT_TRUE(s.cmdline_fixable);
    EXPECT_NE(s.off_cause->find("`intel_iommu=off`"), std::string::npos);

    s = off("intel_iommu=on iommu=off", intel_facts("", false));
    EXPECT_NE(s.off_cause->find("`iommu=off`"), std::string::npos);
    EXPECT_TRUE(s.cmdline_fixable);

    host::SystemFacts dflt = intel_facts("", false);
    dflt.kernel_intel_iommu_default_on = false;
    s = off("quiet", dflt);
    EXPECT_NE(s.off_cause->find("`intel_iommu=on` is missing"), std::string::npos);
    EXPECT_TRUE(s.cmdline_fixable);

    dflt.kernel_intel_iommu_default_on = true; // on by default, yet no units: not the command line
    s = off("quiet", dflt);
    EXPECT_FALSE(s.cmdline_fixable);
    EXPECT_NE(s.off_cause->find("dmesg"), std::string::npos);

    host::SystemFacts amd = intel_facts("", false);
    amd.acpi_dmar = false;
    amd.acpi_ivrs = true;
    s = off("amd_iommu=off", amd);
    EXPECT_EQ(s.platform, "amd");
    EXPECT_NE(s.off_cause->find("`amd_iommu=off`"), std::string::npos);
}

TEST(IommuState, DefaultDomainIsWhatMostGroupsUse) {
    auto cmd = boot::interpret(boot::tokenize("intel_iommu=on"));
    auto s = iommu::iommu_state(
        intel_facts("intel_iommu=on", true), cmd,
        {group(0, {"0000:00:00.0"}, "DMA"), group(1, {"0000:00:01.0"}, "identity"),
         group(2, {"0000:00:02.0"}, "identity"), group(3, {"0000:00:03.0"}, "")});
    EXPECT_EQ(s.group_count, 4);
    EXPECT_EQ(s.default_domain, "identity");
    EXPECT_FALSE(s.off_cause.has_value());
}

TEST(Assess, GpuWithItsAudioFunctionAndBridgeIsIsolated) {
    auto inv = inventory({device("0000:00:03.1", 0x1022, 0x1483, 0x0604, 5),
                          device("0000:05:00.0", 0x1002, 0x744c, 0x0300, 5, "amdgpu"),
                          device("0000:05:00.1", 0x1002, 0xab30, 0x0403, 5, "snd_hda_intel")});
    auto g = group(5, {"0000:00:03.1", "0000:05:00.0", "0000:05:00.1"});
    host::SystemFacts f = intel_facts("", true);
    auto v = iommu::assess(g, addr("0000:05:00.0"), inv, f);
    EXPECT_TRUE(v.viable);
    EXPECT_TRUE(v.isolated);
    EXPECT_EQ(v.must_go_too, std::vector<pci::PciAddress>{addr("0000:05:00.1")});
    EXPECT_TRUE(v.critical.empty());
    // Without a target the same group is isolated: one slot.
    EXPECT_TRUE(iommu::assess(g, std::nullopt, inv, f).isolated);
}

TEST(Assess, EndpointsOfAnotherSlotMustGoTooButStayViable) {
    auto inv = inventory({device("0000:05:00.0", 0x104c, 0x8240, 0x0604, 9),
                          device("0000:06:01.0", 0x10de, 0x0a65, 0x0300, 9, "nouveau"),
                          device("0000:06:02.0", 0x8086, 0x107c, 0x0200, 9, "e1000")});
    auto g = group(9, {"0000:05:00.0", "0000:06:01.0", "0000:06:02.0"});
    auto v = iommu::assess(g, addr("0000:06:01.0"), inv, intel_facts("", true));
    EXPECT_TRUE(v.viable);
    EXPECT_FALSE(v.isolated);
    EXPECT_EQ(v.must_go_too, std::vector<pci::PciAddress>{addr("0000:06:02.0")});
    EXPECT_FALSE(iommu::assess(g, std::nullopt, inv, intel_facts("", true)).isolated);
}

TEST(Assess, HostCriticalMembersAndUnreadableMembersMakeAGroupNotViable) {
    auto inv = inventory({device("0000:13:00.0", 0x10de, 0x2331, 0x0302, 14, "nvidia"),
                          device("0000:14:00.0", 0x144d, 0xa80a, 0x0108, 14, "nvme")});
    host::SystemFacts f = intel_facts("", true);
    f.critical.push_back(
        {addr("0000:14:00.0"), host::CriticalKind::root_filesystem, "/dev/nvme1n1p2"});
    auto v =
        iommu::assess(group(14, {"0000:13:00.0", "0000:14:00.0"}), addr("0000:13:00.0"), inv, f);
    EXPECT_FALSE(v.viable);
    ASSERT_EQ(v.critical.size(), 1u);
    EXPECT_EQ(v.critical[0].addr, addr("0000:14:00.0"));
    EXPECT_EQ(v.critical[0].kind, host::CriticalKind::root_filesystem);
    EXPECT_EQ(v.critical[0].reason(), "root filesystem (/dev/nvme1n1p2)");

    auto u = iommu::assess(group(14, {"0000:13:00.0", "0000:99:00.0"}), addr("0000:13:00.0"), inv,
                           intel_facts("", true));
    EXPECT_FALSE(u.viable);
    EXPECT_EQ(u.unknown, std::vector<pci::PciAddress>{addr("0000:99:00.0")});
}

TEST(Assess, BootVgaIsHostCritical) {
    auto vga = device("0000:04:00.0", 0x1a03, 0x2000, 0x0300, 13, "ast");
    vga.boot_vga = true;
    auto inv = inventory({device("0000:03:00.0", 0x1a03, 0x1150, 0x0604, 13), vga});
    auto v = iommu::assess(group(13, {"0000:03:00.0", "0000:04:00.0"}), addr("0000:04:00.0"), inv,
                           intel_facts("", true));
    EXPECT_FALSE(v.viable);
    ASSERT_EQ(v.critical.size(), 1u);
    EXPECT_EQ(v.critical[0].kind, host::CriticalKind::boot_vga);
    EXPECT_NE(v.critical[0].reason().find("boot VGA"), std::string::npos);
}

TEST(RoleOf, CompanionsAndHoldersAreAttributedToTheRightDevice) {
    auto gpu0 = device("0000:18:00.0", 0x10de, 0x2330, 0x0302, 1, "nvidia");
    auto gpu1 = device("0000:19:00.0", 0x10de, 0x2330, 0x0302, 2, "nvidia");
    auto amd = device("0000:05:00.0", 0x1002, 0x744c, 0x0300, 3, "amdgpu");
    amd.drm_nodes = {"card1", "renderD129"};
    auto audio = device("0000:05:00.1", 0x1002, 0xab30, 0x0403, 3, "snd_hda_intel");
    auto inv = inventory({gpu0, gpu1, amd, audio});
    host::SystemFacts f = intel_facts("", true);
    f.nvidia_minors = {{"/dev/nvidia0", "0000:18:00.0"}, {"/dev/nvidia1", "0000:19:00.0"}};
    f.holders = {{4242, "nvidia-persistenced", "/dev/nvidia1"},
                 {4242, "nvidia-persistenced", "/dev/nvidiactl"},
                 {777, "Xorg", "/dev/dri/renderD129"}};
    auto r0 = iommu::role_of(*inv.find(addr("0000:18:00.0")), inv, f);
    auto r1 = iommu::role_of(*inv.find(addr("0000:19:00.0")), inv, f);
    auto ra = iommu::role_of(*inv.find(addr("0000:05:00.0")), inv, f);
    auto rau = iommu::role_of(*inv.find(addr("0000:05:00.1")), inv, f);
    EXPECT_FALSE(contains(r0.in_use, "/dev/nvidia1"));
    EXPECT_TRUE(contains(r0.in_use, "/dev/nvidiactl")); // the control node holds every NVIDIA GPU
    EXPECT_TRUE(contains(r1.in_use, "pid 4242 (nvidia-persistenced) holds /dev/nvidia1"));
    EXPECT_TRUE(contains(ra.in_use, "pid 777 (Xorg) holds /dev/dri/renderD129"));
    EXPECT_FALSE(contains(ra.in_use, "nvidia"));
    EXPECT_TRUE(rau.gpu_companion);
    EXPECT_FALSE(ra.gpu_companion);
    EXPECT_TRUE(ra.gpu);
    EXPECT_FALSE(rau.gpu);
}

TEST(Diagnose, SeedBeforeIsFixableByEnableAndReboot) {
    host::SystemFacts f =
        intel_facts("BOOT_IMAGE=/vmlinuz-6.8.0 root=UUID=x ro intel_iommu=off iommu=pt", false);
    auto inv = inventory({device("0000:8a:00.0", 0x10de, 0x2336, 0x0302, std::nullopt, "nvidia")});
    auto dx = iommu::diagnose(f, inv, {});
    ASSERT_EQ(dx.gpus.size(), 1u);
    const auto& g = dx.gpus[0];
    EXPECT_EQ(g.verdict, Verdict::will_work_after);
    EXPECT_TRUE(contains(g.causes, "intel_iommu=off"));
    ASSERT_GE(g.steps.size(), 2u);
    EXPECT_TRUE(contains({g.steps[0]}, "vfioctl iommu enable"));
    EXPECT_EQ(g.steps[1], "reboot");
    EXPECT_TRUE(dx.reboot_required);
    EXPECT_EQ(dx.overall, Verdict::will_work_after);
    EXPECT_EQ(dx.exit_code(), 3);
    EXPECT_TRUE(contains(dx.notes, "moot"));
    ASSERT_TRUE(row(dx, "VM GPU passthrough"));
    EXPECT_EQ(row(dx, "VM GPU passthrough")->now, "Fails");
    EXPECT_EQ(row(dx, "VM GPU passthrough")->after, "Works");
    EXPECT_EQ(row(dx, "IOMMU groups")->now, "None");
    EXPECT_EQ(row(dx, "Reboot required")->after, "Yes");
    EXPECT_EQ(row(dx, "Host GPU usage")->now, "Works");
}

TEST(Diagnose, SeedAfterWorksNow) {
    host::SystemFacts f = intel_facts("intel_iommu=on iommu=pt", true);
    f.interrupt_remapping = true;
    auto inv = inventory({device("0000:88:02.0", 0x8086, 0x2030, 0x0604, 41, "pcieport"),
                          device("0000:8a:00.0", 0x10de, 0x2336, 0x0302, 42, "nvidia")});
    auto dx = iommu::diagnose(f, inv, {group(41, {"0000:88:02.0"}), group(42, {"0000:8a:00.0"})});
    ASSERT_EQ(dx.gpus.size(), 1u);
    EXPECT_EQ(dx.gpus[0].verdict, Verdict::will_work);
    EXPECT_TRUE(dx.gpus[0].causes.empty());
    EXPECT_EQ(dx.gpus[0].group_members, std::vector<pci::PciAddress>{addr("0000:8a:00.0")});
    EXPECT_FALSE(dx.reboot_required);
    EXPECT_EQ(dx.exit_code(), 0);
    EXPECT_EQ(dx.iommu.default_domain, "identity");
    EXPECT_EQ(row(dx, "Security isolation")->now, "Full");
}

TEST(Diagnose, HolderIsACauseWithOneStepPerProcess) {
    host::SystemFacts f = intel_facts("intel_iommu=on", true);
    f.nvidia_minors = {{"/dev/nvidia0", "0000:8a:00.0"}};
    f.holders = {{4242, "nvidia-persistenced", "/dev/nvidia0"},
                 {4242, "nvidia-persistenced", "/dev/nvidiactl"}};
    auto inv = inventory({device("0000:8a:00.0", 0x10de, 0x2336, 0x0302, 42, "nvidia")});
    auto dx = iommu::diagnose(f, inv, {group(42, {"0000:8a:00.0"})});
    const auto& g = dx.gpus.at(0);
    EXPECT_EQ(g.verdict, Verdict::will_work_after);
    EXPECT_TRUE(contains(g.causes, "pid 4242 (nvidia-persistenced) holds /dev/nvidia0"));
    EXPECT_EQ(std::count(g.steps.begin(), g.steps.end(),
                         "stop that process (pid 4242 (nvidia-persistenced))"),
              1);
    EXPECT_EQ(dx.exit_code(), 3);
}

TEST(Diagnose, MissingVfioModulesCannotBeFixedByAReboot) {
    host::SystemFacts f = intel_facts("intel_iommu=on", true);
    for (auto& m : f.vfio_modules)
        m.available = false;
    auto inv = inventory({device("0000:8a:00.0", 0x10de, 0x2336, 0x0302, 42, "nvidia")});
    auto dx = iommu::diagnose(f, inv, {group(42, {"0000:8a:00.0"})});
    const auto& g = dx.gpus.at(0);
    EXPECT_EQ(g.verdict, Verdict::will_not_work);
    EXPECT_TRUE(contains(g.causes, "vfio, vfio_iommu_type1, vfio_pci"));
    EXPECT_FALSE(contains(g.causes, "vfio_pci_core")); // kernels before 5.16 have none
    // vfioctl cannot take the step, yet it is listed: after it, VFIO is there.
    EXPECT_TRUE(contains(g.steps, "boot a kernel built with VFIO"));
    EXPECT_TRUE(g.steps_fix);
    EXPECT_EQ(row(dx, "VFIO support")->after, "Yes");
    EXPECT_EQ(row(dx, "VM GPU passthrough")->after, "Works");

    // vfio_pci_core alone missing is an older kernel, not a problem.
    host::SystemFacts old = intel_facts("intel_iommu=on", true);
    for (auto& m : old.vfio_modules)
        if (m.name == "vfio_pci_core") m.available = false;
    EXPECT_EQ(iommu::diagnose(old, inv, {group(42, {"0000:8a:00.0"})}).gpus.at(0).verdict,
              Verdict::will_work);
}

TEST(Diagnose, NoGroupWhileTheIommuIsOnIsAFirmwareScopeProblem) {
    auto inv = inventory({device("0000:8a:00.0", 0x10de, 0x2336, 0x0302, std::nullopt, "nvidia")});
    auto dx =
        iommu::diagnose(intel_facts("intel_iommu=on", true), inv, {group(0, {"0000:00:00.0"})});
    EXPECT_EQ(dx.gpus.at(0).verdict, Verdict::will_not_work);
    EXPECT_TRUE(contains(dx.gpus[0].causes, "no IOMMU group"));
}

TEST(Diagnose, FirmwareOffNamesVtdAndTheFirmwareSetup) {
    host::SystemFacts f = intel_facts("intel_iommu=on", false);
    f.acpi_dmar = false;
    auto inv = inventory({device("0000:8a:00.0", 0x10de, 0x2336, 0x0302, std::nullopt, "nvidia")});
    auto dx = iommu::diagnose(f, inv, {});
    const auto& g = dx.gpus.at(0);
    EXPECT_EQ(g.verdict, Verdict::will_not_work);
    EXPECT_TRUE(contains(g.steps, "VT-d"));
    EXPECT_TRUE(contains(g.steps, "firmware"));
    EXPECT_FALSE(contains(g.steps, "iommu enable"));
    EXPECT_FALSE(dx.reboot_required);
    // The summary's "after the steps" agrees with the steps.
    EXPECT_EQ(row(dx, "IOMMU groups")->after, "Many (after the steps)");
    EXPECT_EQ(row(dx, "VM GPU passthrough")->after, "Works");
    EXPECT_EQ(row(dx, "VFIO support")->after, "Yes");
}

// Facts of a VM with no virtual IOMMU: no DMAR, the CPU's hypervisor flag.
host::SystemFacts guest_facts(host::Hypervisor h, std::string cmdline = "") {
    host::SystemFacts f = intel_facts(std::move(cmdline), false);
    f.acpi_dmar = false;
    f.cpu.hypervisor = true;
    f.virt.cpu_flag = true;
    f.virt.hypervisor = h;
    return f;
}

TEST(Diagnose, GuestWithoutAVirtualIommuNamesTheVmsSettingsNotTheFirmware) {
    auto inv = inventory({device("0000:00:06.0", 0x10de, 0x2330, 0x0302, std::nullopt, "nvidia")});
    auto dx = iommu::diagnose(guest_facts(host::Hypervisor::qemu_kvm), inv, {});
    const auto& g = dx.gpus.at(0);
    EXPECT_EQ(g.verdict, Verdict::will_not_work);
    EXPECT_TRUE(contains(g.causes, "virtual machine (QEMU/KVM)")) << g.causes.at(0);
    EXPECT_FALSE(contains(g.causes, "firmware setup"));
    EXPECT_FALSE(contains(g.steps, "BIOS/UEFI"));
    // This kernel leaves an Intel IOMMU off: intel_iommu=on first, then the
    // VM's own settings, with QEMU's and libvirt's words.
    ASSERT_EQ(g.steps.size(), 2u);
    EXPECT_NE(g.steps[0].find("vfioctl iommu enable --iommu intel"), std::string::npos);
    EXPECT_NE(g.steps[1].find("intel-iommu,intremap=on,caching-mode=on"), std::string::npos);
    EXPECT_NE(g.steps[1].find("<iommu model='intel'>"), std::string::npos);
    EXPECT_TRUE(g.steps_fix);
    EXPECT_TRUE(dx.reboot_required);
    EXPECT_EQ(dx.iommu.hypervisor, host::Hypervisor::qemu_kvm);
    EXPECT_EQ(row(dx, "VM GPU passthrough")->now, "Fails");
    EXPECT_EQ(row(dx, "VM GPU passthrough")->after, "Works");
    EXPECT_EQ(row(dx, "IOMMU groups")->after, "Many (after the steps)");
    EXPECT_EQ(row(dx, "Reboot required")->after, "Yes");

    // A command line that already turns it on needs no 'iommu enable'.
    auto on = iommu::diagnose(guest_facts(host::Hypervisor::vmware, "intel_iommu=on"), inv, {});
    ASSERT_EQ(on.gpus.at(0).steps.size(), 1u);
    EXPECT_TRUE(contains(on.gpus[0].steps, "Expose IOMMU to the guest OS"));

    // Unnamed: still a VM's setting, with the physical host as the other way.
    auto unnamed = iommu::diagnose(guest_facts(host::Hypervisor::unknown), inv, {});
    EXPECT_TRUE(contains(unnamed.gpus.at(0).causes, "an unnamed hypervisor"));
    EXPECT_TRUE(contains(unnamed.gpus[0].steps, "run vfioctl on the physical host"));
    EXPECT_EQ(row(unnamed, "VM GPU passthrough")->after, "Works");
}

TEST(Diagnose, CloudThatOffersNoVirtualIommuHasNoStepAndFailsAfterToo) {
    auto inv = inventory({device("0000:00:1e.0", 0x10de, 0x2330, 0x0302, std::nullopt, "nvidia")});
    for (auto h : {host::Hypervisor::aws_ec2, host::Hypervisor::gce, host::Hypervisor::azure}) {
        SCOPED_TRACE(host::hypervisor_id(h));
        auto dx = iommu::diagnose(guest_facts(h), inv, {});
        const auto& g = dx.gpus.at(0);
        EXPECT_EQ(g.verdict, Verdict::will_not_work);
        EXPECT_TRUE(g.steps.empty()) << g.steps.front();
        EXPECT_FALSE(g.steps_fix);
        EXPECT_TRUE(contains(g.causes, std::string(host::hypervisor_name(h)) +
                                           " offers its VMs no virtual IOMMU"));
        EXPECT_EQ(row(dx, "VM GPU passthrough")->after, "Fails");
        EXPECT_EQ(row(dx, "IOMMU groups")->after, "None");
        EXPECT_EQ(row(dx, "VFIO support")->after, "No");
    }
    auto aws = iommu::diagnose(guest_facts(host::Hypervisor::aws_ec2), inv, {});
    EXPECT_TRUE(contains(aws.gpus.at(0).causes, "*.metal"));
}

TEST(Hypervisor, DmiNamesItOnlyWhenTheCpuSaysGuest) {
    struct Case {
        const char* vendor;
        const char* product;
        const char* bios_version;
        const char* asset;
        host::Hypervisor want;
    };
    const Case cases[] = {
        {"QEMU", "Standard PC (Q35 + ICH9, 2009)", "1.16.2-debian-1.16.2-1", "",
         host::Hypervisor::qemu_kvm},
        {"Amazon EC2", "g5.xlarge", "1.0", "", host::Hypervisor::aws_ec2},
        {"Xen", "HVM domU", "4.11.amazon", "", host::Hypervisor::aws_ec2},
        {"Google", "Google Compute Engine", "Google", "", host::Hypervisor::gce},
        {"Microsoft Corporation", "Virtual Machine", "Hyper-V UEFI Release v4.1",
         "7783-7084-3265-9085-8269-3286-77", host::Hypervisor::azure},
        {"Microsoft Corporation", "Virtual Machine", "Hyper-V UEFI Release v4.1", "",
         host::Hypervisor::hyperv},
        {"VMware, Inc.", "VMware7,1", "VMW71.00V", "", host::Hypervisor::vmware},
        {"innotek GmbH", "VirtualBox", "VirtualBox", "", host::Hypervisor::virtualbox},
        {"OpenStack Foundation", "OpenStack Nova", "1.15.0", "", host::Hypervisor::openstack},
        {"Xen", "HVM domU", "4.16", "", host::Hypervisor::xen},
        {"", "", "", "", host::Hypervisor::unknown},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(c.vendor) + " / " + c.product);
        host::VirtFacts v;
        v.cpu_flag = true;
        auto set = [](std::optional<std::string>& f, const char* s) {
            if (*s) f = s;
        };
        set(v.sys_vendor, c.vendor);
        set(v.product_name, c.product);
        set(v.bios_version, c.bios_version);
        set(v.chassis_asset_tag, c.asset);
        EXPECT_EQ(host::identify_hypervisor(v), c.want);
        // The same DMI without the CPU's flag is bare metal (an EC2 *.metal
        // instance says "Amazon EC2" too).
        v.cpu_flag = false;
        EXPECT_EQ(host::identify_hypervisor(v), host::Hypervisor::none);
    }
}

TEST(Diagnose, InterruptRemappingOffWarnsUnlessUnsafeInterruptsAreAllowed) {
    auto inv = inventory({device("0000:8a:00.0", 0x10de, 0x2336, 0x0302, 42, "nvidia")});
    host::SystemFacts f = intel_facts("intel_iommu=on", true);
    f.interrupt_remapping = false;
    auto dx = iommu::diagnose(f, inv, {group(42, {"0000:8a:00.0"})});
    EXPECT_TRUE(contains(dx.gpus.at(0).warnings, "allow_unsafe_interrupts"));
    EXPECT_EQ(dx.gpus[0].verdict, Verdict::will_work);
    f.cmdline = "intel_iommu=on vfio_iommu_type1.allow_unsafe_interrupts=1";
    dx = iommu::diagnose(f, inv, {group(42, {"0000:8a:00.0"})});
    EXPECT_FALSE(contains(dx.gpus.at(0).warnings, "allow_unsafe_interrupts"));
}

TEST(Diagnose, OverallIsTheBestGpusVerdict) {
    auto vga = device("0000:04:00.0", 0x1a03, 0x2000, 0x0300, 13, "ast");
    vga.boot_vga = true;
    auto inv = inventory({vga, device("0000:18:00.0", 0x10de, 0x2330, 0x0302, 20, "nvidia")});
    auto dx = iommu::diagnose(intel_facts("intel_iommu=on", true), inv,
                              {group(13, {"0000:04:00.0"}), group(20, {"0000:18:00.0"})});
    ASSERT_EQ(dx.gpus.size(), 2u);
    EXPECT_EQ(dx.gpus[0].verdict, Verdict::will_not_work);
    EXPECT_EQ(dx.gpus[1].verdict, Verdict::will_work);
    EXPECT_EQ(dx.overall, Verdict::will_work);
    EXPECT_EQ(dx.exit_code(), 0);

    auto none = iommu::diagnose(intel_facts("intel_iommu=on", true), inventory({}), {});
    EXPECT_TRUE(none.gpus.empty());
    EXPECT_EQ(none.exit_code(), 3);
    EXPECT_EQ(row(none, "VM GPU passthrough")->now, "No GPU");
}

TEST(Diagnose, AlternativesFollowTheHost) {
    host::SystemFacts f = intel_facts("intel_iommu=off", false);
    f.kvm.usable = false;
    f.kvm.reason = "/dev/kvm is provided by kvm_pvm (PVM): ordinary guest kernels hang under it";
    f.container_runtimes = {"docker"};
    f.container_gpu_support = true;
    auto inv = inventory({device("0000:8a:00.0", 0x10de, 0x2336, 0x0302, std::nullopt, "nvidia")});
    auto dx = iommu::diagnose(f, inv, {});
    EXPECT_TRUE(contains(dx.alternatives, "use 8a:00.0 on the host: it is bound to nvidia"));
    EXPECT_TRUE(contains(dx.alternatives, "--gpus all"));
    EXPECT_TRUE(contains(dx.alternatives, "TCG"));
    EXPECT_TRUE(contains(dx.alternatives, "/dev/kvm is provided by kvm_pvm"));
}

TEST(CpuInfo, ReadsTheFirstProcessorOnly) {
    auto c = host::parse_cpuinfo(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu svm hypervisor\n\n"
        "processor\t: 1\nvendor_id\t: GenuineIntel\nflags\t\t: vmx\n");
    EXPECT_EQ(c.vendor, "AuthenticAMD");
    EXPECT_TRUE(c.svm);
    EXPECT_TRUE(c.hypervisor);
    EXPECT_FALSE(c.vmx);
    auto e = host::parse_cpuinfo("");
    EXPECT_EQ(e.vendor, "");
    EXPECT_FALSE(e.vmx || e.svm || e.hypervisor);
}
