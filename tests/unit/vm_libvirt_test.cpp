// 'vfioctl vm export': the libvirt domain XML as a pure function
// (vm::libvirt_domain), then the command in process on the seed and DGX
// fixtures, which resolves devices, placement and firmware as 'vm start'
// does and binds nothing. tests/formats runs virt-xml-validate on the
// real binary's output.

#include "cli_run.hpp"
#include "fake_kernel.hpp"
#include "vm/libvirt.hpp"

#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

using namespace vfioctl;
using fake::FakeKernel;
using fixture::HostTree;
using nlohmann::json;
using test::contains;
using test::run_cli;

namespace {

constexpr uint64_t GiB = 1ull << 30;

vm::PassFunction function(unsigned bus, unsigned dev, unsigned fn, uint64_t bar = 0) {
    vm::PassFunction f;
    f.host.bus = static_cast<uint8_t>(bus);
    f.host.dev = static_cast<uint8_t>(dev);
    f.host.fn = static_cast<uint8_t>(fn);
    f.vendor = 0x10de;
    f.device = 0x2336;
    if (bar) f.bars.push_back({1, bar, true, true, false});
    return f;
}

vm::Profile kernel_profile() {
    vm::Profile p;
    p.name = "dev";
    p.memory_mib = 4096;
    p.cpus = 4;
    p.boot.kernel = "/boot/vmlinuz";
    return p;
}

// Every <hostdev>...</hostdev> in xml, in order.
std::vector<std::string> blocks(const std::string& xml, const std::string& tag) {
    std::vector<std::string> out;
    const std::string open = "<" + tag, close = "</" + tag + ">";
    for (size_t at = xml.find(open); at != std::string::npos; at = xml.find(open, at + 1)) {
        const size_t end = xml.find(close, at);
        if (end == std::string::npos) break;
        out.push_back(xml.substr(at, end + close.size() - at));
    }
    return out;
}

size_t count(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++n;
    return n;
}

// The hostdev block vm export writes for host address bus:dev.fn placed
// at function fn_guest of the guest's bus.
std::string hostdev(unsigned bus, unsigned dev, unsigned fn, unsigned guest_bus, unsigned guest_fn,
                    bool multifunction) {
    return fmt::format("<hostdev mode='subsystem' type='pci' managed='yes'>\n"
                       "      <driver name='vfio'/>\n"
                       "      <source>\n"
                       "        <address domain='0x0000' bus='0x{:02x}' slot='0x{:02x}' "
                       "function='0x{:x}'/>\n"
                       "      </source>\n"
                       "      <address type='pci' domain='0x0000' bus='0x{:02x}' slot='0x00' "
                       "function='0x{:x}'{}/>\n"
                       "    </hostdev>",
                       bus, dev, fn, guest_bus, guest_fn,
                       multifunction ? " multifunction='on'" : "");
}

std::string root_port(unsigned index) {
    return fmt::format("<controller type='pci' index='{}' model='pcie-root-port'>\n"
                       "      <model name='pcie-root-port'/>\n"
                       "      <target chassis='{}'/>\n"
                       "      <address type='pci' domain='0x0000' bus='0x00' slot='0x{:02x}' "
                       "function='0x0'/>\n"
                       "    </controller>",
                       index, index, 0x10 + index - 1);
}

} // namespace

TEST(VmLibvirt, EscapesEveryStringForXml) {
    EXPECT_EQ(vm::xml_escape("a<b>&'\"z"), "a&lt;b&gt;&amp;&apos;&quot;z");
    EXPECT_EQ(vm::xml_escape("x\ty\nz"), "x&#9;y&#10;z");
    // XML 1.0 cannot carry other control characters at all.
    EXPECT_EQ(vm::xml_escape(std::string("a\x01") + "b"), "a\xef\xbf\xbd"
                                                          "b");
    EXPECT_EQ(vm::xml_escape("/boot/vmlinuz-6.1"), "/boot/vmlinuz-6.1");
}

