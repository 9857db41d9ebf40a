// 'vfioctl explain' on its own: every message it knows, found anywhere in a
// line and in any letter case, with the address or group it names; and
// lines of any length (issue #11: one 30 KB line overflowed the stack of the
// std::regex matcher this replaced).

#include "boot/cmdline.hpp"
#include "iommu/explain.hpp"
#include "util/strings.hpp"

#include <gtest/gtest.h>
#include <set>

using namespace vfioctl;

namespace {

struct Ctx {
    host::SystemFacts facts;
    pci::Inventory inv;
    std::vector<iommu::IommuGroup> groups;
    iommu::IommuState state;
    boot::IommuCmdline cmdline;
    iommu::ExplainContext ctx{facts, inv, groups, state, cmdline};
};

std::vector<iommu::Explanation> run(std::string_view text) {
    static Ctx c;
    return iommu::explain(text, c.ctx);
}

} // namespace

TEST(Explain, EveryKnownMessage) {
    struct Case {
        std::string line, id, device;
        std::optional<int> group;
    };
    const std::vector<Case> cases = {
        {"qemu-system-x86_64: -device vfio-pci,host=0000:8a:00.0: vfio 0000:8a:00.0: no "
         "iommu_group found: "
         "Invalid argument",
         "no_iommu_group",
         "0000:8a:00.0",
         {}},
        {"vfio-pci 0000:8a:00.0: probe of 0000:8a:00.0 failed with error -22",
         "probe_failed_einval",
         "0000:8a:00.0",
         {}},
        {"[ 1.0] vfio-pci 8a:00.0: probe failed with error -22",
         "probe_failed_einval",
         "0000:8a:00.0",
         {}},
        {"-device vfio-pci,host=0000:8b:00.0: vfio 0000:8b:00.0: no such host device",
         "no_such_host_device",
         "0000:8b:00.0",
         {}},
        {"vfio 0000:8a:00.0: group 42 is not viable", "group_not_viable", "0000:8a:00.0", 42},
        {"vfio: error opening /dev/vfio/42: Device or resource busy", "vfio_group_busy", "", 42},
        {"failed to open /dev/vfio/7: Permission denied", "vfio_group_permission", "", 7},
        {"VFIO_MAP_DMA failed: Cannot allocate memory", "map_dma_enomem", "", {}},
        {"vfio_dma_map(0x55, 0x0, 0x80000000, 0x7f) = -12 (Cannot allocate memory)",
         "map_dma_enomem",
         "",
         {}},
        {"vfio_pin_pages_remote: RLIMIT_MEMLOCK (65536) exceeded", "map_dma_enomem", "", {}},
        {"pci 0000:8a:00.0: BAR 1: can't reserve [mem 0xc0000000-0xcfffffff 64bit pref]",
         "bar_cannot_reserve",
         "0000:8a:00.0",
         {}},
        {"qemu: Property 'vfio-pci.host' doesn't take value 'zz:00'", "bad_host_property", "", {}},
        {"vfio: Failed to set iommu for container: Operation not permitted",
         "container_set_iommu",
         "",
         {}},
        {"vfio: No available IOMMU models", "no_iommu_models", "", {}},
        {"vfio_iommu_type1_attach_group: No interrupt remapping support.  Use the module param",
         "unsafe_interrupts",
         "",
         {}},
        {"NVRM: Attempting to remove device 0000:8a:00.0 with non-zero usage count!",
         "nvrm_in_use",
         "0000:8a:00.0",
         {}},
        {"NVRM: The NVIDIA probe routine was not called for 1 device(s).",
         "nvrm_probe_not_called",
         "",
         {}},
        {"NVRM: GPU 0000:8a:00.0: RmInitAdapter failed! (0x22:0x56:667)",
         "nvrm_init_failed",
         "0000:8a:00.0",
         {}},
        {"VFIO 0000:8A:00.0: NO IOMMU_GROUP FOUND", "no_iommu_group", "0000:8a:00.0", {}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.line);
        auto e = run(c.line);
        ASSERT_EQ(e.size(), 1u);
        EXPECT_EQ(e[0].id, c.id);
        EXPECT_EQ(e[0].matched, c.line);
        EXPECT_EQ(e[0].device ? e[0].device->str() : "", c.device);
        if (c.group) {
            EXPECT_EQ(e[0].group, c.group);
        }
        EXPECT_FALSE(e[0].remedy.empty());
    }
    auto bad = run("qemu: Property 'vfio-pci.host' doesn't take value 'zz:00'");
    ASSERT_EQ(bad.size(), 1u);
    ASSERT_FALSE(bad[0].on_this_host.empty());
    EXPECT_NE(bad[0].on_this_host[0].find("zz:00"), std::string::npos) << bad[0].on_this_host[0];
}

