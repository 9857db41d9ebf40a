// Kernel command line: how it splits and what the IOMMU parameters mean together.

#include "boot/cmdline.hpp"

#include <algorithm>
#include <gtest/gtest.h>

using namespace vfioctl::boot;

namespace {

IommuCmdline parse(std::string_view cmdline) {
    return interpret(tokenize(cmdline));
}

bool has_note(const IommuCmdline& c, std::string_view needle) {
    return std::any_of(c.notes.begin(), c.notes.end(),
                       [&](const std::string& n) { return n.find(needle) != std::string::npos; });
}

} // namespace

TEST(CmdlineTokenize, SplitsOnAnyWhitespaceAndKeepsTheTextAsWritten) {
    auto t = tokenize("  BOOT_IMAGE=/vmlinuz-6.8.0 \t ro\nquiet  intel_iommu=on  ");
    ASSERT_EQ(t.size(), 4u);
    EXPECT_EQ(t[0].key, "BOOT_IMAGE");
    EXPECT_EQ(t[0].value, "/vmlinuz-6.8.0");
    EXPECT_EQ(t[1].key, "ro");
    EXPECT_FALSE(t[1].value.has_value());
    EXPECT_EQ(t[3].text, "intel_iommu=on");
    EXPECT_TRUE(tokenize("").empty());
    EXPECT_TRUE(tokenize(" \t\n").empty());
}

TEST(CmdlineTokenize, QuotesGroupSpacesAndAreStripped) {
    auto t = tokenize(R"(dyndbg="file vfio_pci_core.c +p" "acpi_osi=Windows 2020" ro)");
    ASSERT_EQ(t.size(), 3u);
    EXPECT_EQ(t[0].key, "dyndbg");
    EXPECT_EQ(t[0].value, "file vfio_pci_core.c +p");
    EXPECT_EQ(t[0].text, R"(dyndbg="file vfio_pci_core.c +p")");
    EXPECT_EQ(t[1].key, "acpi_osi");
    EXPECT_EQ(t[1].value, "Windows 2020");
    EXPECT_EQ(t[2].key, "ro");
}

TEST(CmdlineTokenize, DoubleDashEndsTheKernelsArguments) {
    auto t = tokenize("intel_iommu=on -- intel_iommu=off single");
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].value, "on");
    EXPECT_EQ(parse("intel_iommu=on -- intel_iommu=off").intel, Switch::on);
    // Inside quotes it is part of a value, and "--x" is an ordinary word.
    auto q = tokenize(R"(init.args="a -- b" --x iommu=pt)");
    ASSERT_EQ(q.size(), 3u);
    EXPECT_EQ(q[0].value, "a -- b");
    EXPECT_EQ(q[1].text, "--x");
    EXPECT_EQ(q[2].key, "iommu");
}

TEST(CmdlineTokenize, DashAndUnderscoreAreTheSameInNamesButNotValues) {
    auto t = tokenize("vfio-pci.ids=10de:2336 intel-iommu=on modprobe.blacklist=snd-hda-intel");
    ASSERT_EQ(t.size(), 3u);
    EXPECT_EQ(t[0].key, "vfio_pci.ids");
    EXPECT_EQ(t[1].key, "intel_iommu");
    EXPECT_EQ(t[2].value, "snd-hda-intel");
    EXPECT_EQ(parse("intel-iommu=on").intel, Switch::on);
    EXPECT_EQ(parse("vfio-pci.ids=10de:2336").vfio_pci_ids, std::vector<std::string>{"10de:2336"});
}

TEST(CmdlineInterpret, TheSeedsCommandLineBeforeAndAfter) {
    auto before = parse("BOOT_IMAGE=/vmlinuz-6.8.0 root=UUID=4f6c ro intel_iommu=off iommu=pt");
    EXPECT_EQ(before.intel, Switch::off);
    EXPECT_EQ(before.passthrough, true);
    EXPECT_EQ(before.iommu, "pt");
    EXPECT_EQ(before.iommu_tokens, (std::vector<std::string>{"intel_iommu=off", "iommu=pt"}));
    EXPECT_TRUE(has_note(before, "intel_iommu=off makes iommu=pt moot"));

    auto after = parse("BOOT_IMAGE=/vmlinuz-6.8.0 root=UUID=4f6c ro intel_iommu=on iommu=pt");
    EXPECT_EQ(after.intel, Switch::on);
    EXPECT_EQ(after.passthrough, true);
    EXPECT_FALSE(has_note(after, "moot"));
}

TEST(CmdlineInterpret, LaterOccurrencesWin) {
    EXPECT_EQ(parse("intel_iommu=off intel_iommu=on").intel, Switch::on);
    EXPECT_EQ(parse("intel_iommu=on intel_iommu=off").intel, Switch::off);
    EXPECT_EQ(parse("iommu=pt iommu=nopt").passthrough, false);
    EXPECT_EQ(parse("iommu=nopt iommu=pt").passthrough, true);
    EXPECT_EQ(parse("iommu=pt iommu.passthrough=0").passthrough, false);
    EXPECT_EQ(parse("iommu.passthrough=0 iommu=pt").passthrough, true);
    EXPECT_EQ(parse("iommu.strict=1 iommu.strict=0").strict, false);
    // Options of one token apply in order too.
    EXPECT_EQ(parse("intel_iommu=off,on").intel, Switch::on);
    // A moot note needs both to hold at the end.
    EXPECT_FALSE(has_note(parse("intel_iommu=off iommu=pt intel_iommu=on"), "moot"));
}

