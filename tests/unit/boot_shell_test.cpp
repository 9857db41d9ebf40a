// The shell-fragment reader behind /etc/default/grub: assignments, quoting,
// references, exports, conditions, CRLF; its evaluation checked against
// /bin/sh itself.

#include "boot/shell.hpp"
#include "boot_test_helpers.hpp"

#include <gtest/gtest.h>

using namespace vfioctl;
using namespace vfioctl::boot;

namespace {

std::string eval(const std::string& text, const std::string& var) {
    ShellFile f = parse_shell(text);
    ShellEnv env = evaluate({&f});
    auto it = env.vars.find(var);
    return it == env.vars.end() ? "" : value_text(it->second);
}

// What /bin/sh says var is after sourcing text.
std::string sh_eval(const std::string& text, const std::string& var) {
    fixture::TempDir d;
    auto p = d.path / "f";
    boottest::spit(p, text);
    auto o = fixture::run_program(
        {"/bin/sh", "-c", ". \"$1\"; printf %s \"$" + var + "\"", "sh", p.string()});
    return o.out;
}

} // namespace

TEST(BootShell, AssignmentsWithEveryQuoting) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"GRUB_CMDLINE_LINUX=\"quiet splash\"\n", "quiet splash"},
        {"GRUB_CMDLINE_LINUX='quiet splash'\n", "quiet splash"},
        {"GRUB_CMDLINE_LINUX=quiet\n", "quiet"},
        {"GRUB_CMDLINE_LINUX=\n", ""},
        {"GRUB_CMDLINE_LINUX=\"a \"'b c'd\n", "a b cd"},
        {"GRUB_CMDLINE_LINUX=\"x=\\\"1 2\\\" y\"\n", "x=\"1 2\" y"},
        {"GRUB_CMDLINE_LINUX=\"a\\\nb\"\n", "ab"},
        {"GRUB_CMDLINE_LINUX=\"a\n  b\"\n", "a\n  b"},
        {"export GRUB_CMDLINE_LINUX=\"e x\"\n", "e x"},
        {"  GRUB_CMDLINE_LINUX=\"indented\" # comment\n", "indented"},
        {"A=1; GRUB_CMDLINE_LINUX=\"$A two\"\n", "1 two"},
        {"A=1\nGRUB_CMDLINE_LINUX=\"${A}x\"\n", "1x"},
        {"GRUB_CMDLINE_LINUX=\"a\"\nGRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX b\"\n", "a b"},
        {"GRUB_CMDLINE_LINUX='$literal'\n", "$literal"},
        {"GRUB_CMDLINE_LINUX=\"last\" \nGRUB_CMDLINE_LINUX=\"wins\"\n", "wins"},
        {"#GRUB_CMDLINE_LINUX=\"commented\"\nGRUB_CMDLINE_LINUX=\"real\"\n", "real"},
        {"GRUB_CMDLINE_LINUX=\"crlf\"\r\nGRUB_X=1\r\n", "crlf"},
    };
    for (const auto& [text, want] : cases) {
        EXPECT_EQ(eval(text, "GRUB_CMDLINE_LINUX"), want) << text;
        // The shell keeps a CR before LF in the value; vfioctl reads it as the line end it is
        // (whitespace either way on a kernel command line).
        std::string sh = sh_eval(text, "GRUB_CMDLINE_LINUX");
        if (text.find("\r\n") != std::string::npos && !sh.empty() && sh.back() == '\r')
            sh.pop_back();
        EXPECT_EQ(sh, want) << "the shell disagrees with the test: " << text;
    }
}

TEST(BootShell, UnitsKeepQuotingApartFromValue) {
    ShellFile f =
        parse_shell("GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT intel_iommu=off\"\n");
    ASSERT_EQ(f.assignments.size(), 1u);
    const auto& u = f.assignments[0].units;
    ASSERT_EQ(u.size(), 4u);
    EXPECT_EQ(u[0].kind, WordUnit::quote);
    EXPECT_EQ(u[1].kind, WordUnit::ref);
    EXPECT_EQ(u[1].text, "GRUB_CMDLINE_LINUX_DEFAULT");
    EXPECT_EQ(u[2].kind, WordUnit::literal);
    EXPECT_EQ(u[2].text, " intel_iommu=off");
    EXPECT_EQ(u[2].context, '"');
    EXPECT_EQ(u[3].kind, WordUnit::quote);
}

TEST(BootShell, OriginsPointAtTheSource) {
    const std::string a = "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n";
    const std::string b = "GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT splash\"\n";
    ShellFile fa = parse_shell(a), fb = parse_shell(b);
    ShellEnv env = evaluate({&fa, &fb});
    const Value& v = env.vars["GRUB_CMDLINE_LINUX_DEFAULT"];
    ASSERT_EQ(value_text(v), "quiet splash");
    EXPECT_EQ(v[0].origin.file, 0);
    EXPECT_EQ(a.substr(v[0].origin.offset, 5), "quiet");
    EXPECT_EQ(v[6].origin.file, 1);
    EXPECT_EQ(b.substr(v[6].origin.offset, 6), "splash");
    EXPECT_TRUE(v[6].origin.literal);
}

