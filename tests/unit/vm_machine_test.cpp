// vm/machine: the VM record goes through the one atomic file write (mode
// 0600, no temporary file left), and run directories through make_dirs_at.

#include "fixture/fixture.hpp"
#include "vm/machine.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace vfioctl;
namespace fs = std::filesystem;

namespace {

unsigned mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
}

TEST(VmRecord, WrittenAtomicallyWithMode0600AndNoTemporaryLeft) {
    fixture::TempDir tmp;
    vm::VmRecord r;
    r.name = "dev";
    r.pid = 4242;
    r.accel = "tcg";
    r.devices = {"0000:01:00.0"};
    r.device_ids = {"10de:1eb8"};
    const std::string dir = tmp.path.string();
    ASSERT_TRUE(vm::write_record(dir, r).ok());
    EXPECT_EQ(mode_of(tmp.path / "vm.json"), 0600u);
    // A second write replaces the first whole.
    r.pid = 4343;
    ASSERT_TRUE(vm::write_record(dir, r).ok());
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(tmp.path))
        names.push_back(e.path().filename().string());
    EXPECT_EQ(names, std::vector<std::string>{"vm.json"});
    auto back = vm::read_record(dir);
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(back->pid, 4343);
    EXPECT_EQ(back->devices, r.devices);
}

TEST(VmRecord, AMissingDirectoryIsAnErrorThatSaysWhat) {
    fixture::TempDir tmp;
    auto st = vm::write_record((tmp.path / "none").string(), vm::VmRecord{});
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message, "cannot write the VM record");
}

TEST(VmRunDir, MadeWithParentsAndMode0700) {
    fixture::TempDir tmp;
    const fs::path dir = tmp.path / "a" / "b" / "dev";
    ASSERT_TRUE(vm::make_run_dir(dir.string()).ok());
    EXPECT_TRUE(fs::is_directory(dir));
    EXPECT_EQ(mode_of(dir), 0700u);
    // Again: an existing one is fine.
    EXPECT_TRUE(vm::make_run_dir(dir.string()).ok());
}

TEST(VmRunDir, AFileInTheWayIsAnError) {
    fixture::TempDir tmp;
    { std::ofstream(tmp.path / "file") << "x"; }
    auto st = vm::make_run_dir((tmp.path / "file" / "dev").string());
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message, "cannot create the run directory");
}

} // namespace