TEST(VmLibvirt, KeepsTheFunctionsOfASlotTogetherBehindItsOwnRootPort) {
    vm::LibvirtSpec s;
    s.kvm = true;
    s.slots = {vm::PassSlot{{function(0x01, 0, 0), function(0x01, 0, 1)}},
               vm::PassSlot{{function(0x02, 0, 0)}}};
    const auto d = vm::libvirt_domain(kernel_profile(), s);
    EXPECT_EQ(
        blocks(d.xml, "hostdev"),
        (std::vector<std::string>{hostdev(0x01, 0, 0, 1, 0, true), hostdev(0x01, 0, 1, 1, 1, false),
                                  hostdev(0x02, 0, 0, 2, 0, false)}))
        << d.xml;
    EXPECT_TRUE(contains(d.xml, root_port(1))) << d.xml;
    EXPECT_TRUE(contains(d.xml, root_port(2))) << d.xml;
    EXPECT_EQ(count(d.xml, "model='pcie-root-port'"), 2u) << d.xml;
    EXPECT_TRUE(contains(d.xml, "<controller type='pci' index='0' model='pcie-root'/>")) << d.xml;
    // libvirt adds a USB controller (and a root port for it) unless told not to.
    EXPECT_TRUE(contains(d.xml, "<controller type='usb' index='0' model='none'/>")) << d.xml;
    EXPECT_TRUE(contains(d.xml, "<domain type='kvm'>\n")) << d.xml;
    EXPECT_TRUE(contains(d.xml, "<cpu mode='host-passthrough' check='none'/>")) << d.xml;
    EXPECT_TRUE(contains(d.xml, "<memory unit='KiB'>4194304</memory>")) << d.xml;
    EXPECT_TRUE(contains(d.xml, "<currentMemory unit='KiB'>4194304</currentMemory>")) << d.xml;
    EXPECT_TRUE(contains(d.xml, "<vcpu placement='static'>4</vcpu>")) << d.xml;
    EXPECT_TRUE(contains(d.xml, "<type arch='x86_64' machine='q35'>hvm</type>")) << d.xml;
    EXPECT_TRUE(contains(d.xml, "<kernel>/boot/vmlinuz</kernel>")) << d.xml;
    // No window beyond QEMU's own, no QEMU arguments, nothing to warn about.
    EXPECT_FALSE(contains(d.xml, "pcihole64")) << d.xml;
    EXPECT_FALSE(contains(d.xml, "qemu:")) << d.xml;
    EXPECT_TRUE(d.warnings.empty());
}

TEST(VmLibvirt, SizesTheHoleAndFirmwareApertureAsVmStartDoes) {
    vm::Profile p = kernel_profile();
    p.firmware.kind = vm::Firmware::uefi;
    vm::LibvirtSpec s;
    s.kvm = false;
    s.ovmf = {"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"};
    // 2 x 128 GiB: a 512 GiB window (twice the next power of two).
    s.slots = {vm::PassSlot{{function(0x18, 0, 0, 128 * GiB)}},
               vm::PassSlot{{function(0x19, 0, 0, 128 * GiB)}}};
    const auto mmio = vm::plan_mmio(s.slots, p.memory_mib);
    ASSERT_EQ(mmio.hole64_bytes, 512 * GiB);
    const auto d = vm::libvirt_domain(p, s);
    EXPECT_TRUE(contains(d.xml, "<controller type='pci' index='0' model='pcie-root'>\n"
                                "      <pcihole64 unit='KiB'>536870912</pcihole64>\n"
                                "    </controller>"))
        << d.xml;
    EXPECT_TRUE(contains(d.xml, "<domain type='qemu' xmlns:qemu='"
                                "http://libvirt.org/schemas/domain/qemu/1.0'>"))
        << d.xml;
    EXPECT_TRUE(contains(d.xml, "<cpu mode='maximum' check='none'>\n"
                                "    <maxphysaddr mode='emulate' bits='" +
                                    std::to_string(mmio.phys_bits) + "'/>"))
        << d.xml;
    EXPECT_TRUE(contains(d.xml, "<loader readonly='yes' type='pflash'>"
                                "/usr/share/OVMF/OVMF_CODE_4M.fd</loader>\n"
                                "    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'/>"))
        << d.xml;
    EXPECT_TRUE(contains(d.xml,
                         "<qemu:arg value='-fw_cfg'/>\n"
                         "    <qemu:arg value='name=opt/ovmf/X-PciMmio64Mb,string=524288'/>"))
        << d.xml;
    // Derived from the BARs, not lost: no warning for it.
    EXPECT_TRUE(d.warnings.empty());
}

