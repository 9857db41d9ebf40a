// The fixture hosts look the way the kernel lays out sysfs: links with the
// right depth, config space that libpci and lspci read back as built.

#include "fixture/fixture.hpp"
#include "host/host.hpp"
#include "host/system.hpp"
#include "pci/device.hpp"
#include "support.hpp"

#include <algorithm>
#include <cstdio>
#include <gtest/gtest.h>
#include <map>

using namespace vfioctl;
using fixture::HostTree;
namespace fs = std::filesystem;

namespace {

// Number of "../" a relative link starts with.
int ups(const std::string& target) {
    int n = 0;
    for (size_t i = 0; target.compare(i, 3, "../") == 0; i += 3)
        ++n;
    return n;
}

// Path components of a host path ("/sys/devices/pci0000:00/X" has 4).
int depth(const std::string& host_path) {
    return static_cast<int>(std::count(host_path.begin(), host_path.end(), '/'));
}

// An ID as the kernel's vendor and device files hold it.
std::string fmt_hex(uint16_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%04x\n", v);
    return buf;
}

} // namespace

TEST(Fixture, EveryLinkIsRelativeWithTheKernelsDepthAndResolvesInsideTheTree) {
    for (const auto& name : test::host_names()) {
        SCOPED_TRACE(name);
        const HostTree& t = test::shared_host(name);
        const fs::path root = fs::canonical(t.root());
        for (const auto& a : t.addresses()) {
            const std::string dev = t.device_path(a);
            const fs::path devdir = root / dev.substr(1);
            // /sys/bus/pci/devices/BDF -> ../../../devices/...
            const std::string bus = fs::read_symlink(t.path("/sys/bus/pci/devices/" + a)).string();
            EXPECT_EQ(bus, "../../../" + dev.substr(5)) << a;
            EXPECT_EQ(fs::canonical(t.path("/sys/bus/pci/devices/" + a)), devdir);
            const auto& spec = t.spec(a);
            if (!spec.driver.empty()) {
                const std::string drv = fs::read_symlink(devdir / "driver").string();
                EXPECT_EQ(ups(drv), depth(dev) - 1) << a << " -> " << drv;
                EXPECT_EQ(drv.substr(3 * ups(drv)), "bus/pci/drivers/" + spec.driver);
                EXPECT_EQ(fs::canonical(devdir / "driver"),
                          root / "sys/bus/pci/drivers" / spec.driver);
                EXPECT_EQ(fs::canonical(root / "sys/bus/pci/drivers" / spec.driver / a), devdir);
            } else {
                EXPECT_FALSE(fs::exists(fs::symlink_status(devdir / "driver")));
            }
            if (auto g = t.group_of(a)) {
                const std::string grp = fs::read_symlink(devdir / "iommu_group").string();
                EXPECT_EQ(ups(grp), depth(dev) - 1) << a << " -> " << grp;
                EXPECT_EQ(grp.substr(3 * ups(grp)), "kernel/iommu_groups/" + std::to_string(*g));
                const fs::path back =
                    root / "sys/kernel/iommu_groups" / std::to_string(*g) / "devices" / a;
                EXPECT_EQ(fs::read_symlink(back).string(), "../../../../" + dev.substr(5));
                EXPECT_EQ(fs::canonical(back), devdir);
            } else {
                EXPECT_FALSE(fs::exists(fs::symlink_status(devdir / "iommu_group")));
            }
        }
    }
}