TEST(Explain, NearMissesAreNotRecognised) {
    for (const char* line :
         {"Device or resource busy", "/dev/vfio/: Device or resource busy",
          "Device or resource busy /dev/vfio/3", "group x is not viable", "group 3 is viable",
          "vfio-pci 8a:00.0 failed with error -22 probe", "RmInitAdapter failed",
          "can't reserve [bus", "Property 'vfio-pci.host' doesn't take value 'unterminated",
          "probe failed with error -22"}) {
        SCOPED_TRACE(line);
        EXPECT_TRUE(run(line).empty());
    }
}

TEST(Explain, OneExplanationPerKindAndDevice) {
    auto e =
        run("vfio 0000:8a:00.0: no iommu_group found\nvfio 0000:8a:00.0: no iommu_group found\n"
            "vfio 0000:8b:00.0: no iommu_group found\r\n\n");
    ASSERT_EQ(e.size(), 2u);
    EXPECT_EQ(e[1].device->str(), "0000:8b:00.0");
}

TEST(Explain, HugeLinesAreLinearWork) {
    // 30 KB and 1 MB on one line, with the message at the far end.
    for (size_t n : {size_t{30} << 10, size_t{1} << 20}) {
        SCOPED_TRACE(n);
        auto e = run("vfio 0000:8a:00.0: " + std::string(n, '(') + " no iommu_group found");
        ASSERT_EQ(e.size(), 1u);
        EXPECT_EQ(e[0].id, "no_iommu_group");
        EXPECT_EQ(e[0].device->str(), "0000:8a:00.0");

        e = run(std::string(n, 'a') + " group 7 is not viable");
        ASSERT_EQ(e.size(), 1u);
        EXPECT_EQ(e[0].id, "group_not_viable");
        EXPECT_EQ(e[0].group, 7);

        std::string nodes;
        while (nodes.size() < n)
            nodes += "/dev/vfio/9 ";
        e = run(nodes + "Permission denied");
        ASSERT_EQ(e.size(), 1u);
        EXPECT_EQ(e[0].id, "vfio_group_permission");
        EXPECT_EQ(e[0].group, 9);

        // Many starts of a message, none finished: nothing.
        std::string partial;
        while (partial.size() < n)
            partial += "vfio-pci 0000:8a:00.0 probe NVRM: group 1 is not viable1 can't reserve [";
        partial += "0 is not viable";
        e = run(partial);
        ASSERT_EQ(e.size(), 1u); // "group 1 is not viable" is there
        EXPECT_EQ(e[0].id, "group_not_viable");
        EXPECT_TRUE(run(std::string(n, '(')).empty());
        EXPECT_TRUE(run(std::string(n, '0') + ":").empty());
    }
}