TEST(VmLibvirt, PassesExtraArgsAsQemuCommandlineEscapedAndWarns) {
    vm::Profile p = kernel_profile();
    p.extra_args = {"-device", "pvpanic,id=p'<&>\""};
    p.boot.append = "console=ttyS0 x=\"a&b\"";
    p.ssh_port = 2222;
    const auto d = vm::libvirt_domain(p, vm::LibvirtSpec{});
    EXPECT_TRUE(contains(d.xml, "<qemu:commandline>\n"
                                "    <qemu:arg value='-device'/>\n"
                                "    <qemu:arg value='pvpanic,id=p&apos;&lt;&amp;&gt;&quot;'/>\n"
                                "  </qemu:commandline>\n</domain>\n"))
        << d.xml;
    EXPECT_TRUE(contains(d.xml, "<cmdline>console=ttyS0 x=&quot;a&amp;b&quot;</cmdline>")) << d.xml;
    ASSERT_EQ(d.warnings.size(), 2u);
    EXPECT_TRUE(contains(d.warnings[0], "extra_args have no libvirt form")) << d.warnings[0];
    EXPECT_TRUE(contains(d.warnings[0], "-device pvpanic")) << d.warnings[0];
    EXPECT_TRUE(contains(d.warnings[1], "ssh_port 2222 is not forwarded")) << d.warnings[1];
}

TEST(VmLibvirt, CommentsNeverCarryADoubleHyphen) {
    vm::LibvirtSpec s;
    s.notes = {"placed by --numa-- -", "a <b> & c", "ends in -->"};
    const auto d = vm::libvirt_domain(kernel_profile(), s);
    for (size_t at = d.xml.find("<!--"); at != std::string::npos; at = d.xml.find("<!--", at + 1)) {
        const size_t end = d.xml.find("-->", at + 4);
        ASSERT_NE(end, std::string::npos) << d.xml;
        const std::string body = d.xml.substr(at + 4, end - at - 4);
        EXPECT_FALSE(contains(body, "--")) << body;
        EXPECT_NE(body.back(), '-') << body;
    }
    EXPECT_TRUE(contains(d.xml, "<!-- placed by - -numa- - -  -->")) << d.xml;
    // Markup means nothing in a comment: it stays as written.
    EXPECT_TRUE(contains(d.xml, "<!-- a <b> & c -->")) << d.xml;
}

TEST(VmLibvirt, BootsADiskAndSharesRootOver9p) {
    vm::Profile p = kernel_profile();
    p.boot.kernel.clear();
    p.boot.disk = "/var/lib/images/dev.qcow2";
    p.share_host_root = true;
    p.console_log = "/var/log/dev.log";
    const auto d = vm::libvirt_domain(p, vm::LibvirtSpec{});
    EXPECT_TRUE(contains(d.xml, "<boot dev='hd'/>")) << d.xml;
    EXPECT_FALSE(contains(d.xml, "<kernel>")) << d.xml;
    EXPECT_TRUE(contains(d.xml, "<driver name='qemu' type='qcow2'/>\n"
                                "      <source file='/var/lib/images/dev.qcow2'/>\n"
                                "      <target dev='vda' bus='virtio'/>"))
        << d.xml;
    EXPECT_TRUE(contains(d.xml, "<source dir='/'/>\n"
                                "      <target dir='hostroot'/>\n"
                                "      <readonly/>"))
        << d.xml;
    EXPECT_TRUE(contains(d.xml, "<log file='/var/log/dev.log' append='on'/>")) << d.xml;
    EXPECT_TRUE(contains(d.xml, "<console type='pty'>")) << d.xml;
}

