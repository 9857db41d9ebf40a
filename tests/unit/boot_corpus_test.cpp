// Every boot setup in tests/corpus/boot, real-shaped: detected from its
// files, enabled, checked by /bin/sh itself (for GRUB files), enabled again
// (nothing to do), disabled, and reverted to the exact bytes it started with.

#include "boot/apply.hpp"
#include "boot/plan.hpp"
#include "boot/setup.hpp"
#include "boot_test_helpers.hpp"
#include "host/files.hpp"

#include <gtest/gtest.h>
#include <map>
#include <set>
#include <sys/stat.h>

using namespace vfioctl;
using namespace vfioctl::boot;
using boottest::CaseRoot;

namespace {

struct Expect {
    std::string loader;
    std::string enabled;                 // the first set's command line after 'enable'
    std::set<std::string> changed;       // the files 'enable' changes
    std::vector<std::string> regenerate; // the command it prints
};

const std::map<std::string, Expect>& expectations() {
    static const std::map<std::string, Expect> e = {
        {"debian12",
         {"grub",
          "quiet intel_iommu=on iommu=pt",
          {"/etc/default/grub"},
          {"/usr/sbin/update-grub"}}},
        {"ubuntu2204",
         {"grub",
          "quiet splash intel_iommu=on iommu=pt",
          {"/etc/default/grub"},
          {"/usr/sbin/update-grub"}}},
        {"ubuntu-cloud",
         {"grub",
          "console=tty1 console=ttyS0 intel_iommu=on iommu=pt",
          {"/etc/default/grub.d/50-cloudimg-settings.cfg"},
          {"/usr/sbin/update-grub"}}},
        {"seed",
         {"grub",
          "quiet splash intel_iommu=on iommu=pt",
          {"/etc/default/grub"},
          {"/usr/sbin/update-grub"}}},
        {"seed-dropin",
         {"grub",
          "console=tty1 console=ttyS0 intel_iommu=on iommu=pt",
          {"/etc/default/grub", "/etc/default/grub.d/50-cloudimg-settings.cfg"},
          {"/usr/sbin/update-grub"}}},
        {"single-quotes",
         {"grub",
          "console=tty0 console=ttyS0,115200n8 quiet splash intel_iommu=on iommu=pt",
          {"/etc/default/grub"},
          {"/usr/sbin/update-grub"}}},
        {"var-ref",
         {"grub",
          "quiet intel_iommu=on nvidia-drm.modeset=1 iommu=pt",
          {"/etc/default/grub"},
          {"/usr/sbin/update-grub"}}},
        {"export-lines",
         {"grub",
          "net.ifnames=0 biosdevname=0 quiet iommu=pt intel_iommu=on",
          {"/etc/default/grub"},
          {"/usr/sbin/update-grub"}}},
        {"crlf",
         {"grub",
          "quiet intel_iommu=on iommu=pt",
          {"/etc/default/grub"},
          {"/usr/sbin/update-grub"}}},
        {"missing-key",
         {"grub", "intel_iommu=on iommu=pt", {"/etc/default/grub"}, {"/usr/sbin/update-grub"}}},
        {"commented-key",
         {"grub", "intel_iommu=on iommu=pt", {"/etc/default/grub"}, {"/usr/sbin/update-grub"}}},
        {"duplicated-key",
         {"grub",
          "quiet splash intel_iommu=on iommu=pt",
          {"/etc/default/grub"},
          {"/usr/sbin/update-grub"}}},
        {"unquoted",
         {"grub",
          "quiet intel_iommu=on iommu=pt",
          {"/etc/default/grub"},
          {"/usr/sbin/update-grub"}}},
        {"no-newline",
         {"grub",
          "quiet intel_iommu=on iommu=pt",
          {"/etc/default/grub"},
          {"/usr/sbin/update-grub"}}},
        {"arch-grub",
         {"grub",
          "loglevel=3 quiet intel_iommu=on iommu=pt",
          {"/etc/default/grub"},
          {"/usr/bin/grub-mkconfig", "-o", "/boot/grub/grub.cfg"}}},
        {"fedora39",
         {"grub-bls",
          "rhgb quiet intel_iommu=on iommu=pt",
          {"/etc/default/grub"},
          {"/usr/sbin/grubby", "--update-kernel=ALL", "--args=intel_iommu=on iommu=pt"}}},
        {"rhel9",
         {"grub-bls",
          "crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=/dev/mapper/rhel-swap "
          "rd.lvm.lv=rhel/root "
          "rd.lvm.lv=rhel/swap rhgb quiet intel_iommu=on iommu=pt",
          {"/etc/default/grub", "/etc/kernel/cmdline"},
          {"/usr/sbin/grubby", "--update-kernel=ALL", "--args=intel_iommu=on iommu=pt",
           "--remove-args=intel_iommu=off"}}},
        {"arch-systemd-boot",
         {"systemd-boot",
          "root=UUID=3f9a1c2e-6b7d-4e8f-9a0b-1c2d3e4f5a6b rw intel_iommu=on iommu=pt",
          {"/boot/loader/entries/arch.conf", "/boot/loader/entries/arch-fallback.conf"},
          {}}},
        {"popos",
         {"kernelstub",
          "quiet loglevel=0 systemd.show_status=false splash intel_iommu=on iommu=pt",
          {"/etc/kernelstub/configuration"},
          {"/usr/bin/kernelstub", "--add-options", "intel_iommu=on iommu=pt", "--delete-options",
           "intel_iommu=off"}}},
        {"proxmox",
         {"proxmox-boot-tool",
          "root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on iommu=pt",
          {"/etc/kernel/cmdline"},
          {"/usr/sbin/proxmox-boot-tool", "refresh"}}},
    };
    return e;
}

const Goal k_enable{Action::enable, Platform::intel, true};
const Goal k_disable{Action::disable, Platform::intel, false};

// Every file in the tree, relative path -> bytes (the journal and lock aside).
std::map<std::string, std::string> tree(const CaseRoot& r) {
    std::map<std::string, std::string> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(r.dir.path))
        if (e.is_regular_file())
            out[e.path().lexically_relative(r.dir.path).string()] = boottest::slurp(e.path());
    return out;
}