// Real messages, as QEMU, VFIO, DPDK, the kernel and the NVIDIA driver
// print them (the "no such host device" and "Property" lines from QEMU 7.2
// on Debian 12; the others as reported from hosts, or in the format string
// of the program that prints them), each with the rule that must match and
// what it names.
TEST(Explain, RealMessagesMatchTheirRule) {
    struct Case {
        std::string line, id, device;
        std::optional<int> group;
    };
    const std::vector<Case> cases = {
        {"qemu-system-x86_64: -device vfio-pci,host=08:00.0,bus=port.1,multifunction=on: vfio "
         "0000:08:00.0: no iommu_group found: No such file or directory",
         "no_iommu_group",
         "0000:08:00.0",
         {}},
        {"qemu-system-x86_64: -device vfio-pci,host=0000:00:02.0,id=hostdev0,bus=pcie.0,addr=0x2: "
         "vfio 0000:00:02.0: no iommu_group found: No such file or directory",
         "no_iommu_group",
         "0000:00:02.0",
         {}},
        {"qemu-system-x86_64: -device vfio-pci,host=0000:ee:1f.7: vfio "
         "/sys/bus/pci/devices/0000:ee:1f.7: no such host device: No such file or directory",
         "no_such_host_device",
         "0000:ee:1f.7",
         {}},
        {"qemu-system-x86_64: -device vfio-pci,host=01:00.0,multifunction=on: vfio error: "
         "0000:01:00.0: group 1 is not viable",
         "group_not_viable", "0000:01:00.0", 1},
        {"2021-11-03T08:06:48.563014Z qemu-kvm: -device "
         "vfio-pci,host=0000:01:00.0,id=ua-gpu1,bus=pci.5,addr=0x0: vfio 0000:01:00.0: group 1 is "
         "not viable",
         "group_not_viable", "0000:01:00.0", 1},
        {"EAL: Cannot open /dev/vfio/151: Device or resource busy", "vfio_group_busy", "", 151},
        {"qemu-system-x86_64: -device vfio-pci,host=00:14.0,bus=port.1: vfio error: 0000:00:14.0: "
         "failed to open /dev/vfio/7: Permission denied",
         "vfio_group_permission", "0000:00:14.0", 7},
        {"qemu-system-x86_64: VFIO_MAP_DMA failed: Cannot allocate memory",
         "map_dma_enomem",
         "",
         {}},
        {"kvm: vfio_dma_map(0x5e043daea2f0, 0x0, 0x80000000, 0x771a38000000) = -12 (Cannot "
         "allocate memory)",
         "map_dma_enomem",
         "",
         {}},
        {"[    2.1] vfio-pci 0000:01:00.0: probe of 0000:01:00.0 failed with error -22",
         "probe_failed_einval",
         "0000:01:00.0",
         {}},
        {"[  194.862669] vfio-pci 0000:01:00.0: BAR 3: can't reserve [mem 0xa0000000-0xa1ffffff "
         "64bit pref]",
         "bar_cannot_reserve",
         "0000:01:00.0",
         {}},
        {"qemu-system-x86_64: -device vfio-pci,host=zz:00: Property 'vfio-pci.host' doesn't take "
         "value 'zz:00'",
         "bad_host_property",
         "",
         {}},
        {"qemu-system-x86_64: -device vfio-pci,id=hostdev0,sysfsdev=/sys/bus/mdev/devices/"
         "34658867-146a-4656-9fa5-890fdbc37010,display=on,bus=pcie.0,addr=0x9: vfio "
         "34658867-146a-4656-9fa5-890fdbc37010: failed to setup container for group 11: Failed to "
         "set iommu for container: Input/output error",
         "container_set_iommu",
         "",
         {}},
        {"qemu-system-x86_64: -device vfio-pci,host=01:00.0: vfio 0000:01:00.0: failed to setup "
         "container for group 1: No available IOMMU models",
         "no_iommu_models",
         "0000:01:00.0",
         {}},
        {"[ 1.5] vfio_iommu_type1_attach_group: No interrupt remapping support.  Use the module "
         "param \"allow_unsafe_interrupts\" to enable VFIO IOMMU support on this platform",
         "unsafe_interrupts",
         "",
         {}},
        {"Feb 26 18:22:12 adder kernel: NVRM: Attempting to remove device 0000:01:00.0 with "
         "non-zero "
         "usage count!",
         "nvrm_in_use",
         "0000:01:00.0",
         {}},
        {"[ 3.1] NVRM: The NVIDIA probe routine was not called for 1 device(s).",
         "nvrm_probe_not_called",
         "",
         {}},
        {"[   87.473074] NVRM: GPU 0000:01:00.0: RmInitAdapter failed! (0x22:0x56:667)",
         "nvrm_init_failed",
         "0000:01:00.0",
         {}},
        {"Feb 09 15:47:06 debian kernel: NVRM: GPU 0000:13:00.0: RmInitAdapter failed! "
         "(0x26:0x56:1463)",
         "nvrm_init_failed",
         "0000:13:00.0",
         {}},
        {"RuntimeError: CUDA error: system not yet initialized", "cuda_system_not_ready", "", {}},
        {"-> cudaErrorSystemNotReady: system not yet initialized", "cuda_system_not_ready", "", {}},
        {"[Nov 30 2026 10:02:11] [ERROR] [tid 1342] fabric manager NVIDIA GPU driver interface "
         "version 535.129.03 don't match with driver version 535.104.12. Please update with "
         "matching NVIDIA driver package.",
         "fabric_manager_version_mismatch",
         "",
         {}},
    };
    std::set<std::string> covered;
    for (const auto& c : cases) {
        SCOPED_TRACE(c.line);
        auto e = run(c.line);
        ASSERT_EQ(e.size(), 1u);
        EXPECT_EQ(e[0].id, c.id);
        EXPECT_EQ(e[0].device ? e[0].device->str() : "", c.device);
        if (c.group) {
            EXPECT_EQ(e[0].group, c.group);
        }
        covered.insert(e[0].id);
    }
    // Every rule has at least one real message here.
    for (const auto& id : iommu::known_messages())
        EXPECT_TRUE(covered.count(id)) << id;
}