TEST(VmLibvirt, PlacesMemoryAndVcpusAsThePlanSays) {
    vm::LibvirtSpec s;
    s.placement.backend = vm::MemoryBackend::file;
    s.placement.node = 1;
    s.placement.page_kib = 2048;
    s.placement.mem_path = "/dev/hugepages";
    s.placement.pin_cpus = {56, 57, 58, 59};
    const auto d = vm::libvirt_domain(kernel_profile(), s);
    EXPECT_TRUE(contains(d.xml, "<hugepages>\n      <page size='2048' unit='KiB'/>\n"
                                "    </hugepages>"))
        << d.xml;
    EXPECT_TRUE(contains(d.xml, "<numatune>\n    <memory mode='strict' nodeset='1'/>\n"
                                "  </numatune>"))
        << d.xml;
    EXPECT_TRUE(contains(d.xml, "<vcpu placement='static' cpuset='56-59'>4</vcpu>")) << d.xml;

    // A plain plan: none of them.
    const auto plain = vm::libvirt_domain(kernel_profile(), vm::LibvirtSpec{});
    EXPECT_FALSE(contains(plain.xml, "memoryBacking")) << plain.xml;
    EXPECT_FALSE(contains(plain.xml, "numatune")) << plain.xml;
    EXPECT_FALSE(contains(plain.xml, "cpuset")) << plain.xml;
}

namespace {

struct CliVmExport : ::testing::Test {
    fixture::TempDir run_base;
    services::Paths paths = test::test_paths(run_base);

    // A profile at /etc/vfioctl/vms/NAME.toml of t, with a kernel to boot.
    static void profile(HostTree& t, const std::string& name, const std::string& keys) {
        t.write("/boot/vmlinuz-test", "kernel");
        t.write("/etc/vfioctl/vms/" + name + ".toml",
                keys + "\n[boot]\nkernel = \"/boot/vmlinuz-test\"\nappend = \"console=ttyS0\"\n");
    }
};

} // namespace

TEST_F(CliVmExport, SeedGpuWithUefiBindsNothing) {
    HostTree t = fixture::seed_after();
    t.write("/usr/share/OVMF/OVMF_CODE_4M.fd", "code");
    t.write("/usr/share/OVMF/OVMF_VARS_4M.fd", "vars");
    profile(t, "seed",
            "memory = \"4G\"\ncpus = 4\naccel = \"kvm\"\nfirmware = \"uefi\"\n"
            "gpus = [\"8a:00.0\"]");
    FakeKernel k(t);
    auto r = run_cli(k, {"vm", "export", "seed"}, paths);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(blocks(r.out, "hostdev"),
              (std::vector<std::string>{hostdev(0x8a, 0, 0, 1, 0, false)}))
        << r.out;
    EXPECT_TRUE(contains(r.out, root_port(1))) << r.out;
    EXPECT_EQ(count(r.out, "model='pcie-root-port'"), 1u) << r.out;
    // OVMF's aperture needs a QEMU argument, hence the namespace.
    EXPECT_TRUE(contains(r.out, "<domain type='kvm' xmlns:qemu=")) << r.out;
    EXPECT_TRUE(contains(r.out, "<name>seed</name>")) << r.out;
    EXPECT_TRUE(contains(r.out, "<memory unit='KiB'>4194304</memory>")) << r.out;
    EXPECT_TRUE(contains(r.out, "<vcpu placement='static'>4</vcpu>")) << r.out;
    // 128 GiB + 32 MiB of 64-bit BARs: a 512 GiB window, the host's phys bits.
    EXPECT_TRUE(contains(r.out, "<pcihole64 unit='KiB'>536870912</pcihole64>")) << r.out;
    EXPECT_TRUE(contains(r.out, "<maxphysaddr mode='passthrough'/>")) << r.out;
    EXPECT_TRUE(contains(r.out, "<loader readonly='yes' type='pflash'>"
                                "/usr/share/OVMF/OVMF_CODE_4M.fd</loader>"))
        << r.out;
    EXPECT_TRUE(contains(r.out, "<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'/>")) << r.out;
    EXPECT_TRUE(contains(r.out, "string=524288'/>")) << r.out; // OVMF's aperture in MiB
    EXPECT_TRUE(contains(r.out, "<kernel>/boot/vmlinuz-test</kernel>")) << r.out;
    EXPECT_TRUE(contains(r.out, "<cmdline>console=ttyS0</cmdline>")) << r.out;
    EXPECT_TRUE(contains(r.out, "<emulator>/usr/bin/qemu-system-x86_64</emulator>")) << r.out;
    // Nothing bound, no variable store written, no run directory.
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
    EXPECT_TRUE(k.writes().empty()) << k.writes().front();
    EXPECT_FALSE(std::filesystem::exists(t.root() / "var/lib/vfioctl/vms/seed"));
    EXPECT_TRUE(std::filesystem::is_empty(paths.run_base));

    auto j = run_cli(k, {"--json", "vm", "export", "seed"}, paths);
    ASSERT_EQ(j.exit_code, 0) << j.err;
    EXPECT_EQ(j.json()["xml"], r.out) << j.out;
    EXPECT_EQ(j.json()["devices"], json::array({"0000:8a:00.0"})) << j.out;
    EXPECT_EQ(j.json()["warnings"], json::array()) << j.out;
    EXPECT_EQ(j.json()["output"], nullptr) << j.out;
}