// The shell agrees with vfioctl about every GRUB set of the root.
void expect_shell_agrees(const CaseRoot& r, const BootSetup& s, const std::string& what) {
    for (const auto& set : s.sets) {
        if (set.files().front().format != Format::grub_shell) continue;
        EXPECT_EQ(boottest::sh_params(r, set), boottest::words(set.view().cmdline)) << what;
    }
}

ApplyOptions options(const std::string& stamp) {
    ApplyOptions o;
    o.stamp = stamp;
    return o;
}

} // namespace

TEST(BootCorpus, EveryCaseHasAnExpectation) {
    std::set<std::string> known;
    for (const auto& [name, e] : expectations())
        known.insert(name);
    for (const auto& name : boottest::corpus_cases()) {
        if (name == "nixos" || name == "unknown" || name == "conditional" || name == "cmdsubst")
            continue;
        EXPECT_TRUE(known.count(name)) << "corpus case without expectation: " << name;
    }
}

TEST(BootCorpus, EnableDisableRevertOnEverySetup) {
    int checked = 0;
    for (const auto& [name, want] : expectations()) {
        SCOPED_TRACE(name);
        CaseRoot r(name);
        host::Host h(r.root);
        const auto original = tree(r);
        auto setup = detect_setup(h);
        EXPECT_EQ(loader_id(setup.loader), want.loader);
        ASSERT_TRUE(setup.editable());
        expect_shell_agrees(r, setup, name + " as shipped");

        auto plan = plan_goal(setup.sets, k_enable);
        ASSERT_TRUE(plan.ok()) << plan.error().describe();
        std::set<std::string> changed;
        for (const auto& e : plan->edits)
            changed.insert(e.path);
        EXPECT_EQ(changed, want.changed);
        auto regen = regenerate_command(h, setup, plan->added, plan->removed);
        EXPECT_EQ(regen.argv, want.regenerate);
        std::map<std::string, unsigned> modes;
        for (const auto& e : plan->edits)
            modes[e.path] = host::stat_file(h, e.path)->mode;

        auto applied = apply_plan(h, setup, *plan, "enable", options("20240101-000001"));
        ASSERT_TRUE(applied.ok()) << applied.error().describe();
        EXPECT_FALSE(applied->regenerate_ran);
        for (const auto& f : applied->files) {
            EXPECT_EQ(r.read(f.backup), original.at(f.path.substr(1))) << f.backup;
            EXPECT_EQ(host::stat_file(h, f.backup)->mode, modes[f.path]) << f.backup;
            EXPECT_EQ(host::stat_file(h, f.path)->mode, modes[f.path]) << f.path;
        }

        auto after = detect_setup(h);
        EXPECT_EQ(boottest::words(after.sets.front().view().cmdline),
                  boottest::words(want.enabled));
        for (const auto& set : after.sets) {
            auto c = interpret(tokenize(set.view().cmdline));
            EXPECT_TRUE(meets(c, k_enable)) << set.label() << ": " << set.view().cmdline;
        }
        expect_shell_agrees(r, after, name + " enabled");
        if (name == "crlf") {
            for (const auto& e : plan->edits)
                for (size_t i = 0; i < e.after.size(); ++i)
                    if (e.after[i] == '\n') {
                        EXPECT_TRUE(i > 0 && e.after[i - 1] == '\r') << "a bare LF at " << i;
                    }
        }
        if (name == "no-newline") {
            EXPECT_NE(r.read("/etc/default/grub").back(), '\n');
        }

        // Enabling again changes nothing.
        auto again = plan_goal(after.sets, k_enable);
        ASSERT_TRUE(again.ok());
        EXPECT_TRUE(again->empty()) << (again->edits.empty() ? "" : again->edits[0].after);

        // Disable turns it off, the shell agrees.
        auto off = plan_goal(after.sets, k_disable);
        ASSERT_TRUE(off.ok()) << off.error().describe();
        ASSERT_TRUE(apply_plan(h, after, *off, "disable", options("20240101-000002")).ok());
        auto disabled = detect_setup(h);
        for (const auto& set : disabled.sets)
            EXPECT_FALSE(iommu_on(interpret(tokenize(set.view().cmdline)), Platform::intel))
                << set.view().cmdline;
        expect_shell_agrees(r, disabled, name + " disabled");

        // Two reverts: the disable, then the enable; the files are byte for byte the originals.
        for (const char* stamp : {"20240101-000003", "20240101-000004"}) {
            auto rp = plan_revert(h, "/var/lib/vfioctl");
            ASSERT_TRUE(rp.ok()) << rp.error().describe();
            EXPECT_TRUE(rp->merged.empty());
            auto s = detect_setup(h);
            ASSERT_TRUE(apply_plan(h, s, rp->plan, "revert", options(stamp), rp->undoes.id).ok());
        }
        auto now = tree(r);
        for (const auto& [path, bytes] : original)
            EXPECT_EQ(now.at(path), bytes) << path;
        for (const auto& [path, bytes] : now) {
            if (original.count(path)) continue;
            bool ours = path.find(".vfioctl-backup-") != std::string::npos ||
                        path.rfind("var/lib/vfioctl/", 0) == 0;
            EXPECT_TRUE(ours) << "left behind: " << path;
        }
        auto none = plan_revert(h, "/var/lib/vfioctl");
        EXPECT_FALSE(none.ok());
        ++checked;
    }
    EXPECT_EQ(checked, static_cast<int>(expectations().size()));
}

