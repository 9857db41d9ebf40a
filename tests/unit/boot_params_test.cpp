// Kernel parameters in GRUB shell files, cmdline files, loader entries and
// kernelstub's list: every edit keeps every other byte, and the shell agrees
// with what vfioctl says the edited file means. Also the unified diff.

#include "boot/diff.hpp"
#include "boot/params.hpp"
#include "boot/plan.hpp"
#include "boot/shell.hpp"
#include "boot_test_helpers.hpp"

#include <gtest/gtest.h>

using namespace vfioctl;
using namespace vfioctl::boot;

namespace {

ParamSet grub(std::vector<std::string> texts) {
    std::vector<ConfigFile> files;
    for (size_t i = 0; i < texts.size(); ++i)
        files.push_back(
            {i == 0 ? "/etc/default/grub" : "/etc/default/grub.d/" + std::to_string(i) + ".cfg",
             Format::grub_shell, texts[i]});
    return ParamSet("GRUB defaults", files);
}

std::optional<Param> find(const CmdlineView& v, const std::string& text) {
    for (const auto& p : v.written)
        if (p.text == text) return p;
    return std::nullopt;
}

// The shell's effective command line of the set's files.
std::vector<std::string> sh_words(const ParamSet& s) {
    fixture::TempDir d;
    std::vector<std::string> paths;
    for (size_t i = 0; i < s.files().size(); ++i) {
        auto p = d.path / std::to_string(i);
        boottest::spit(p, s.files()[i].text);
        paths.push_back(p.string());
    }
    return boottest::words(boottest::sh_effective(paths));
}

} // namespace

TEST(BootParams, ViewListsEffectiveAndOverriddenParameters) {
    auto s =
        grub({"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=off\"\nGRUB_CMDLINE_LINUX=\"ro\"\n",
              "GRUB_CMDLINE_LINUX_DEFAULT=\"console=ttyS0\"\n"});
    auto v = s.view();
    EXPECT_EQ(v.cmdline, "ro console=ttyS0");
    auto off = find(v, "intel_iommu=off");
    ASSERT_TRUE(off.has_value());
    EXPECT_FALSE(off->effective);
    EXPECT_TRUE(off->editable);
    EXPECT_EQ(off->where, "/etc/default/grub:1 (GRUB_CMDLINE_LINUX_DEFAULT)");
    auto con = find(v, "console=ttyS0");
    ASSERT_TRUE(con.has_value());
    EXPECT_TRUE(con->effective);
    EXPECT_EQ(con->file, 1u);
}

TEST(BootParams, RemoveKeepsEverythingElse) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"GRUB_CMDLINE_LINUX=\"a intel_iommu=off b\"\n", "GRUB_CMDLINE_LINUX=\"a b\"\n"},
        {"GRUB_CMDLINE_LINUX=\"intel_iommu=off b\"\n", "GRUB_CMDLINE_LINUX=\"b\"\n"},
        {"GRUB_CMDLINE_LINUX=\"a intel_iommu=off\"\n", "GRUB_CMDLINE_LINUX=\"a\"\n"},
        {"GRUB_CMDLINE_LINUX=\"intel_iommu=off\"\n", "GRUB_CMDLINE_LINUX=\"\"\n"},
        {"GRUB_CMDLINE_LINUX='a  intel_iommu=off  b'\n", "GRUB_CMDLINE_LINUX='a  b'\n"},
        {"GRUB_CMDLINE_LINUX=intel_iommu=off\n", "GRUB_CMDLINE_LINUX=\n"},
        {"GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX intel_iommu=off\"\n",
         "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX\"\n"},
        {"GRUB_CMDLINE_LINUX=\"a intel_iommu=off\"\r\n", "GRUB_CMDLINE_LINUX=\"a\"\r\n"},
        {"export GRUB_CMDLINE_LINUX=\"intel_iommu=off a\" # keep\n",
         "export GRUB_CMDLINE_LINUX=\"a\" # keep\n"},
    };
    for (const auto& [before, after] : cases) {
        auto s = grub({before});
        auto v = s.view();
        auto p = find(v, "intel_iommu=off");
        ASSERT_TRUE(p.has_value()) << before;
        ASSERT_TRUE(s.remove(*p).ok()) << before;
        EXPECT_EQ(s.files()[0].text, after) << before;
        EXPECT_EQ(sh_words(s), boottest::words(s.view().cmdline)) << after;
    }
}