TEST_F(CliVmExport, OutputFileHoldsTheXmlAndExtraArgsWarn) {
    HostTree t = fixture::seed_after();
    profile(t, "extra",
            "accel = \"tcg\"\nextra_args = [\"-device\", \"pvpanic\"]\ngpus = [\"8a:00.0\"]");
    FakeKernel k(t);
    auto printed = run_cli(k, {"vm", "export", "extra"}, paths);
    ASSERT_EQ(printed.exit_code, 0) << printed.err;
    EXPECT_TRUE(contains(printed.out, "<domain type='qemu' xmlns:qemu=")) << printed.out;
    EXPECT_TRUE(contains(printed.out, "<qemu:arg value='pvpanic'/>")) << printed.out;
    EXPECT_TRUE(contains(printed.err, "vfioctl: warning: extra_args have no libvirt form; passed "
                                      "as <qemu:commandline>: -device pvpanic\n"))
        << printed.err;

    const std::string file = run_base.path.string() + "/extra.xml";
    auto r = run_cli(k, {"vm", "export", "extra", "--output", file}, paths);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "written to " + file)) << r.out;
    std::ifstream in(file);
    std::stringstream got;
    got << in.rdbuf();
    EXPECT_EQ(got.str(), printed.out);
}

TEST_F(CliVmExport, DgxAllGpusAndNvswitchesEachOnTheirOwnRootPort) {
    HostTree t = fixture::dgx_host();
    profile(t, "fabric", "memory = \"64G\"\ncpus = 32\ngpus = [\"all-gpus\", \"nvswitches\"]");
    FakeKernel k(t);
    auto r = run_cli(k, {"vm", "export", "fabric"}, paths);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // Eight H100s behind the four PCIe switches, then the four NVSwitches,
    // in address order: slot i on root port i+1 (guest bus i+1).
    const std::vector<unsigned> buses = {0x18, 0x19, 0x3a, 0x3b, 0x9a, 0x9b,
                                         0xba, 0xbb, 0xda, 0xdb, 0xdc, 0xdd};
    std::vector<std::string> want;
    for (size_t i = 0; i < buses.size(); ++i)
        want.push_back(hostdev(buses[i], 0, 0, static_cast<unsigned>(i + 1), 0, false));
    EXPECT_EQ(blocks(r.out, "hostdev"), want) << r.out;
    for (unsigned i = 1; i <= buses.size(); ++i)
        EXPECT_TRUE(contains(r.out, root_port(i))) << i;
    EXPECT_EQ(count(r.out, "model='pcie-root-port'"), buses.size()) << r.out;
    // 8 x (128 GiB + 32 MiB) + 4 x 32 MiB: a 4 TiB window.
    EXPECT_TRUE(contains(r.out, "<pcihole64 unit='KiB'>4294967296</pcihole64>")) << r.out;
    EXPECT_TRUE(contains(r.out, "<memory unit='KiB'>67108864</memory>")) << r.out;
    // The devices sit on both nodes: "auto" binds nothing, and says so.
    EXPECT_FALSE(contains(r.out, "numatune")) << r.out;
    EXPECT_FALSE(contains(r.out, "memoryBacking")) << r.out;
    EXPECT_TRUE(contains(r.out, "<!-- numa = \"auto\", hugepages = \"auto\": ")) << r.out;
    EXPECT_TRUE(k.writes().empty()) << k.writes().front();
}