TEST(BootCorpus, SetupsVfioctlDoesNotEdit) {
    for (const char* name : {"nixos", "unknown"}) {
        CaseRoot r(name, "BOOT_IMAGE=/x ro intel_iommu=off");
        host::Host h(r.root);
        auto s = detect_setup(h);
        EXPECT_FALSE(s.editable()) << name;
        auto steps = manual_steps(s, k_enable, "BOOT_IMAGE=/x ro intel_iommu=off");
        std::string all = util::join(steps, "\n");
        EXPECT_NE(all.find("intel_iommu=on"), std::string::npos) << all;
        EXPECT_NE(all.find("intel_iommu=off"), std::string::npos) << all;
        if (std::string(name) == "nixos") {
            EXPECT_NE(all.find("boot.kernelParams"), std::string::npos) << all;
            EXPECT_NE(all.find("nixos-rebuild boot"), std::string::npos) << all;
        }
    }
    for (const char* name : {"conditional", "cmdsubst"}) {
        CaseRoot r(name);
        host::Host h(r.root);
        auto s = detect_setup(h);
        ASSERT_TRUE(s.editable()) << name;
        auto plan = plan_goal(s.sets, k_enable);
        ASSERT_FALSE(plan.ok()) << name;
        EXPECT_NE(plan.error().hint.find("by hand"), std::string::npos) << plan.error().hint;
    }
}