TEST(BootShell, ConditionsPrefixesAndCommandsAreMarked) {
    ShellFile f = parse_shell(
        "if [ -e /x ]; then\n  GRUB_CMDLINE_LINUX=\"a\"\nfi\nGRUB_CMDLINE_LINUX_DEFAULT=b true\n"
        "[ -e /y ] && GRUB_TIMEOUT=3\nGRUB_DISTRIBUTOR=`lsb_release -i -s`\n"
        "case x in x) GRUB_X=1 ;; esac\nGRUB_LAST=ok\n");
    std::map<std::string, const Assignment*> by;
    for (const auto& a : f.assignments)
        by[a.name] = &a;
    ASSERT_TRUE(by.count("GRUB_CMDLINE_LINUX"));
    EXPECT_TRUE(by["GRUB_CMDLINE_LINUX"]->conditional);
    ASSERT_TRUE(by.count("GRUB_CMDLINE_LINUX_DEFAULT"));
    EXPECT_TRUE(by["GRUB_CMDLINE_LINUX_DEFAULT"]->prefix);
    ASSERT_TRUE(by.count("GRUB_TIMEOUT"));
    EXPECT_TRUE(by["GRUB_TIMEOUT"]->conditional);
    ASSERT_TRUE(by.count("GRUB_DISTRIBUTOR"));
    EXPECT_EQ(by["GRUB_DISTRIBUTOR"]->units.front().kind, WordUnit::opaque);
    ASSERT_TRUE(by.count("GRUB_LAST"));
    EXPECT_FALSE(by["GRUB_LAST"]->conditional);
    EXPECT_TRUE(f.complex);
}

TEST(BootShell, CommentedAssignmentsAndLineEnds) {
    ShellFile f = parse_shell("# intro\r\n#GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"\r\n# export "
                              "GRUB_CMDLINE_LINUX=\"\"\r\n");
    EXPECT_EQ(f.eol, "\r\n");
    ASSERT_EQ(f.commented.size(), 2u);
    EXPECT_EQ(f.commented[0].name, "GRUB_CMDLINE_LINUX_DEFAULT");
    EXPECT_EQ(f.commented[0].line, 2u);
    EXPECT_EQ(f.commented[1].name, "GRUB_CMDLINE_LINUX");
}

TEST(BootShell, UnterminatedQuoteIsAProblemNotACrash) {
    ShellFile f = parse_shell("GRUB_CMDLINE_LINUX=\"quiet\nGRUB_TIMEOUT=5\n");
    EXPECT_FALSE(f.problems.empty());
    ShellFile g = parse_shell("GRUB_CMDLINE_LINUX='x");
    EXPECT_FALSE(g.problems.empty());
    ShellFile h = parse_shell("X=${unterminated");
    EXPECT_FALSE(h.problems.empty());
}

TEST(BootShell, SafeInContext) {
    EXPECT_TRUE(safe_in_context("intel_iommu=on", '"'));
    EXPECT_TRUE(safe_in_context("intel_iommu=on", '\''));
    EXPECT_TRUE(safe_in_context("intel_iommu=on", 0));
    EXPECT_FALSE(safe_in_context("a$b", '"'));
    EXPECT_FALSE(safe_in_context("it's", '\''));
    EXPECT_FALSE(safe_in_context("a b", 0));
}

// Issue #11: a last line ending in a lone '\r' (no '\n') made the reader
// loop forever. That '\r' ends the line, as "\r\n" does.
TEST(BootShell, LoneCarriageReturnAtTheEndEndsTheLine) {
    {
        const std::string text = "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=off\"\r";
        ShellFile f = parse_shell(text);
        ASSERT_EQ(f.assignments.size(), 1u);
        EXPECT_EQ(f.assignments[0].word_end, text.size() - 1);
        EXPECT_EQ(f.assignments[0].line_end, text.size() - 1);
        EXPECT_TRUE(f.problems.empty());
        EXPECT_FALSE(f.complex);
        EXPECT_EQ(eval(text, "GRUB_CMDLINE_LINUX_DEFAULT"), "quiet intel_iommu=off");
    }
    EXPECT_EQ(eval("GRUB_TIMEOUT=5\r", "GRUB_TIMEOUT"), "5");
    EXPECT_EQ(eval("export A=1 \r", "A"), "1");
    EXPECT_EQ(eval("A=1\r\nB=2\r", "B"), "2");
    {
        ShellFile f = parse_shell("echo hi\r"); // a command word, then the lone '\r'
        EXPECT_TRUE(f.complex);
        EXPECT_TRUE(f.assignments.empty());
    }
    {
        ShellFile f = parse_shell("A=1; true \r");
        ASSERT_EQ(f.assignments.size(), 1u);
        EXPECT_FALSE(f.assignments[0].prefix);
    }
    {
        ShellFile f = parse_shell("#GRUB_CMDLINE_LINUX=\"\"\r");
        ASSERT_EQ(f.commented.size(), 1u);
        EXPECT_EQ(f.commented[0].line_end, 22u);
    }
    EXPECT_TRUE(parse_shell("\r").assignments.empty());
    EXPECT_TRUE(parse_shell("\r\r\r").assignments.empty());
    EXPECT_TRUE(parse_shell("if true; then A=1; fi <\r").complex);
}

// Every byte sequence is read to the end: the reader always moves forward.
TEST(BootShell, AnyBytesAreReadToTheEnd) {
    const std::vector<std::string> inputs = {
        std::string("A=\0B\n", 5),
        "A=\xff\xfe\x80\n",
        "(",
        ")",
        "<",
        ">",
        "<<\r",
        "A=$(",
        "A=${",
        "A=`",
        "A=\"",
        "A='",
        "A=\\",
        "\\\r",
        "f() { A=1; }\r",
        "A=1 ( \r",
        std::string(1, '\0'),
    };
    for (const auto& in : inputs) {
        ShellFile f = parse_shell(in);
        ShellEnv env = evaluate({&f});
        EXPECT_LE(f.assignments.size(), in.size()) << in;
    }
}