TEST(BootParams, ReplaceAndAppendKeepQuoting) {
    struct Case {
        std::string before, after;
    };
    const std::vector<Case> cases = {
        {"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n",
         "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"\n"},
        {"GRUB_CMDLINE_LINUX_DEFAULT='quiet'\n",
         "GRUB_CMDLINE_LINUX_DEFAULT='quiet intel_iommu=on'\n"},
        {"GRUB_CMDLINE_LINUX_DEFAULT=\"\"\n", "GRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on\"\n"},
        {"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet \"\n",
         "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"\n"},
        {"GRUB_CMDLINE_LINUX_DEFAULT=\n", "GRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on\"\n"},
        {"GRUB_CMDLINE_LINUX_DEFAULT=quiet\n",
         "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"\n"},
        {"GRUB_CMDLINE_LINUX_DEFAULT=$X\n", "GRUB_CMDLINE_LINUX_DEFAULT=\"$X intel_iommu=on\"\n"},
        {"GRUB_CMDLINE_LINUX_DEFAULT=a\\ b\n",
         "GRUB_CMDLINE_LINUX_DEFAULT=a\\ b\" intel_iommu=on\"\n"},
        {"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\r\n",
         "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\"\r\n"},
        {"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"",
         "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on\""},
        {"# nothing\n", "# nothing\nGRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on\"\n"},
        {"# nothing", "# nothing\nGRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on\"\n"},
        {"A=1\n#GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nB=2\n",
         "A=1\n#GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu="
         "on\"\nB=2\n"},
        {"A=1\r\n#GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\r\n",
         "A=1\r\n#GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\r\nGRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu="
         "on\"\r\n"},
        {"GRUB_CMDLINE_LINUX=\"ro\"\n", "GRUB_CMDLINE_LINUX=\"ro intel_iommu=on\"\n"},
    };
    for (const auto& c : cases) {
        auto s = grub({c.before});
        ASSERT_TRUE(s.append("intel_iommu=on").ok()) << c.before;
        EXPECT_EQ(s.files()[0].text, c.after) << c.before;
        EXPECT_EQ(sh_words(s), boottest::words(s.view().cmdline)) << c.after;
        EXPECT_TRUE(find(s.view(), "intel_iommu=on").has_value()) << c.after;
    }
    auto s = grub({"GRUB_CMDLINE_LINUX='a intel_iommu=off,sm_on b'\n"});
    auto p = find(s.view(), "intel_iommu=off,sm_on");
    ASSERT_TRUE(p.has_value());
    ASSERT_TRUE(s.replace(*p, "intel_iommu=on,sm_on").ok());
    EXPECT_EQ(s.files()[0].text, "GRUB_CMDLINE_LINUX='a intel_iommu=on,sm_on b'\n");
}

TEST(BootParams, ExpressionsAreNotEdited) {
    auto s = grub({"X=intel_iommu=off\nGRUB_CMDLINE_LINUX=\"${X}\"\n"});
    auto v = s.view();
    ASSERT_EQ(v.effective.size(), 1u);
    EXPECT_EQ(v.effective[0].text, "intel_iommu=off");
    // It comes from X's assignment, which vfioctl does not treat as a command line.
    EXPECT_EQ(v.effective[0].variable, "X");
    EXPECT_FALSE(v.effective[0].editable);
    auto t = grub({"GRUB_CMDLINE_LINUX=\"a\\$b intel_iommu=off\"\n"});
    auto tv = t.view();
    ASSERT_EQ(tv.effective.size(), 2u);
    EXPECT_FALSE(tv.effective[0].editable); // holds an escape
    EXPECT_TRUE(tv.effective[1].editable);
    auto u = grub({"GRUB_CMDLINE_LINUX=\"$(cat /etc/extra)\"\n"});
    EXPECT_FALSE(u.view().uncertain.empty());
    auto w = grub({"if true; then\nGRUB_CMDLINE_LINUX=\"a\"\nfi\n"});
    EXPECT_FALSE(w.view().uncertain.empty());
}

TEST(BootParams, CmdlineFilesEntriesAndKernelstub) {
    ParamSet c("cmdline", {{"/etc/kernel/cmdline", Format::cmdline_file,
                            "root=/dev/sda1 intel_iommu=off ro\n"}});
    auto p = find(c.view(), "intel_iommu=off");
    ASSERT_TRUE(p.has_value());
    ASSERT_TRUE(c.remove(*p).ok());
    ASSERT_TRUE(c.append("iommu=pt").ok());
    EXPECT_EQ(c.files()[0].text, "root=/dev/sda1 ro iommu=pt\n");
    ParamSet e0("empty", {{"/etc/kernel/cmdline", Format::cmdline_file, ""}});
    ASSERT_TRUE(e0.append("iommu=pt").ok());
    EXPECT_EQ(e0.files()[0].text, "iommu=pt\n");

    ParamSet e("entry", {{"/boot/loader/entries/a.conf", Format::loader_entry,
                          "title A\nlinux /vmlinuz\noptions root=UUID=1 rw intel_iommu=off\r\n"}});
    p = find(e.view(), "intel_iommu=off");
    ASSERT_TRUE(p.has_value());
    ASSERT_TRUE(e.replace(*p, "intel_iommu=on").ok());
    ASSERT_TRUE(e.append("iommu=pt").ok());
    EXPECT_EQ(e.files()[0].text,
              "title A\nlinux /vmlinuz\noptions root=UUID=1 rw intel_iommu=on iommu=pt\r\n");
    ParamSet n("entry",
               {{"/boot/loader/entries/b.conf", Format::loader_entry, "title B\nlinux /vmlinuz"}});
    ASSERT_TRUE(n.append("iommu=pt").ok());
    EXPECT_EQ(n.files()[0].text, "title B\nlinux /vmlinuz\noptions iommu=pt\n");

    ParamSet k("ks", {{"/etc/kernelstub/configuration", Format::kernelstub_json,
                       "{\n  \"user\": {\n    \"kernel_options\": [\n      \"quiet\",\n      "
                       "\"intel_iommu=off\"\n    ],\n"
                       "    \"esp_path\": \"/boot/efi\"\n  }\n}"}});
    p = find(k.view(), "intel_iommu=off");
    ASSERT_TRUE(p.has_value());
    ASSERT_TRUE(k.replace(*p, "intel_iommu=on").ok());
    ASSERT_TRUE(k.append("iommu=pt").ok());
    EXPECT_EQ(k.files()[0].text, "{\n  \"user\": {\n    \"kernel_options\": [\n      \"quiet\",\n  "
                                 "    \"intel_iommu=on\",\n      \"iommu=pt\"\n"
                                 "    ],\n    \"esp_path\": \"/boot/efi\"\n  }\n}");
    ParamSet bad("ks", {{"/etc/kernelstub/configuration", Format::kernelstub_json, "{not json"}});
    EXPECT_FALSE(bad.view().uncertain.empty());
}

TEST(BootPlan, ConflictsReplacedWhereTheyDecideRemovedElsewhere) {
    auto s = grub({"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=off iommu=pt\"\n"
                   "GRUB_CMDLINE_LINUX=\"intel_iommu=off iommu=off\"\n"});
    auto plan = plan_goal({s}, Goal{Action::enable, Platform::intel, true});
    ASSERT_TRUE(plan.ok()) << plan.error().describe();
    ASSERT_EQ(plan->edits.size(), 1u);
    // The last intel_iommu=off decides and becomes intel_iommu=on; the other one goes, and so
    // does iommu=off, since iommu=pt is there already.
    EXPECT_EQ(plan->edits[0].after, "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"\n"
                                    "GRUB_CMDLINE_LINUX=\"\"\n");
    auto c = interpret(tokenize(plan->cmdlines[0].after));
    EXPECT_TRUE(meets(c, Goal{Action::enable, Platform::intel, true}));
}

TEST(BootPlan, GoalsPerPlatform) {
    auto s = grub({"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet amd_iommu=off intel_iommu=off\"\n"});
    auto amd = plan_goal({s}, Goal{Action::enable, Platform::amd, true});
    ASSERT_TRUE(amd.ok());
    EXPECT_EQ(amd->cmdlines[0].after, "quiet iommu=pt");
    auto nopt = plan_goal({s}, Goal{Action::enable, Platform::amd, false});
    ASSERT_TRUE(nopt.ok());
    EXPECT_EQ(nopt->cmdlines[0].after, "quiet");
    auto off =
        plan_goal({grub({"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on,sm_on iommu=pt\"\n"})},
                  Goal{Action::disable, Platform::intel, false});
    ASSERT_TRUE(off.ok());
    EXPECT_EQ(off->cmdlines[0].after, "quiet intel_iommu=off,sm_on iommu=pt");
    auto amd_off = plan_goal({grub({"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"})},
                             Goal{Action::disable, Platform::amd, false});
    ASSERT_TRUE(amd_off.ok());
    EXPECT_EQ(amd_off->cmdlines[0].after, "quiet amd_iommu=off");
    auto pt = plan_goal({grub({"GRUB_CMDLINE_LINUX=\"iommu.passthrough=0 intel_iommu=on\"\n"})},
                        Goal{Action::enable, Platform::intel, true});
    ASSERT_TRUE(pt.ok());
    EXPECT_EQ(pt->cmdlines[0].after, "iommu.passthrough=1 intel_iommu=on");
}

TEST(BootPlan, IdempotentAndRefusesWhatItCannotRead) {
    auto s = grub({"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"\n"});
    auto again = plan_goal({s}, Goal{Action::enable, Platform::intel, true});
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->empty());
    auto cond =
        plan_goal({grub({"if [ -e /x ]; then\nGRUB_CMDLINE_LINUX=\"intel_iommu=off\"\nfi\n"})},
                  Goal{Action::enable, Platform::intel, true});
    ASSERT_FALSE(cond.ok());
    EXPECT_NE(cond.error().message.find("condition"), std::string::npos) << cond.error().message;
    auto expr = plan_goal({grub({"X=intel_iommu=off\nGRUB_CMDLINE_LINUX=\"$X\"\n"})},
                          Goal{Action::enable, Platform::intel, true});
    ASSERT_FALSE(expr.ok());
}

TEST(BootPlan, InverseUndoesOnlyVfioctlsParameters) {
    auto s = grub({"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=off amd_iommu=off\"\n"});
    auto plan = plan_goal({s}, Goal{Action::enable, Platform::intel, true});
    ASSERT_TRUE(plan.ok());
    std::string edited = plan->edits[0].after;
    EXPECT_EQ(edited, "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"\n");
    // The user adds their own parameter and a comment afterwards.
    std::string user = "# mine\n" + edited.substr(0, edited.size() - 2) + " mitigations=off\"\n";
    auto inv = plan_inverse({grub({user})}, plan->changes);
    ASSERT_TRUE(inv.ok());
    ASSERT_EQ(inv->edits.size(), 1u);
    EXPECT_EQ(inv->edits[0].after, "# mine\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=off "
                                   "mitigations=off amd_iommu=off\"\n");
}

TEST(BootDiff, UnifiedDiffAppliesWithPatch) {
    const std::string a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n";
    const std::string b = "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\nfifteen";
    std::string d = unified_diff(a, b, "/etc/default/grub");
    EXPECT_EQ(d.substr(0, 46), "--- a/etc/default/grub\n+++ b/etc/default/grub\n");
    EXPECT_NE(d.find("@@ -1,6 +1,6 @@\n 1\n 2\n-3\n+three\n"), std::string::npos) << d;
    EXPECT_NE(d.find("\\ No newline at end of file"), std::string::npos) << d;
    EXPECT_EQ(unified_diff(a, a, "/x"), "");
    // patch(1) turns the old text into the new one with it.
    fixture::TempDir t;
    boottest::spit(t.path / "etc/default/grub", a);
    boottest::spit(t.path / "d.patch", d);
    auto o = fixture::run_program({"/usr/bin/patch", "-s", "-p1", "-d", t.path.string(), "-i",
                                   (t.path / "d.patch").string()});
    ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
    EXPECT_EQ(boottest::slurp(t.path / "etc/default/grub"), b);
    // CRLF lines and an insertion at the top.
    std::string c = "x\r\ny\r\n", e = "new\r\nx\r\ny\r\n";
    std::string d2 = unified_diff(c, e, "/f");
    EXPECT_NE(d2.find("@@ -1,2 +1,3 @@\n+new\r\n x\r\n y\r\n"), std::string::npos) << d2;
    std::string d3 = unified_diff(c, e, "/f", 0);
    EXPECT_NE(d3.find("@@ -0,0 +1 @@\n+new\r\n"), std::string::npos) << d3;
}

namespace {

// n parameters, one a line every 1000 so that line numbers matter.
std::string many_params(size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) {
        s += "p" + std::to_string(i) + "=v";
        s += (i % 1000 == 999) ? '\n' : ' ';
    }
    return s;
}

} // namespace

// Issue #11: 20,000 parameters took 10-22 s and 1 MB over 100 s (every
// parameter's line was counted from the start of its file).
TEST(BootParams, OneMegabyteCommandLineParses) {
    const size_t n = 125000;
    const std::string cmdline = many_params(n); // about 1.1 MB
    ASSERT_GT(cmdline.size(), size_t{1} << 20);

    auto toks = tokenize(cmdline);
    ASSERT_EQ(toks.size(), n);
    EXPECT_EQ(toks.back().key, "p" + std::to_string(n - 1));
    EXPECT_TRUE(interpret(toks).iommu_tokens.empty());

    ParamSet file("cmdline", {{"/etc/kernel/cmdline", Format::cmdline_file, cmdline}});
    auto v = file.view();
    ASSERT_EQ(v.effective.size(), n);
    EXPECT_EQ(v.effective.back().line, n / 1000);
    EXPECT_EQ(v.effective.back().text, "p" + std::to_string(n - 1) + "=v");
    EXPECT_EQ(v.effective[1000].line, 2u);

    std::string entry_text = "title x\noptions " + cmdline;
    for (char& c : entry_text)
        if (c == '\n') c = ' ';
    entry_text[7] = '\n';
    ParamSet entry("entry", {{"/boot/loader/entries/x.conf", Format::loader_entry, entry_text}});
    auto ev = entry.view();
    ASSERT_EQ(ev.effective.size(), n);
    EXPECT_EQ(ev.effective.back().line, 2u);

    std::string one_line = cmdline;
    for (char& c : one_line)
        if (c == '\n') c = ' ';
    auto g = grub({"GRUB_CMDLINE_LINUX_DEFAULT=\"" + one_line + "\"\n"});
    auto gv = g.view();
    ASSERT_EQ(gv.effective.size(), n);
    EXPECT_TRUE(gv.uncertain.empty());
    EXPECT_EQ(gv.effective.back().text, "p" + std::to_string(n - 1) + "=v");
    EXPECT_TRUE(gv.effective.back().editable);
    ASSERT_TRUE(g.append("intel_iommu=on").ok());
    EXPECT_EQ(g.view().effective.size(), n + 1);
}

// "A=$A$A" doubles a value each line: evaluation stops at a size linear in
// the file instead of running out of memory, and says it did.
TEST(BootParams, ExpansionIsBounded) {
    std::string text = "GRUB_CMDLINE_LINUX=\"quiet splash\"\n";
    for (int i = 0; i < 200; ++i)
        text += "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX$GRUB_CMDLINE_LINUX\"\n";
    auto v = grub({text}).view();
    EXPECT_LE(v.cmdline.size(), 16 * text.size() + (size_t{1} << 20));
    ASSERT_FALSE(v.uncertain.empty());
    EXPECT_NE(v.uncertain.back().find("expands to more text than vfioctl evaluates"),
              std::string::npos);
    ShellFile f = parse_shell(text);
    ShellEnv env = evaluate({&f});
    EXPECT_TRUE(env.cut);
    EXPECT_LE(value_text(env.vars["GRUB_CMDLINE_LINUX"]).size(), expansion_budget({&f}));
}
