// 'vfioctl iommu show' and 'enable --dry-run' in process (cli::run) on the
// boot corpus roots, and the same output as the built binary prints.

#include "boot_test_helpers.hpp"
#include "cli_run.hpp"
#include "support.hpp"

#include <gtest/gtest.h>

using namespace vfioctl;
using boottest::CaseRoot;
using nlohmann::json;
using test::contains;
using test::run_cli;

namespace {

struct CliIommu : ::testing::Test {
    fixture::TempDir run_base;
    services::Paths paths = test::test_paths(run_base);
};

} // namespace

TEST_F(CliIommu, ShowOnDebian) {
    CaseRoot r("debian12", "BOOT_IMAGE=/boot/vmlinuz root=UUID=1 ro quiet");
    host::Host h(r.root);
    auto show = run_cli(h, {"--json", "iommu", "show"}, paths);
    ASSERT_EQ(show.exit_code, 0) << show.err;
    json j = show.json();
    EXPECT_EQ(j["loader"], "grub");
    EXPECT_EQ(j["platform"], "intel");
    EXPECT_EQ(j["reboot_pending"], false);
    auto text = run_cli(h, {"iommu", "show"}, paths);
    ASSERT_EQ(text.exit_code, 0) << text.err;
    EXPECT_TRUE(
        contains(text.out, "Running:         BOOT_IMAGE=/boot/vmlinuz root=UUID=1 ro quiet"))
        << text.out;
}

TEST_F(CliIommu, EnableDryRunChangesNothing) {
    CaseRoot r("ubuntu-cloud", "BOOT_IMAGE=/vmlinuz ro console=tty1 console=ttyS0");
    const std::string dropin = r.read("/etc/default/grub.d/50-cloudimg-settings.cfg");
    host::Host h(r.root);
    auto dry = run_cli(h, {"iommu", "enable", "--permanent", "--dry-run"}, paths);
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_TRUE(contains(dry.out, "--- a/etc/default/grub.d/50-cloudimg-settings.cfg")) << dry.out;
    EXPECT_TRUE(contains(dry.out, "+GRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1 console=ttyS0 "
                                  "intel_iommu=on iommu=pt\""))
        << dry.out;
    EXPECT_TRUE(contains(dry.out, "Dry run: nothing was changed")) << dry.out;
    EXPECT_EQ(r.read("/etc/default/grub.d/50-cloudimg-settings.cfg"), dropin);
    EXPECT_FALSE(std::filesystem::exists(r.path("/var/lib/vfioctl")));

    auto jdry = run_cli(h, {"--json", "iommu", "enable", "--permanent", "--dry-run"}, paths);
    ASSERT_EQ(jdry.exit_code, 0) << jdry.err;
    json j = jdry.json();
    EXPECT_EQ(j["dry_run"], true);
    EXPECT_EQ(j["added"], json::array({"intel_iommu=on", "iommu=pt"}));
}

TEST_F(CliIommu, EnableWithoutATerminalOrYesIsAUsageError) {
    CaseRoot r("debian12");
    host::Host h(r.root);
    const std::string grub = r.read("/etc/default/grub");
    auto no = run_cli(h, {"iommu", "enable", "--permanent"}, paths);
    EXPECT_EQ(no.exit_code, 2);
    EXPECT_TRUE(contains(no.err, "vfioctl: error: not changing the boot configuration without a "
                                 "confirmation\n"))
        << no.err;
    EXPECT_EQ(r.read("/etc/default/grub"), grub);
}

TEST_F(CliIommu, EnableAsksOnATerminal) {
    CaseRoot r("debian12");
    host::Host h(r.root);
    const std::string grub = r.read("/etc/default/grub");
    auto no = run_cli(h, {"iommu", "enable", "--permanent"}, paths, "n\n", true);
    EXPECT_EQ(no.exit_code, 1) << no.err;
    EXPECT_TRUE(contains(no.err, "Change the boot configuration? [y/N] ")) << no.err;
    EXPECT_TRUE(contains(no.err, "nothing was changed\n")) << no.err;
    EXPECT_EQ(r.read("/etc/default/grub"), grub);

    auto yes = run_cli(h, {"iommu", "enable", "--permanent"}, paths, "y\n", true);
    ASSERT_EQ(yes.exit_code, 0) << yes.err;
    EXPECT_TRUE(contains(r.read("/etc/default/grub"), "intel_iommu=on iommu=pt")) << yes.out;
    EXPECT_TRUE(std::filesystem::exists(r.path("/var/lib/vfioctl/boot-journal.json")));
}

TEST_F(CliIommu, InProcessOutputIsTheBinarysOutput) {
    CaseRoot r("debian12");
    host::Host h(r.root);
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"iommu", "show"},
          std::vector<std::string>{"--json", "iommu", "show"},
          std::vector<std::string>{"iommu", "enable", "--permanent", "--dry-run"},
          std::vector<std::string>{"--json", "iommu", "enable", "--permanent", "--dry-run"}}) {
        auto in = run_cli(h, args, paths);
        std::vector<std::string> with_root = {"--root", r.root};
        with_root.insert(with_root.end(), args.begin(), args.end());
        auto bin = test::run_vfioctl(with_root);
        EXPECT_EQ(in.exit_code, bin.exit_code) << util::join(args, " ");
        EXPECT_EQ(in.out, bin.out) << util::join(args, " ");
        EXPECT_EQ(in.err, bin.err) << util::join(args, " ");
    }
}