TEST(Fixture, AttributesAndConfigHeaderAgree) {
    const HostTree& t = test::shared_host("dgx");
    for (const auto& a : t.addresses()) {
        const auto& s = t.spec(a);
        const std::string dev = t.device_path(a);
        EXPECT_EQ(t.read(dev + "/vendor"), fmt_hex(s.vendor));
        std::string cfg = t.read(dev + "/config");
        ASSERT_TRUE(cfg.size() == 256 || cfg.size() == 4096) << a;
        EXPECT_EQ(cfg.size() == 4096, !s.ext_caps.empty()) << a;
        auto u8 = [&](size_t o) {
            return static_cast<unsigned>(static_cast<unsigned char>(cfg[o]));
        };
        EXPECT_EQ(u8(0) | u8(1) << 8, s.vendor) << a;
        EXPECT_EQ(u8(2) | u8(3) << 8, s.device) << a;
        EXPECT_EQ(u8(9) | u8(10) << 8 | u8(11) << 16, s.class_code) << a;
        EXPECT_EQ(u8(0x0e) & 0x7f, fixture::is_bridge(s) ? 1u : 0u) << a;
        EXPECT_EQ((u8(0x0e) & 0x80) != 0, s.multifunction) << a;
        if (fixture::is_bridge(s)) {
            EXPECT_EQ(u8(0x19), s.secondary_bus) << a;
            EXPECT_EQ(u8(0x1a), s.subordinate_bus) << a;
        }
        // One resource line per BAR, ROM and SR-IOV BAR; bridges add windows.
        std::string res = t.read(dev + "/resource");
        EXPECT_EQ(std::count(res.begin(), res.end(), '\n'), fixture::is_bridge(s) ? 17 : 13) << a;
        EXPECT_EQ(t.read(dev + "/driver_override"), "(null)\n");
        EXPECT_EQ(fs::exists(t.path(dev + "/boot_vga")), (s.class_code >> 8) == 0x0300) << a;
    }
}

TEST(Fixture, LibpciReadsBarsCapabilitiesAndTopologyAsBuilt) {
    const HostTree& t = test::shared_host("dgx");
    host::Host h(t.root());
    auto inv = pci::enumerate(h);
    ASSERT_TRUE(inv) << inv.error().describe();
    EXPECT_TRUE(inv->warnings.empty()) << inv->warnings.front();
    ASSERT_EQ(inv->devices.size(), t.addresses().size());
    int gpus = 0;
    for (const auto& d : inv->devices) {
        const auto& s = t.spec(d.addr.str());
        SCOPED_TRACE(d.addr.str());
        EXPECT_EQ(d.vendor, s.vendor);
        EXPECT_EQ(d.device, s.device);
        EXPECT_EQ(d.class_code, s.class_code >> 8);
        EXPECT_EQ(d.driver.value_or(""), s.driver);
        EXPECT_EQ(d.iommu_group, t.group_of(d.addr.str()));
        EXPECT_EQ(d.revision, s.revision);
        EXPECT_EQ(d.subsys_vendor, fixture::is_bridge(s) ? 0 : s.subsys_vendor);
        if (fixture::is_bridge(s)) {
            EXPECT_TRUE(d.bridge);
        }
        // Capabilities and BARs are read for GPUs (what VMs are sized from).
        if (d.is_gpu()) {
            EXPECT_EQ(d.has_acs, std::find(s.ext_caps.begin(), s.ext_caps.end(),
                                           fixture::ExtCap::acs) != s.ext_caps.end());
            EXPECT_EQ(std::find(d.capabilities.begin(), d.capabilities.end(), "PCIe") !=
                          d.capabilities.end(),
                      s.port != fixture::PortType::none);
            EXPECT_EQ(std::find(d.capabilities.begin(), d.capabilities.end(), "MSI-X") !=
                          d.capabilities.end(),
                      s.msix_vectors > 0);
            EXPECT_EQ(std::find(d.capabilities.begin(), d.capabilities.end(), "AER") !=
                          d.capabilities.end(),
                      std::find(s.ext_caps.begin(), s.ext_caps.end(), fixture::ExtCap::aer) !=
                          s.ext_caps.end());
            ASSERT_EQ(d.bars.size(), s.bars.size());
            for (size_t i = 0; i < d.bars.size(); ++i) {
                EXPECT_EQ(d.bars[i].index, s.bars[i].index);
                EXPECT_EQ(d.bars[i].size, s.bars[i].size);
                EXPECT_EQ(d.bars[i].is_64bit, s.bars[i].is_64bit);
                EXPECT_EQ(d.bars[i].prefetchable, s.bars[i].prefetchable);
                EXPECT_EQ(d.bars[i].is_io, s.bars[i].is_io);
            }
            ++gpus;
        }
        if (s.parent.empty()) {
            EXPECT_FALSE(d.parent.has_value());
        } else {
            EXPECT_EQ(d.parent.value_or(pci::PciAddress{}).str(), s.parent);
        }
    }
    EXPECT_EQ(gpus, 9); // eight H100s and the BMC's VGA
}