// Real lines that look like a known message but mean something else.
TEST(Explain, RealLookAlikesAreNotMatched) {
    for (const char* line : {
             // EINVAL, not ENOMEM: an IOVA out of range, not the locked-memory limit.
             "kvm: VFIO_MAP_DMA failed: Invalid argument",
             "kvm: vfio_dma_map(0x5e043daea2f0, 0x380010000000, 0x2000000, 0x771a6ce00000) = -22 "
             "(Invalid argument)",
             // Another driver's probe failure.
             "[  103.652050] nvidia: probe of 0000:01:00.0 failed with error -1",
             // The group node is missing, not busy.
             "qemu-system-x86_64: -device vfio-pci,host=00:14.0,bus=port.1: vfio error: "
             "0000:00:14.0: failed to open /dev/vfio/2: No such file or directory",
             "NVRM: GPU 0000:98:00.0: rm_init_adapter failed, device minor number 0",
         }) {
        SCOPED_TRACE(line);
        EXPECT_TRUE(run(line).empty());
    }
}

namespace {

// A host with an NVIDIA GPU (01:00.0) and its HDMI audio (01:00.1) behind
// the root port 00:01.0, all in IOMMU group 1, on their host drivers.
struct ExplainHost {
    host::SystemFacts facts;
    pci::Inventory inv;
    std::vector<iommu::IommuGroup> groups;
    iommu::IommuState state;
    boot::IommuCmdline cmdline;
    iommu::ExplainContext ctx{facts, inv, groups, state, cmdline};

