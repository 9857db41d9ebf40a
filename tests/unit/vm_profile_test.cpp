// VM profiles: TOML keys, types, errors with file and line, flag overrides.

#include "fixture/fixture.hpp"
#include "vm/profile.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

using namespace vfioctl;

TEST(VmProfile, ReadsEveryKey) {
    auto p = vm::parse_profile(R"(
memory = "8G"
cpus = 4
machine = "q35"
accel = "tcg"
share_host_root = true
share = "virtiofs"
ssh_port = 2222
console_log = "/var/log/dev.log"
gpus = ["8a:00.0", "10de:2336"]
extra_args = ["-device", "virtio-rng-pci"]
[boot]
kernel = "/boot/vmlinuz"
initrd = "/boot/initrd.img"
append = "console=ttyS0"
)",
                               "/etc/vfioctl/vms/dev.toml", "dev");
    ASSERT_TRUE(p.ok()) << p.error().describe();
    EXPECT_EQ(p->memory_mib, 8192u);
    EXPECT_EQ(p->cpus, 4);
    EXPECT_EQ(p->accel, vm::Accel::tcg);
    EXPECT_TRUE(p->share_host_root);
    EXPECT_EQ(p->share, vm::ShareMode::virtiofs);
    EXPECT_EQ(p->ssh_port.value_or(0), 2222);
    EXPECT_EQ(p->boot.kernel, "/boot/vmlinuz");
    EXPECT_EQ(p->boot.append, "console=ttyS0");
    EXPECT_EQ(p->gpus.size(), 2u);
    EXPECT_EQ(p->extra_args.at(1), "virtio-rng-pci");
    EXPECT_EQ(p->source, "/etc/vfioctl/vms/dev.toml");
}

TEST(VmProfile, UnknownKeyNamesFileLineAndKey) {
    auto p = vm::parse_profile("cpus = 2\nmemroy = 4096\n", "dev.toml", "dev");
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().message, "dev.toml:2: unknown key 'memroy'");
}

TEST(VmProfile, UnknownBootKeyAndWrongTypes) {
    // Each profile text and the start of the error it must get.
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"[boot]\nkernel = \"k\"\nbzimage = \"x\"\n", "f.toml:3: unknown key 'boot.bzimage'"},
        {"cpus = \"four\"\n", "f.toml:1: key 'cpus' must be an integer, not a string"},
        {"gpus = \"8a:00.0\"\n", "f.toml:1: key 'gpus' must be an array of strings"},
        {"ssh_port = 70000\n", "f.toml:1: key 'ssh_port' must be between 1 and 65535"},
        {"accel = \"hvf\"\n", "f.toml:1: bad accelerator 'hvf'"},
        {"share = \"nfs\"\n", "f.toml:1: bad share 'nfs' (use auto, 9p or virtiofs)"},
        {"share = true\n", "f.toml:1: key 'share' must be a string, not a boolean"},
    };
    for (const auto& [text, want] : cases) {
        auto p = vm::parse_profile(text, "f.toml", "f");
        ASSERT_FALSE(p.ok()) << text;
        EXPECT_EQ(p.error().message.rfind(want, 0), 0u) << p.error().message;
    }
    auto g = vm::parse_profile("share = true\n", "f.toml", "f");
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.error().hint.find("share_host_root share ssh_port"), std::string::npos)
        << g.error().hint;
}

TEST(VmProfile, SyntaxErrorNamesTheLine) {
    auto p = vm::parse_profile("cpus = 2\nmemory = \n", "f.toml", "f");
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().message.rfind("f.toml:2: ", 0), 0u) << p.error().message;
}

TEST(VmProfile, MemorySizes) {
    EXPECT_EQ(vm::parse_memory("2048").value(), 2048u);
    EXPECT_EQ(vm::parse_memory("4G").value(), 4096u);
    EXPECT_EQ(vm::parse_memory("4GiB").value(), 4096u);
    EXPECT_EQ(vm::parse_memory("512m").value(), 512u);
    EXPECT_FALSE(vm::parse_memory("0").ok());
    EXPECT_FALSE(vm::parse_memory("lots").ok());
}

TEST(VmProfile, FlagsOverrideAndAdd) {
    vm::Profile p;
    p.boot.disk = "/img.raw";
    p.gpus = {"8a:00.0"};
    vm::ProfileOverrides o;
    o.kernel = "/k";
    o.memory = "1G";
    o.gpus = {"8b:00.0"};
    ASSERT_TRUE(vm::apply_overrides(p, o).ok());
    EXPECT_EQ(p.boot.kernel, "/k");
    EXPECT_TRUE(p.boot.disk.empty());
    EXPECT_EQ(p.memory_mib, 1024u);
    EXPECT_EQ(p.gpus, (std::vector<std::string>{"8a:00.0", "8b:00.0"}));
    o = {};
    o.share = "9p";
    ASSERT_TRUE(vm::apply_overrides(p, o).ok());
    EXPECT_EQ(p.share, vm::ShareMode::ninep);
    o.share = "nfs";
    EXPECT_FALSE(vm::apply_overrides(p, o).ok());
    o = {};
    o.accel = "fast";
    EXPECT_FALSE(vm::apply_overrides(p, o).ok());
}

TEST(VmProfile, LoadsFromEtcUnderTheRootAndSaysWhereItLooked) {
    fixture::TempDir dir;
    host::Host h(dir.path);
    ASSERT_TRUE(h.make_dirs("/etc/vfioctl/vms").ok());
    ASSERT_TRUE(h.write_atomic("/etc/vfioctl/vms/dev.toml", "cpus = 3\n").ok());
    ::setenv("XDG_CONFIG_HOME", (dir.path / "nohome").c_str(), 1);
    auto p = vm::load_profile(h, "dev", false);
    ASSERT_TRUE(p.ok()) << p.error().describe();
    EXPECT_EQ(p->cpus, 3);
    EXPECT_EQ(p->source, "/etc/vfioctl/vms/dev.toml");
    auto missing = vm::load_profile(h, "nope", false);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().hint.find("/etc/vfioctl/vms/nope.toml"), std::string::npos);
    EXPECT_TRUE(vm::load_profile(h, "nope", true).ok());
    ::unsetenv("XDG_CONFIG_HOME");
}

TEST(VmProfile, Names) {
    EXPECT_TRUE(vm::check_vm_name("dev-1.x").ok());
    EXPECT_FALSE(vm::check_vm_name("../etc").ok());
    EXPECT_FALSE(vm::check_vm_name("").ok());
    EXPECT_FALSE(vm::check_vm_name(".hidden").ok());
}

// The example the package installs as /etc/vfioctl/vms/example.toml parses
// and says what it claims to.
TEST(VmProfile, TheShippedExampleParses) {
    const std::string path = std::string(VFIOCTL_SOURCE_DIR) + "/dist/vms/example.toml";
    std::ifstream in(path);
    ASSERT_TRUE(in) << path;
    std::stringstream text;
    text << in.rdbuf();
    auto p = vm::parse_profile(text.str(), path, "example");
    ASSERT_TRUE(p.ok()) << p.error().describe();
    EXPECT_EQ(p->memory_mib, 4096u);
    EXPECT_EQ(p->boot.kernel, "/vmlinuz");
    EXPECT_EQ(p->boot.initrd, "/initrd.img");
    EXPECT_TRUE(p->share_host_root);
    EXPECT_TRUE(p->gpus.empty());
}