TEST(BootCorpus, NextBootAndRebootPending) {
    // Debian with a generated grub.cfg: the file the boot reads decides.
    CaseRoot r("debian12", "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=1 ro quiet");
    host::Host h(r.root);
    auto st = inspect_boot(h);
    EXPECT_EQ(st.setup.generated_path, "/boot/grub/grub.cfg");
    EXPECT_EQ(st.setup.generated_cmdline,
              "root=UUID=1f4e0c5e-7a5b-4f7e-9d77-2c8b1f0a9e21 ro quiet");
    EXPECT_FALSE(st.reboot_pending);
    EXPECT_FALSE(st.regenerate_pending);
    auto plan = plan_goal(st.setup.sets, k_enable);
    ASSERT_TRUE(apply_plan(h, st.setup, *plan, "enable", options("20240101-000001")).ok());
    st = inspect_boot(h);
    EXPECT_EQ(st.configured_cmdline, "quiet intel_iommu=on iommu=pt");
    EXPECT_TRUE(st.regenerate_pending) << st.reason;
    EXPECT_FALSE(st.reboot_pending) << "grub.cfg is not regenerated under --root";
    EXPECT_EQ(st.regenerate_command, "/usr/sbin/update-grub");
    // update-grub writes the new grub.cfg; now a reboot is pending.
    std::string cfg = r.read("/boot/grub/grub.cfg");
    auto at = cfg.find("ro  quiet");
    cfg.replace(at, 9, "ro  quiet intel_iommu=on iommu=pt");
    r.write("/boot/grub/grub.cfg", cfg);
    st = inspect_boot(h);
    EXPECT_TRUE(st.reboot_pending) << st.reason;
    EXPECT_FALSE(st.regenerate_pending) << st.reason;
    EXPECT_EQ(st.next_iommu, (std::vector<std::string>{"intel_iommu=on", "iommu=pt"}));

    // Fedora: the saved BLS entry is what boots.
    CaseRoot f("fedora39", "BOOT_IMAGE=(hd0,gpt2)/vmlinuz-6.5.6-300.fc39.x86_64 root=UUID=5e1f ro "
                           "rootflags=subvol=root rhgb quiet");
    host::Host fh(f.root);
    auto fs = inspect_boot(fh);
    EXPECT_EQ(fs.setup.generated_path,
              "/boot/loader/entries/4b6e0c1a2f3d4e5f8a9b0c1d2e3f4a5b-6.5.6-300.fc39.x86_64.conf");
    EXPECT_FALSE(fs.reboot_pending);
    // RHEL: $tuned_params expands from grubenv (empty); intel_iommu=off is in the entry.
    CaseRoot rh("rhel9",
                "BOOT_IMAGE=(hd0,msdos1)/vmlinuz root=/dev/mapper/rhel-root ro intel_iommu=off");
    auto rs = inspect_boot(host::Host(rh.root));
    ASSERT_TRUE(rs.setup.generated_cmdline.has_value());
    EXPECT_EQ(rs.setup.generated_cmdline->find("$tuned"), std::string::npos)
        << *rs.setup.generated_cmdline;
    EXPECT_EQ(rs.next_iommu, std::vector<std::string>{"intel_iommu=off"});
    EXPECT_FALSE(rs.reboot_pending);
    // systemd-boot: loader.conf's default entry.
    CaseRoot sd("arch-systemd-boot", "initrd=\\initramfs-linux.img root=UUID=3f9a rw");
    auto ss = inspect_boot(host::Host(sd.root));
    EXPECT_EQ(ss.setup.generated_path, "/boot/loader/entries/arch.conf");
    EXPECT_TRUE(ss.reboot_pending) << "arch.conf says intel_iommu=off, the running kernel does not";
}

TEST(BootCorpus, PlatformFromTablesNotVendor) {
    // QEMU TCG's -cpu max says AuthenticAMD while the emulated IOMMU is Intel's.
    CaseRoot r("debian12", "ro quiet", "DMAR");
    r.write("/proc/cpuinfo", "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: svm\n\n");
    auto g = detect_platform(host::Host(r.root));
    ASSERT_TRUE(g.platform.has_value());
    EXPECT_EQ(*g.platform, Platform::intel);
    EXPECT_TRUE(g.firmware_table);
    CaseRoot a("debian12", "ro quiet", "IVRS");
    EXPECT_EQ(*detect_platform(host::Host(a.root)).platform, Platform::amd);
    CaseRoot n("debian12", "ro quiet", nullptr);
    n.write("/proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\n\n");
    auto ng = detect_platform(host::Host(n.root));
    EXPECT_EQ(*ng.platform, Platform::intel);
    EXPECT_FALSE(ng.firmware_table);
    EXPECT_NE(ng.evidence.find("CPU vendor"), std::string::npos);
}