    ExplainHost() {
        auto dev = [](const char* a, uint16_t vendor, uint16_t device, uint16_t cls,
                      const char* driver) {
            pci::PciDevice d;
            d.addr = *pci::PciAddress::parse(a);
            d.vendor = vendor;
            d.device = device;
            d.class_code = cls;
            d.vendor_name = vendor == 0x10de ? "NVIDIA Corporation" : "Intel Corporation";
            d.device_name = "Device";
            d.driver = driver;
            d.iommu_group = 1;
            return d;
        };
        inv.devices.push_back(dev("0000:00:01.0", 0x8086, 0x0c01, 0x0604, "pcieport"));
        inv.devices.back().bridge = true;
        inv.devices.push_back(dev("0000:01:00.0", 0x10de, 0x1187, 0x0300, "nvidia"));
        inv.devices.push_back(dev("0000:01:00.1", 0x10de, 0x0e0a, 0x0403, "snd_hda_intel"));
        iommu::IommuGroup g;
        g.number = 1;
        for (const auto& d : inv.devices)
            g.devices.push_back(d.addr);
        groups.push_back(g);
        state.platform = "intel";
        state.enabled = true;
        state.group_count = 1;
        state.interrupt_remapping = true;
    }
    // The IOMMU off, by intel_iommu=off on the command line.
    void iommu_off() {
        state.enabled = false;
        state.group_count = 0;
        state.off_cause = "intel_iommu=off on the kernel command line";
        state.cmdline_fixable = true;
        groups.clear();
        for (auto& d : inv.devices)
            d.iommu_group.reset();
    }
    std::vector<iommu::Explanation> explain(std::string_view text) const {
        return iommu::explain(text, ctx);
    }
};

bool has(const std::vector<std::string>& lines, const std::string& part) {
    for (const auto& l : lines)
        if (l.find(part) != std::string::npos) return true;
    return false;
}

std::string lines_of(const iommu::Explanation& e) {
    return "on this host: " + util::join(e.on_this_host, " | ") +
           "\nremedy: " + util::join(e.remedy, " | ");
}

const char* const k_no_group = "qemu-system-x86_64: -device vfio-pci,host=01:00.0: vfio "
                               "0000:01:00.0: no iommu_group found: No such file or directory";

} // namespace

// The same message, two causes: the IOMMU off (fixable on the command
// line), or on with the device in a group now (the message is stale).
TEST(Explain, NoIommuGroupNamesTheCauseOnThisHost) {
    ExplainHost off;
    off.iommu_off();
    auto e = off.explain(k_no_group);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].id, "no_iommu_group");
    EXPECT_TRUE(has(e[0].on_this_host, "the IOMMU is off on this host: intel_iommu=off on the "
                                       "kernel command line"))
        << lines_of(e[0]);
    ASSERT_FALSE(e[0].remedy.empty());
    EXPECT_EQ(e[0].remedy[0].rfind("vfioctl iommu enable", 0), 0u) << lines_of(e[0]);

    ExplainHost on;
    e = on.explain(k_no_group);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_TRUE(has(e[0].on_this_host, "the IOMMU is on here (1 groups)")) << lines_of(e[0]);
    EXPECT_TRUE(has(e[0].on_this_host, "IOMMU group 1")) << lines_of(e[0]);
    EXPECT_TRUE(has(e[0].remedy, "the message predates the IOMMU being on")) << lines_of(e[0]);

    // vfio-pci's own refusal of such a device explains the same way.
    e = off.explain("[    2.1] vfio-pci 0000:01:00.0: probe of 0000:01:00.0 failed with error -22");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].id, "probe_failed_einval");
    EXPECT_TRUE(has(e[0].on_this_host, "the IOMMU is off on this host")) << lines_of(e[0]);
}

TEST(Explain, NoSuchHostDeviceListsTheGpus) {
    ExplainHost h;
    auto e = h.explain("qemu-system-x86_64: -device vfio-pci,host=0000:ee:1f.7: vfio "
                       "/sys/bus/pci/devices/0000:ee:1f.7: no such host device: No such file or "
                       "directory");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].id, "no_such_host_device");
    EXPECT_TRUE(has(e[0].on_this_host, "0000:ee:1f.7 does not exist on this host"))
        << lines_of(e[0]);
    EXPECT_TRUE(has(e[0].on_this_host, "GPUs on this host: 0000:01:00.0 [10de:1187]"))
        << lines_of(e[0]);
}