TEST(Fixture, LspciDecodesTheH100AndItsRootPortAsBuilt) {
    if (test::lspci_path().empty()) GTEST_SKIP() << "lspci is not installed";
    const HostTree& t = test::shared_host("seed_after");
    auto o = fixture::run_program({test::lspci_path(), "-vv", "-nn", "-A", "linux-sysfs", "-O",
                                   "sysfs.path=" + t.root_str() + "/sys/bus/pci", "-s", "88:02.0"});
    EXPECT_NE(o.out.find("Bus: primary=88, secondary=8a, subordinate=8a"), std::string::npos)
        << o.out;
    EXPECT_NE(o.out.find("Express (v2) Root Port (Slot+)"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("Access Control Services"), std::string::npos) << o.out;
    o = fixture::run_program({test::lspci_path(), "-vv", "-nn", "-A", "linux-sysfs", "-O",
                              "sysfs.path=" + t.root_str() + "/sys/bus/pci", "-s",
                              fixture::k_seed_gpu});
    EXPECT_NE(o.out.find("3D controller [0302]"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("(32-bit, non-prefetchable) [size=16M]"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("(64-bit, prefetchable) [size=128G]"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("(64-bit, prefetchable) [size=32M]"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("Express (v2) Endpoint"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("MSI-X: Enable- Count=9"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("Advanced Error Reporting"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("Kernel driver in use: nvidia"), std::string::npos) << o.out;
    EXPECT_EQ(o.out.find("Access Control Services"), std::string::npos) << o.out;
}

TEST(Fixture, HostFactsReadBackThroughTheHostSeam) {
    const HostTree& t = test::shared_host("seed_before_held");
    host::Host h(t.root());
    auto f = host::read_system(h);
    EXPECT_TRUE(f.warnings.empty()) << f.warnings.front();
    EXPECT_EQ(f.kernel_release, t.kernel());
    EXPECT_NE(f.cmdline.find("intel_iommu=off iommu=pt"), std::string::npos);
    EXPECT_EQ(f.cpu.vendor, "GenuineIntel");
    EXPECT_TRUE(f.cpu.vmx);
    EXPECT_TRUE(f.acpi_dmar);
    EXPECT_FALSE(f.acpi_ivrs);
    EXPECT_TRUE(f.iommu_units.empty());
    EXPECT_EQ(f.kernel_intel_iommu_default_on, false);
    EXPECT_TRUE(f.module_list);
    for (const auto& m : f.vfio_modules) {
        EXPECT_TRUE(m.available) << m.name;
        EXPECT_FALSE(m.loaded) << m.name;
    }
    EXPECT_TRUE(f.kvm.usable);
    EXPECT_EQ(f.kvm.backend, "kvm_intel");
    EXPECT_EQ(f.qemu_path, "/usr/bin/qemu-system-x86_64");
    EXPECT_NE(f.qemu_version.value_or("").find("QEMU emulator version"), std::string::npos);
    EXPECT_EQ(f.nvidia_minors.at("/dev/nvidia0"), fixture::k_seed_gpu);
    ASSERT_EQ(f.holders.size(), 2u);
    EXPECT_EQ(f.holders[0].pid, fixture::k_holder_pid);
    EXPECT_EQ(f.holders[0].comm, fixture::k_holder_comm);
    bool root_fs = false, route = false;
    for (const auto& c : f.critical) {
        root_fs |= c.addr.str() == fixture::k_root_nvme &&
                   c.reason().find("root filesystem") != std::string::npos;
        route |= c.addr.str() == fixture::k_host_nic &&
                 c.reason().find("default route via eno1") != std::string::npos;
    }
    EXPECT_TRUE(root_fs);
    EXPECT_TRUE(route);
}

TEST(Fixture, GroupsFollowTheTopology) {
    const HostTree& after = test::shared_host("seed_after");
    EXPECT_GE(after.groups().size(), 150u);
    EXPECT_EQ(after.groups().at(*after.group_of(fixture::k_seed_gpu)),
              std::vector<std::string>{fixture::k_seed_gpu});
    const HostTree& before = test::shared_host("seed_before");
    EXPECT_TRUE(before.groups().empty());
    EXPECT_TRUE(fs::is_directory(before.path("/sys/kernel/iommu_groups")));
    const HostTree& dgx = test::shared_host("dgx");
    EXPECT_GE(dgx.addresses().size(), 300u);
    int gpus = 0;
    for (const auto& a : dgx.addresses()) {
        const auto& s = dgx.spec(a);
        if (s.vendor == 0x10de && (s.class_code >> 16) == 0x03) {
            ++gpus;
            EXPECT_EQ(dgx.groups().at(*dgx.group_of(a)).size(), 1u) << a;
        }
    }
    EXPECT_EQ(gpus, 8);
    const HostTree& amd = test::shared_host("amd");
    EXPECT_EQ(amd.group_of(fixture::k_amd_gpu), amd.group_of(fixture::k_amd_audio));
    EXPECT_FALSE(amd.group_of("0000:00:00.2").has_value()); // the AMD IOMMU itself
}

TEST(Fixture, SyntheticHostHasOneGroupPerFunction) {
    HostTree t = fixture::synthetic_host(200);
    EXPECT_EQ(t.addresses().size(), 200u);
    EXPECT_EQ(t.groups().size(), 200u);
    auto o = test::run_on(t, {"status", "--json"});
    auto j = test::json_of(o);
    EXPECT_EQ(o.exit_code, 0) << o.err;
    EXPECT_EQ(j["gpus"].size(), 25u);
    EXPECT_EQ(j["iommu"]["group_count"], 200);
}

TEST(Fixture, TreeIsRemovedOnDestructionButNotWhenMovedFrom) {
    fs::path where;
    {
        HostTree a;
        a.write("/proc/cmdline", "ro\n");
        where = a.root();
        HostTree b = std::move(a);
        EXPECT_TRUE(fs::exists(where / "proc/cmdline"));
        EXPECT_EQ(b.root(), where);
    }
    EXPECT_FALSE(fs::exists(where));
}

TEST(Fixture, VirtioGuestDiskAndNicAreFoundThroughTheirVirtioDevices) {
    // Laid out like a QEMU guest: virtio block at 00:02.0, virtio net at 00:03.0.
    HostTree t;
    t.set_kernel("6.1.0-27-amd64");
    t.set_cmdline("console=ttyS0 root=/dev/vda ro");
    auto virtio = [](const char* addr, uint16_t device, uint32_t cls) {
        fixture::DeviceSpec d;
        d.addr = addr;
        d.vendor = 0x1af4;
        d.device = device;
        d.subsys_vendor = 0x1af4;
        d.subsys_device = device;
        d.class_code = cls;
        d.revision = 0x01;
        d.port = fixture::PortType::none;
        d.bars = {{4, 16 * 1024, true, true, false}};
        d.msix_vectors = 4;
        d.driver = "virtio-pci";
        return d;
    };
    t.add_device(virtio("0000:00:02.0", 0x1042, 0x018000));
    t.add_device(virtio("0000:00:03.0", 0x1041, 0x020000));
    t.mount(t.add_virtio_disk("0000:00:02.0", 1, "vda"), "/");
    t.add_interface("0000:00:03.0", "eth0", true, true, 2);
    EXPECT_EQ(fs::read_symlink(t.path("/sys/class/net/eth0/device")).string(), "../../../virtio2");
    EXPECT_EQ(fs::read_symlink(t.path("/sys/dev/block/254:0")).string(),
              "../../devices/pci0000:00/0000:00:02.0/virtio1/block/vda");

    auto f = host::read_system(host::Host(t.root()));
    std::map<std::string, std::string> critical;
    for (const auto& c : f.critical)
        critical[c.addr.str()] += c.reason();
    EXPECT_EQ(critical["0000:00:02.0"], "root filesystem (/dev/vda)");
    EXPECT_EQ(critical["0000:00:03.0"], "default route via eth0");
    EXPECT_EQ(critical.size(), 2u);
}
