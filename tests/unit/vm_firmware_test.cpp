// The guest's firmware: the profile keys, finding OVMF, the per-VM
// variable store, the pflash and fw_cfg arguments and OVMF's aperture for
// large BARs. Booting real guests under both firmwares is tests/firmware.

#include "fixture/fixture.hpp"
#include "vm/argv.hpp"
#include "vm/firmware.hpp"
#include "vm/profile.hpp"

#include <algorithm>
#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace vfioctl;

namespace {

constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;

bool has_pair(const std::vector<std::string>& a, const std::string& opt, const std::string& v) {
    for (size_t i = 0; i + 1 < a.size(); ++i)
        if (a[i] == opt && a[i + 1] == v) return true;
    return false;
}

bool mentions(const std::vector<std::string>& a, const std::string& needle) {
    return std::any_of(a.begin(), a.end(),
                       [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

// One slot with one 64-bit prefetchable BAR of size bytes (and 16 MiB of registers).
vm::PassSlot slot_with_bar(uint64_t size) {
    return {{{*pci::PciAddress::parse("8a:00.0"),
              0x10de,
              0x2336,
              0x0302,
              {{0, 16 * MiB, false, false, false}, {1, size, true, true, false}},
              "vfio-pci"}}};
}

// A host tree with the ovmf package's 4 MiB images.
fixture::HostTree with_ovmf() {
    fixture::HostTree t;
    t.write("/usr/share/OVMF/OVMF_CODE_4M.fd", "code");
    t.write("/usr/share/OVMF/OVMF_VARS_4M.fd", "vars template");
    return t;
}

vm::FirmwareConfig uefi() {
    vm::FirmwareConfig c;
    c.kind = vm::Firmware::uefi;
    return c;
}

} // namespace

TEST(VmFirmware, ProfileDefaultsToBiosAndReadsTheKeys) {
    auto p = vm::parse_profile("memory = 1024\n", "p.toml", "p");
    ASSERT_TRUE(p) << p.error().describe();
    EXPECT_EQ(p->firmware.kind, vm::Firmware::bios);
    p = vm::parse_profile(
        "firmware = \"uefi\"\novmf_code = \"/opt/c.fd\"\novmf_vars = \"/opt/v.fd\"\n", "p.toml",
        "p");
    ASSERT_TRUE(p) << p.error().describe();
    EXPECT_EQ(p->firmware.kind, vm::Firmware::uefi);
    EXPECT_EQ(p->firmware.ovmf_code, "/opt/c.fd");
    EXPECT_EQ(p->firmware.ovmf_vars, "/opt/v.fd");
    p = vm::parse_profile("firmware = \"bios\"\n", "p.toml", "p");
    ASSERT_TRUE(p) << p.error().describe();
    EXPECT_EQ(p->firmware.kind, vm::Firmware::bios);
}

TEST(VmFirmware, BadFirmwareValueIsAnErrorWithTheLine) {
    auto p = vm::parse_profile("memory = 1024\nfirmware = \"efi\"\n", "p.toml", "p");
    ASSERT_FALSE(p);
    EXPECT_NE(p.error().message.find("p.toml:2:"), std::string::npos) << p.error().message;
    EXPECT_NE(p.error().message.find("bad firmware 'efi'"), std::string::npos);
    EXPECT_NE(p.error().message.find("bios"), std::string::npos);
    EXPECT_NE(p.error().message.find("uefi"), std::string::npos);
    p = vm::parse_profile("firmware = 1\n", "p.toml", "p");
    ASSERT_FALSE(p);
    EXPECT_NE(p.error().message.find("must be a string"), std::string::npos);
    p = vm::parse_profile("ovmf_code = true\n", "p.toml", "p");
    ASSERT_FALSE(p);
    EXPECT_NE(p.error().message.find("'ovmf_code' must be a string"), std::string::npos);
}

TEST(VmFirmware, BiosArgvHasNoFirmwareArguments) {
    vm::Profile p;
    vm::LaunchSpec spec;
    spec.slots = {slot_with_bar(128 * GiB)};
    const auto a = vm::qemu_argv(p, spec);
    EXPECT_FALSE(mentions(a, "pflash"));
    EXPECT_FALSE(mentions(a, "X-PciMmio64Mb"));
    EXPECT_TRUE(mentions(a, "q35-pcihost.pci-hole64-size=256G"));
}

TEST(VmFirmware, UefiArgvHasBothPflashDrives) {
    vm::Profile p;
    vm::LaunchSpec spec;
    spec.firmware = {vm::Firmware::uefi, "/usr/share/OVMF/OVMF_CODE_4M.fd",
                     "/var/lib/vfioctl/vms/dev,1/OVMF_VARS.fd", true};
    const auto a = vm::qemu_argv(p, spec);
    EXPECT_TRUE(
        has_pair(a, "-drive",
                 "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd"));
    // A comma in a path is doubled, as QEMU's option syntax wants.
    EXPECT_TRUE(has_pair(
        a, "-drive", "if=pflash,format=raw,unit=1,file=/var/lib/vfioctl/vms/dev,,1/OVMF_VARS.fd"));
    // No large BAR: OVMF's own aperture is enough, and nothing asks for more.
    EXPECT_FALSE(mentions(a, "X-PciMmio64Mb"));
}

TEST(VmFirmware, ApertureFromA128GiBBar) {
    vm::Profile p;
    p.memory_mib = 16384;
    vm::LaunchSpec spec;
    spec.slots = {slot_with_bar(128 * GiB)};
    spec.firmware = {vm::Firmware::uefi, "/c.fd", "/v.fd", true};
    const auto a = vm::qemu_argv(p, spec);
    // One 128 GiB 64-bit BAR (the 16 MiB one is 32-bit): a 256 GiB window,
    // for QEMU and for OVMF.
    EXPECT_TRUE(has_pair(a, "-global", "q35-pcihost.pci-hole64-size=256G"));
    EXPECT_TRUE(has_pair(a, "-fw_cfg", "name=opt/ovmf/X-PciMmio64Mb,string=262144"));
    EXPECT_EQ(vm::ovmf_aperture_mib(vm::plan_mmio(spec.slots, p.memory_mib)), 262144u);
    // OVMF puts it at 256 GiB (its size, above 18 GiB of RAM): 40 bits reach 512 GiB.
    EXPECT_TRUE(has_pair(a, "-cpu", "max,phys-bits=40"));
    // Without sizing (tests only): OVMF's default, and the same QEMU window.
    spec.firmware.size_aperture = false;
    const auto d = vm::qemu_argv(p, spec);
    EXPECT_FALSE(mentions(d, "X-PciMmio64Mb"));
    EXPECT_TRUE(has_pair(d, "-global", "q35-pcihost.pci-hole64-size=256G"));
}

TEST(VmFirmware, ApertureOnlyAboveOvmfsDefault) {
    auto mib = [](uint64_t bar) {
        return vm::ovmf_aperture_mib(vm::plan_mmio({slot_with_bar(bar)}, 2048));
    };
    EXPECT_EQ(vm::ovmf_aperture_mib(vm::MmioPlan{}), 0u);
    // A 16 GiB BAR: a 32 GiB window, OVMF's own default (the 16 MiB BAR is 32-bit).
    EXPECT_EQ(mib(8 * GiB), 0u);
    EXPECT_EQ(mib(16 * GiB), 0u);
    EXPECT_EQ(mib(32 * GiB), 65536u);
    EXPECT_EQ(mib(256 * GiB), 524288u);
}

TEST(VmFirmware, OvmfAlignedApertureNeedsNoMoreBitsThanPlanned) {
    // 1 TiB of RAM: the first free address is 1 TiB + 2 GiB; OVMF aligns a
    // 512 GiB aperture to 1.5 TiB and ends at 2 TiB, which the planned 41
    // bits reach.
    const vm::MmioPlan m = vm::plan_mmio({slot_with_bar(256 * GiB)}, uint64_t{1024} * 1024);
    const auto a = vm::firmware_argv({vm::Firmware::uefi, "/c.fd", "/v.fd", true}, m);
    EXPECT_TRUE(has_pair(a, "-fw_cfg", "name=opt/ovmf/X-PciMmio64Mb,string=524288"));
    EXPECT_EQ(m.phys_bits, 41);
}

TEST(VmFirmware, FindsThe4MImagesThenThe2MOnes) {
    auto t = with_ovmf();
    const host::Host h(t.root());
    auto f = vm::find_ovmf(h, uefi());
    ASSERT_TRUE(f) << f.error().describe();
    EXPECT_EQ(f->code, "/usr/share/OVMF/OVMF_CODE_4M.fd");
    EXPECT_EQ(f->vars_template, "/usr/share/OVMF/OVMF_VARS_4M.fd");

    fixture::HostTree old;
    old.write("/usr/share/OVMF/OVMF_CODE.fd", "code");
    old.write("/usr/share/OVMF/OVMF_VARS.fd", "vars");
    f = vm::find_ovmf(host::Host(old.root()), uefi());
    ASSERT_TRUE(f) << f.error().describe();
    EXPECT_EQ(f->code, "/usr/share/OVMF/OVMF_CODE.fd");
    EXPECT_EQ(f->vars_template, "/usr/share/OVMF/OVMF_VARS.fd");

    // The profile's own paths win.
    t.write("/opt/fw/CODE.fd", "c");
    auto c = uefi();
    c.ovmf_code = "/opt/fw/CODE.fd";
    f = vm::find_ovmf(h, c);
    ASSERT_TRUE(f) << f.error().describe();
    EXPECT_EQ(f->code, "/opt/fw/CODE.fd");
    EXPECT_EQ(f->vars_template, "/usr/share/OVMF/OVMF_VARS_4M.fd");
}

TEST(VmFirmware, MissingOvmfNamesThePackageAndWritesNothing) {
    fixture::HostTree t;
    const host::Host h(t.root());
    auto f = vm::prepare_firmware(h, uefi(), "/var/lib/vfioctl", "dev");
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().message.find("OVMF"), std::string::npos) << f.error().message;
    EXPECT_NE(f.error().hint.find("ovmf package"), std::string::npos) << f.error().hint;
    EXPECT_NE(f.error().hint.find("apt install ovmf"), std::string::npos);
    EXPECT_FALSE(h.exists("/var/lib/vfioctl/vms"));

    // A profile path that does not exist is named.
    auto ov = with_ovmf();
    auto c = uefi();
    c.ovmf_vars = "/opt/missing_VARS.fd";
    f = vm::prepare_firmware(host::Host(ov.root()), c, "/var/lib/vfioctl", "dev");
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().path, "/opt/missing_VARS.fd");

    // BIOS needs nothing.
    auto b = vm::prepare_firmware(h, vm::FirmwareConfig{}, "/var/lib/vfioctl", "dev");
    ASSERT_TRUE(b) << b.error().describe();
    EXPECT_EQ(b->kind, vm::Firmware::bios);
}

TEST(VmFirmware, VarsAreCopiedOnceAndKept) {
    auto t = with_ovmf();
    const host::Host h(t.root());
    auto f = vm::prepare_firmware(h, uefi(), "/var/lib/vfioctl", "dev");
    ASSERT_TRUE(f) << f.error().describe();
    EXPECT_EQ(f->code, t.path("/usr/share/OVMF/OVMF_CODE_4M.fd").string());
    EXPECT_EQ(f->vars, t.path("/var/lib/vfioctl/vms/dev/OVMF_VARS.fd").string());
    EXPECT_EQ(t.read("/var/lib/vfioctl/vms/dev/OVMF_VARS.fd"), "vars template");
    struct stat st {};
    ASSERT_EQ(::stat(f->vars.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);

    // What the guest wrote there survives the next start, even with a new template.
    t.write("/var/lib/vfioctl/vms/dev/OVMF_VARS.fd", "boot entries");
    t.write("/usr/share/OVMF/OVMF_VARS_4M.fd", "newer template");
    f = vm::prepare_firmware(h, uefi(), "/var/lib/vfioctl", "dev");
    ASSERT_TRUE(f) << f.error().describe();
    EXPECT_EQ(t.read("/var/lib/vfioctl/vms/dev/OVMF_VARS.fd"), "boot entries");

    // Another VM gets its own.
    f = vm::prepare_firmware(h, uefi(), "/var/lib/vfioctl", "other");
    ASSERT_TRUE(f) << f.error().describe();
    EXPECT_EQ(t.read("/var/lib/vfioctl/vms/other/OVMF_VARS.fd"), "newer template");
}