// Not viable: which members are on which driver, and whether 'bind' can
// fix it or a member is one the host cannot give away (the boot VGA).
TEST(Explain, GroupNotViableNamesTheMembersOnHostDrivers) {
    const char* line = "qemu-system-x86_64: -device vfio-pci,host=01:00.0,multifunction=on: vfio "
                       "error: 0000:01:00.0: group 1 is not viable";
    ExplainHost h;
    auto e = h.explain(line);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].id, "group_not_viable");
    EXPECT_TRUE(has(e[0].on_this_host, "group 1 members not on vfio-pci: 01:00.0 is on nvidia; "
                                       "01:00.1 is on snd_hda_intel"))
        << lines_of(e[0]);
    EXPECT_FALSE(has(e[0].on_this_host, "00:01.0")) << lines_of(e[0]); // the bridge may stay
    EXPECT_TRUE(has(e[0].remedy, "vfioctl bind 01:00.0")) << lines_of(e[0]);

    h.inv.devices[1].boot_vga = true;
    e = h.explain(line);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_TRUE(has(e[0].on_this_host, "01:00.0 in the same group is host-critical"))
        << lines_of(e[0]);
    EXPECT_TRUE(has(e[0].remedy, "move the card to another slot")) << lines_of(e[0]);
    EXPECT_FALSE(has(e[0].remedy, "vfioctl bind")) << lines_of(e[0]);

    h.groups.clear();
    e = h.explain(line);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_TRUE(has(e[0].on_this_host, "there is no IOMMU group 1 on this host now"))
        << lines_of(e[0]);
}

TEST(Explain, BusyGroupNamesTheProcessHoldingIt) {
    ExplainHost h;
    const char* line = "EAL: Cannot open /dev/vfio/151: Device or resource busy";
    auto e = h.explain(line);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].id, "vfio_group_busy");
    EXPECT_TRUE(has(e[0].on_this_host, "no process holds /dev/vfio/151 now")) << lines_of(e[0]);
    h.facts.holders.push_back({4242, "qemu-system-x86", "/dev/vfio/151"});
    h.facts.holders.push_back({7, "other", "/dev/vfio/15"});
    e = h.explain(line);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_TRUE(has(e[0].on_this_host, "/dev/vfio/151 is held by pid 4242 (qemu-system-x86)"))
        << lines_of(e[0]);
    EXPECT_FALSE(has(e[0].on_this_host, "pid 7")) << lines_of(e[0]);
}

TEST(Explain, PermissionAndMemlockRemedies) {
    ExplainHost h;
    auto p = h.explain("qemu-system-x86_64: -device vfio-pci,host=00:14.0,bus=port.1: vfio "
                       "error: 0000:00:14.0: failed to open /dev/vfio/7: Permission denied");
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].id, "vfio_group_permission");
    EXPECT_TRUE(has(p[0].remedy, "chown USER /dev/vfio/7")) << lines_of(p[0]);
    auto m = h.explain("qemu-system-x86_64: VFIO_MAP_DMA failed: Cannot allocate memory\n"
                       "qemu-system-x86_64: vfio_dma_map(0x55d1, 0x0, 0x80000000, 0x7f00) = -12 "
                       "(Cannot allocate memory)");
    ASSERT_EQ(m.size(), 1u); // one explanation per kind and device
    EXPECT_EQ(m[0].id, "map_dma_enomem");
    EXPECT_TRUE(has(m[0].remedy, "ulimit -l unlimited")) << lines_of(m[0]);
}

TEST(Explain, BarReserveOnTheBootVgaBlamesTheFramebuffer) {
    ExplainHost h;
    h.inv.devices[1].boot_vga = true;
    auto e = h.explain("[  194.862669] vfio-pci 0000:01:00.0: BAR 3: can't reserve [mem "
                       "0xa0000000-0xa1ffffff 64bit pref]");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].id, "bar_cannot_reserve");
    EXPECT_TRUE(has(e[0].on_this_host, "it is the boot VGA")) << lines_of(e[0]);
    EXPECT_TRUE(has(e[0].remedy, "video=efifb:off")) << lines_of(e[0]);
}

TEST(Explain, BadHostPropertySaysWhatTheValueParsesAs) {
    ExplainHost h;
    auto e = h.explain("qemu-system-x86_64: -device vfio-pci,host=zz:00: Property "
                       "'vfio-pci.host' doesn't take value 'zz:00'");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].id, "bad_host_property");
    ASSERT_FALSE(e[0].on_this_host.empty());
    EXPECT_NE(e[0].on_this_host[0].find("zz:00"), std::string::npos) << lines_of(e[0]);
    e = h.explain("qemu-system-x86_64: -device vfio-pci,host=1:0.0: Property 'vfio-pci.host' "
                  "doesn't take value '1:0.0'");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_TRUE(has(e[0].remedy, "host=DOMAIN:BUS:DEVICE.FUNCTION")) << lines_of(e[0]);
}

