#pragma once
// Shared by the boot_*_test.cpp files: temporary roots made from the corpus
// in tests/corpus/boot, the shell's own view of an edited GRUB file, and
// running vfioctl as another user, under a file size limit or on a terminal.

#include "boot/params.hpp"
#include "boot/setup.hpp"
#include "fixture/fixture.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <poll.h>
#include <pty.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace vfioctl::boottest {

namespace fs = std::filesystem;

inline fs::path corpus_dir() {
    return fs::path(VFIOCTL_SOURCE_DIR) / "tests/corpus/boot";
}

// The corpus cases, by directory name.
inline std::vector<std::string> corpus_cases() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(corpus_dir()))
        if (e.is_directory()) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

inline std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void spit(const fs::path& p, std::string_view data) {
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << data;
}

// A temporary root holding a copy of a corpus case, with the running
// command line and the firmware's IOMMU table.
struct CaseRoot {
    fixture::TempDir dir;
    std::string root;

    explicit CaseRoot(const std::string& name,
                      std::string running = "BOOT_IMAGE=/boot/vmlinuz root=UUID=1 ro quiet",
                      const char* table = "DMAR") {
        root = dir.path.string();
        fs::copy(corpus_dir() / name, dir.path,
                 fs::copy_options::recursive | fs::copy_options::copy_symlinks);
        spit(dir.path / "proc/cmdline", running + "\n");
        if (table) spit(dir.path / "sys/firmware/acpi/tables" / table, "");
        ::chmod(root.c_str(), 0755);
    }
    fs::path path(std::string_view host_path) const {
        return dir.path / std::string(host_path).substr(1);
    }
    std::string read(std::string_view host_path) const { return slurp(path(host_path)); }
    void write(std::string_view host_path, std::string_view data) const {
        spit(path(host_path), data);
    }
};

// What /bin/sh makes of GRUB files: sources them in order (the first, then
// the drop-ins, as grub-mkconfig does) and prints the command line 10_linux
// builds, "$GRUB_CMDLINE_LINUX $GRUB_CMDLINE_LINUX_DEFAULT".
inline std::string sh_effective(const std::vector<std::string>& full_paths) {
    std::vector<std::string> argv = {
        "/bin/sh", "-c",
        "f=$1; shift; . \"$f\"; for d; do . \"$d\"; done; "
        "printf %s \"$GRUB_CMDLINE_LINUX $GRUB_CMDLINE_LINUX_DEFAULT\"",
        "sh"};
    for (const auto& p : full_paths)
        argv.push_back(p);
    auto o = fixture::run_program(argv, 20000);
    return o.out;
}

// The parameters of a command line, split on whitespace (CR included).
inline std::vector<std::string> words(std::string_view s) {
    return util::split_ws(s);
}

// The shell's parameters for the GRUB set of a root.
inline std::vector<std::string> sh_params(const CaseRoot& r, const boot::ParamSet& set) {
    std::vector<std::string> paths;
    for (const auto& f : set.files())
        paths.push_back(r.path(f.path).string());
    return words(sh_effective(paths));
}

// What a program run by run_with left behind.
struct Ran {
    int exit_code = -1;
    int signal = 0;
    std::string out;
    std::string err;
};

// Runs argv (no shell) with stdout and stderr on pipes (no file size limit
// applies to them), after prepare() in the child (drop privileges, set
// limits); stdin /dev/null.
inline Ran run_with(const std::vector<std::string>& argv, const std::function<void()>& prepare) {
    int outp[2], errp[2];
    if (::pipe(outp) != 0 || ::pipe(errp) != 0) return {};
    pid_t pid = ::fork();
    if (pid == 0) {
        int n = ::open("/dev/null", O_RDONLY);
        ::dup2(n, 0);
        ::dup2(outp[1], 1);
        ::dup2(errp[1], 2);
        ::close(outp[0]);
        ::close(errp[0]);
        prepare();
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(outp[1]);
    ::close(errp[1]);
    Ran r;
    pollfd fds[2] = {{outp[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
    std::string* sinks[2] = {&r.out, &r.err};
    int open_fds = 2;
    char buf[4096];
    while (open_fds > 0) {
        if (::poll(fds, 2, 60000) <= 0) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
            ssize_t k = ::read(fds[i].fd, buf, sizeof buf);
            if (k > 0) {
                sinks[i]->append(buf, static_cast<size_t>(k));
            } else {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) ::close(f.fd);
    int st = 0;
    ::waitpid(pid, &st, 0);
    if (WIFEXITED(st)) r.exit_code = WEXITSTATUS(st);
    if (WIFSIGNALED(st)) r.signal = WTERMSIG(st);
    return r;
}

// Runs argv on a new pseudo-terminal, typing input; returns everything the
// terminal showed and the exit code.
inline Ran run_on_tty(const std::vector<std::string>& argv, const std::string& input) {
    int master = -1;
    pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
    if (pid == 0) {
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    Ran r;
    if (pid < 0) return r;
    // Answer once the question is on the screen.
    std::string seen;
    bool typed = false;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(master, buf, sizeof buf);
        if (n <= 0) break;
        seen.append(buf, static_cast<size_t>(n));
        if (!typed && seen.find("[y/N]") != std::string::npos) {
            (void)!::write(master, input.data(), input.size());
            typed = true;
        }
    }
    ::close(master);
    int st = 0;
    ::waitpid(pid, &st, 0);
    if (WIFEXITED(st)) r.exit_code = WEXITSTATUS(st);
    r.out = seen;
    return r;
}

} // namespace vfioctl::boottest
