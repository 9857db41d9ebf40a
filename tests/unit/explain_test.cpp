// 'vfioctl explain' on its own: every message it knows, found anywhere in a
// line and in any letter case, with the address or group it names; and
// lines of any length (issue #11: one 30 KB line overflowed the stack of the
// std::regex matcher this replaced).

#include "boot/cmdline.hpp"
#include "iommu/explain.hpp"

#include <gtest/gtest.h>

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