// The container: interrupt remapping missing (and not allowed unsafely), or
// the type1 backend not loaded.
TEST(Explain, ContainerAndModelsNameTheMissingPiece) {
    const char* container = "qemu-system-x86_64: -device vfio-pci,host=01:00.0: vfio "
                            "0000:01:00.0: failed to setup container for group 1: Failed to set "
                            "iommu for container: Operation not permitted";
    ExplainHost h;
    h.state.interrupt_remapping = false;
    h.facts.vfio_modules.push_back({"vfio_iommu_type1", true, false, false});
    auto e = h.explain(container);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].id, "container_set_iommu");
    EXPECT_TRUE(has(e[0].on_this_host, "no interrupt remapping and allow_unsafe_interrupts is off"))
        << lines_of(e[0]);
    EXPECT_TRUE(has(e[0].on_this_host, "vfio_iommu_type1 is not loaded")) << lines_of(e[0]);
    h.cmdline.allow_unsafe_interrupts = true;
    e = h.explain(container);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_FALSE(has(e[0].on_this_host, "interrupt remapping")) << lines_of(e[0]);

    auto m = h.explain("qemu-system-x86_64: -device vfio-pci,host=01:00.0: vfio 0000:01:00.0: "
                       "failed to setup container for group 1: No available IOMMU models");
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].id, "no_iommu_models");
    EXPECT_TRUE(has(m[0].on_this_host, "vfio_iommu_type1 is available but not loaded"))
        << lines_of(m[0]);

    ExplainHost off;
    off.iommu_off();
    e = off.explain(container);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_TRUE(has(e[0].on_this_host, "the IOMMU is off: intel_iommu=off")) << lines_of(e[0]);
    EXPECT_TRUE(has(e[0].remedy, "vfioctl iommu enable")) << lines_of(e[0]);
}

TEST(Explain, UnsafeInterruptsSaysWhatThisIommuExposes) {
    const char* line = "[ 1.5] vfio_iommu_type1_attach_group: No interrupt remapping support.  "
                       "Use the module param \"allow_unsafe_interrupts\" to enable VFIO IOMMU "
                       "support on this platform";
    ExplainHost h;
    h.state.interrupt_remapping = false;
    auto e = h.explain(line);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].id, "unsafe_interrupts");
    EXPECT_TRUE(has(e[0].on_this_host, "interrupt remapping here: not supported"))
        << lines_of(e[0]);
    h.state.interrupt_remapping.reset();
    e = h.explain(line);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_TRUE(has(e[0].on_this_host, "interrupt remapping here: not exposed")) << lines_of(e[0]);
}

TEST(Explain, NvidiaMessagesNameHoldersAndOwners) {
    ExplainHost h;
    const char* in_use = "Feb 26 18:22:12 adder kernel: NVRM: Attempting to remove device "
                         "0000:01:00.0 with non-zero usage count!";
    h.facts.holders.push_back({1201, "nvidia-persiste", "/dev/nvidia0"});
    auto e = h.explain(in_use);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].id, "nvrm_in_use");
    EXPECT_TRUE(has(e[0].on_this_host, "pid 1201 (nvidia-persiste) holds /dev/nvidia0"))
        << lines_of(e[0]);

    h.inv.devices[1].driver = "vfio-pci";
    e = h.explain("[ 3.1] NVRM: The NVIDIA probe routine was not called for 1 device(s).");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].id, "nvrm_probe_not_called");
    EXPECT_TRUE(has(e[0].on_this_host, "01:00.0 is on vfio-pci")) << lines_of(e[0]);

    e = h.explain("[   87.473074] NVRM: GPU 0000:01:00.0: RmInitAdapter failed! (0x22:0x56:667)");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].id, "nvrm_init_failed");
    EXPECT_TRUE(has(e[0].remedy, "64-bit MMIO window")) << lines_of(e[0]);
}