TEST(CmdlineInterpret, IommuOffBeatsEverythingAndNothingTurnsItBackOn) {
    auto c = parse("intel_iommu=on iommu=off");
    EXPECT_TRUE(c.iommu_off);
    EXPECT_TRUE(has_note(c, "iommu=off disables every IOMMU"));
    // The kernel's iommu= options are flags: force or a second token does not clear off.
    EXPECT_TRUE(parse("iommu=off iommu=force").iommu_off);
    EXPECT_TRUE(parse("iommu=off,pt").iommu_off);
    EXPECT_FALSE(parse("iommu=pt").iommu_off);
}

TEST(CmdlineInterpret, PassthroughAndStrictTakeKernelBooleans) {
    EXPECT_EQ(parse("iommu.passthrough=1").passthrough, true);
    EXPECT_EQ(parse("iommu.passthrough=Y").passthrough, true);
    EXPECT_EQ(parse("iommu.passthrough=0").passthrough, false);
    EXPECT_EQ(parse("iommu.passthrough=off").passthrough, false);
    auto bad = parse("iommu.passthrough=maybe");
    EXPECT_FALSE(bad.passthrough.has_value());
    EXPECT_TRUE(has_note(bad, "iommu.passthrough=maybe is not a boolean"));
    EXPECT_EQ(parse("iommu.strict=1").strict, true);
    EXPECT_EQ(parse("iommu.strict=no").strict, false);
    EXPECT_TRUE(has_note(parse("iommu.strict=2"), "not a boolean"));
    EXPECT_FALSE(parse("quiet").passthrough.has_value());
}

TEST(CmdlineInterpret, IntelOptionsAreKeptAndUnknownOnesNoted) {
    auto c = parse("intel_iommu=on,sm_on,igfx_off");
    EXPECT_EQ(c.intel, Switch::on);
    EXPECT_EQ(c.intel_opts, (std::vector<std::string>{"on", "sm_on", "igfx_off"}));
    EXPECT_TRUE(c.notes.empty());
    auto u = parse("intel_iommu=turbo");
    EXPECT_EQ(u.intel, Switch::unset);
    EXPECT_TRUE(has_note(u, "intel_iommu=turbo"));
}

TEST(CmdlineInterpret, AmdOffMakesPassthroughMootToo) {
    auto c = parse("amd_iommu=off iommu=pt");
    EXPECT_EQ(c.amd, Switch::off);
    EXPECT_TRUE(has_note(c, "amd_iommu=off makes iommu=pt moot"));
    EXPECT_EQ(parse("amd_iommu=force_isolation").amd_opts,
              std::vector<std::string>{"force_isolation"});
}

TEST(CmdlineInterpret, VfioIdsAndUnsafeInterrupts) {
    auto c = parse("vfio-pci.ids=10de:2336,10de:22a3,, vfio_iommu_type1.allow_unsafe_interrupts=1");
    EXPECT_EQ(c.vfio_pci_ids, (std::vector<std::string>{"10de:2336", "10de:22a3"}));
    EXPECT_EQ(c.allow_unsafe_interrupts, true);
    EXPECT_EQ(parse("vfio_iommu_type1.allow_unsafe_interrupts=N").allow_unsafe_interrupts, false);
    EXPECT_FALSE(parse("quiet").allow_unsafe_interrupts.has_value());
    EXPECT_NE(std::find(c.iommu_tokens.begin(), c.iommu_tokens.end(),
                        "vfio-pci.ids=10de:2336,10de:22a3,,"),
              c.iommu_tokens.end());
}

TEST(CmdlineInterpret, BlacklistsFromModprobeAndDracut) {
    auto c = parse("modprobe.blacklist=nouveau,nvidia rd.driver.blacklist=vfio-pci "
                   "module_blacklist=snd_hda_intel");
    EXPECT_EQ(c.blacklisted,
              (std::vector<std::string>{"nouveau", "nvidia", "vfio-pci", "snd_hda_intel"}));
    EXPECT_TRUE(has_note(c, "vfio-pci is blacklisted"));
    EXPECT_FALSE(has_note(parse("modprobe.blacklist=nouveau"), "blacklisted"));
}

TEST(CmdlineInterpret, UnrelatedParametersAreIgnored) {
    auto c = parse("BOOT_IMAGE=/vmlinuz ro quiet splash console=ttyS0,115200 iommufoo=1");
    EXPECT_TRUE(c.iommu_tokens.empty());
    EXPECT_TRUE(c.notes.empty());
    EXPECT_EQ(c.intel, Switch::unset);
}

TEST(CmdlineInterpret, KernelBooleans) {
    for (const char* t : {"1", "y", "Y", "yes", "on", "ON", "true"})
        EXPECT_EQ(parse_kernel_bool(t), true) << t;
    for (const char* f : {"0", "n", "N", "no", "off", "false"})
        EXPECT_EQ(parse_kernel_bool(f), false) << f;
    for (const char* x : {"", "2", "maybe", "onn"})
        EXPECT_FALSE(parse_kernel_bool(x).has_value()) << x;
}