TEST_F(CliVmExport, DgxNodeOneGpusGetTheNodeHugePagesAndCpus) {
    HostTree t = fixture::dgx_host();
    profile(t, "node1", "memory = \"4G\"\ngpus = [\"9b:00.0\", \"ba:00.0\"]");
    profile(t, "twomeg", "memory = \"4G\"\nnuma = \"1\"\nhugepages = \"2M\"\ngpus = [\"9b:00.0\"]");
    FakeKernel k(t);
    auto r = run_cli(k, {"vm", "export", "node1"}, paths);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // auto: node 1 of the GPUs, its free 1 GiB pages, its CPUs.
    EXPECT_TRUE(contains(r.out, "<numatune>\n    <memory mode='strict' nodeset='1'/>")) << r.out;
    EXPECT_TRUE(contains(r.out, "<page size='1048576' unit='KiB'/>")) << r.out;
    EXPECT_TRUE(contains(r.out, "<vcpu placement='static' cpuset='56-111,168-223'>2</vcpu>"))
        << r.out;
    EXPECT_EQ(blocks(r.out, "hostdev"),
              (std::vector<std::string>{hostdev(0x9b, 0, 0, 1, 0, false),
                                        hostdev(0xba, 0, 0, 2, 0, false)}))
        << r.out;

    auto two = run_cli(k, {"vm", "export", "twomeg"}, paths);
    ASSERT_EQ(two.exit_code, 0) << two.err;
    EXPECT_TRUE(contains(two.out, "<page size='2048' unit='KiB'/>")) << two.out;
    EXPECT_TRUE(contains(two.out, "<memory mode='strict' nodeset='1'/>")) << two.out;
}

TEST_F(CliVmExport, RefusesAsVmStartDoes) {
    HostTree t = fixture::seed_after();
    profile(t, "ghost", "gpus = [\"ff:1f.7\"]");
    profile(t, "nonode", "numa = \"7\"");
    FakeKernel k(t);
    auto unknown = run_cli(k, {"vm", "export", "nosuch"}, paths);
    EXPECT_EQ(unknown.exit_code, 1) << unknown.err;
    EXPECT_TRUE(contains(unknown.err, "vfioctl: error: no profile 'nosuch'")) << unknown.err;
    EXPECT_EQ(unknown.out, "");

    auto ghost = run_cli(k, {"vm", "export", "ghost"}, paths);
    EXPECT_EQ(ghost.exit_code, 1) << ghost.err;
    EXPECT_TRUE(contains(ghost.err, "ff:1f.7")) << ghost.err;
    EXPECT_EQ(ghost.out, "");

    auto nonode = run_cli(k, {"vm", "export", "nonode"}, paths);
    EXPECT_EQ(nonode.exit_code, 1) << nonode.err;
    EXPECT_EQ(nonode.out, "");

    auto badname = run_cli(k, {"vm", "export", "bad:name"}, paths);
    EXPECT_EQ(badname.exit_code, 2) << badname.err;

    // IOMMU off: the 'status' verdict, exit 3, as vm start.
    HostTree off = fixture::seed_before();
    profile(off, "gpu", "gpus = [\"8a:00.0\"]");
    FakeKernel ko(off);
    auto wont = run_cli(ko, {"vm", "export", "gpu"}, paths);
    EXPECT_EQ(wont.exit_code, 3) << wont.err;
    EXPECT_TRUE(contains(wont.err, "vfioctl: error: passthrough of 0000:8a:00.0 ")) << wont.err;
    EXPECT_EQ(wont.out, "");
    EXPECT_TRUE(k.writes().empty());
    EXPECT_TRUE(ko.writes().empty());
}
