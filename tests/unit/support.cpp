#include "support.hpp"

#include <csignal>
#include <cstdlib>
#include <gtest/gtest.h>
#include <regex>
#include <stdexcept>
#include <unistd.h>

namespace vfioctl::test {

namespace {
std::string joined(const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : args)
        s += " " + a;
    return s;
}
} // namespace

const std::vector<std::string>& host_names() {
    static const std::vector<std::string> names = {
        "seed_before",    "seed_before_held", "seed_after", "amd",          "shared_group",
        "critical_group", "firmware_off",     "pvm",        "vfio_missing", "dgx"};
    return names;
}

const fixture::HostTree& shared_host(const std::string& name) {
    static std::map<std::string, fixture::HostTree> built;
    auto it = built.find(name);
    if (it != built.end()) return it->second;
    fixture::HostTree t = name == "seed_before"        ? fixture::seed_before(false)
                          : name == "seed_before_held" ? fixture::seed_before(true)
                          : name == "seed_after"       ? fixture::seed_after()
                          : name == "amd"              ? fixture::amd_host()
                          : name == "shared_group"     ? fixture::shared_group_host()
                          : name == "critical_group"   ? fixture::critical_group_host()
                          : name == "firmware_off"     ? fixture::firmware_off_host()
                          : name == "pvm"              ? fixture::pvm_host()
                          : name == "vfio_missing"     ? fixture::vfio_missing_host()
                          : name == "dgx"              ? fixture::dgx_host()
                                          : throw std::invalid_argument("no fixture " + name);
    return built.emplace(name, std::move(t)).first->second;
}

const fixture::Outcome& shared_run(const std::string& name, const std::vector<std::string>& args) {
    static std::map<std::pair<std::string, std::vector<std::string>>, fixture::Outcome> runs;
    auto key = std::make_pair(name, args);
    auto it = runs.find(key);
    if (it != runs.end()) return it->second;
    return runs.emplace(key, run_on(shared_host(name), args)).first->second;
}

bool has_sanitizer_report(const std::string& text) {
    return text.find("ERROR: AddressSanitizer") != std::string::npos ||
           text.find("ERROR: LeakSanitizer") != std::string::npos ||
           text.find("runtime error:") != std::string::npos;
}

namespace {
fixture::Outcome run_checked(const std::vector<std::string>& args, bool libpci_fatal,
                             const RunOptions& opt) {
    // The child must refuse live writes just as this test binary does.
    std::vector<std::string> env = {"VFIOCTL_FORBID_LIVE_WRITES=1"};
    env.insert(env.end(), opt.env.begin(), opt.env.end());
    if (libpci_fatal) {
        const char* asan = std::getenv("ASAN_OPTIONS");
        // Full stacks, so that the suppression sees libpci's frames.
        env.push_back(std::string("ASAN_OPTIONS=") +
                      (asan && *asan ? std::string(asan) + ":" : "") + "fast_unwind_on_malloc=0");
        env.push_back(std::string("LSAN_OPTIONS=suppressions=") + VFIOCTL_SOURCE_DIR +
                      "/tests/unit/libpci-fatal.supp:print_suppressions=0");
    }
    std::vector<std::string> argv = {VFIOCTL_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    fixture::Outcome o = fixture::run_program(argv, opt.timeout_ms, env, opt.stdin_path);
    EXPECT_EQ(o.signal, 0) << "vfioctl" << joined(args) << " died by signal " << o.signal
                           << (o.signal == SIGKILL ? " (killed after the timeout?)" : "") << "\n"
                           << o.err;
    EXPECT_FALSE(has_sanitizer_report(o.err)) << "vfioctl" << joined(args) << ":\n" << o.err;
    EXPECT_NE(o.exit_code, 127) << "vfioctl could not be started: " << VFIOCTL_BINARY;
    return o;
}
} // namespace

fixture::Outcome run_vfioctl(const std::vector<std::string>& args, bool libpci_fatal) {
    return run_checked(args, libpci_fatal, RunOptions{});
}

fixture::Outcome run_vfioctl(const std::vector<std::string>& args, const RunOptions& opt) {
    return run_checked(args, false, opt);
}

fixture::Outcome run_on(const fixture::HostTree& tree, const std::vector<std::string>& args,
                        const RunOptions& opt) {
    std::vector<std::string> all = {"--root", tree.root_str()};
    all.insert(all.end(), args.begin(), args.end());
    return run_vfioctl(all, opt);
}

fixture::Outcome run_on(const fixture::HostTree& tree, const std::vector<std::string>& args,
                        bool libpci_fatal) {
    std::vector<std::string> all = {"--root", tree.root_str()};
    all.insert(all.end(), args.begin(), args.end());
    return run_vfioctl(all, libpci_fatal);
}

nlohmann::json json_of(const fixture::Outcome& o) {
    try {
        return nlohmann::json::parse(o.out);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "stdout is not JSON (" << e.what() << "):\n"
                      << o.out << "\nstderr:\n"
                      << o.err;
        return nullptr;
    }
}

bool any_contains(const nlohmann::json& strings, const std::string& needle) {
    for (const auto& s : strings_of(strings))
        if (s.find(needle) != std::string::npos) return true;
    return false;
}

std::vector<std::string> strings_of(const nlohmann::json& j) {
    std::vector<std::string> out;
    if (!j.is_array()) return out;
    for (const auto& e : j)
        if (e.is_string()) out.push_back(e.get<std::string>());
    return out;
}

std::string lspci_path() {
    for (const char* p : {"/usr/bin/lspci", "/usr/sbin/lspci", "/bin/lspci", "/sbin/lspci"})
        if (::access(p, X_OK) == 0) return p;
    return "";
}

std::map<std::string, LspciDevice> lspci_devices(const std::string& root) {
    std::vector<std::string> argv = {lspci_path(), "-Dnnk"};
    if (root != "/") {
        argv.insert(argv.end(), {"-A", "linux-sysfs", "-O", "sysfs.path=" + root + "/sys/bus/pci"});
    }
    fixture::Outcome o = fixture::run_program(argv);
    EXPECT_EQ(o.exit_code, 0) << "lspci failed:\n" << o.err;
    // "0000:8a:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100] [10de:2336] (rev a1)"
    static const std::regex line_re(
        R"(^([0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) .*? \[([0-9a-f]{4})\]: (.*) \[([0-9a-f]{4}:[0-9a-f]{4})\]( \(rev [0-9a-f]{2}\))?( \(prog-if .*\))?$)");
    std::map<std::string, LspciDevice> out;
    LspciDevice* cur = nullptr;
    size_t start = 0;
    while (start < o.out.size()) {
        size_t end = o.out.find('\n', start);
        if (end == std::string::npos) end = o.out.size();
        std::string line = o.out.substr(start, end - start);
        start = end + 1;
        if (line.empty()) continue;
        if (line[0] != '\t') {
            std::smatch m;
            if (!std::regex_match(line, m, line_re)) {
                ADD_FAILURE() << "lspci line not understood: " << line;
                cur = nullptr;
                continue;
            }
            LspciDevice d{m[1], m[2], m[3], m[4], ""};
            cur = &(out[d.address] = d);
        } else if (cur && line.rfind("\tKernel driver in use: ", 0) == 0) {
            cur->driver = line.substr(std::string("\tKernel driver in use: ").size());
        }
    }
    return out;
}

std::map<std::string, nlohmann::json> vfioctl_devices(const nlohmann::json& groups) {
    std::map<std::string, nlohmann::json> out;
    if (!groups.is_object()) return out;
    for (const auto& g : groups.value("groups", nlohmann::json::array()))
        for (const auto& d : g.value("devices", nlohmann::json::array()))
            EXPECT_TRUE(out.emplace(d.value("address", ""), d).second)
                << "listed twice: " << d.dump();
    for (const auto& d : groups.value("ungrouped", nlohmann::json::array()))
        EXPECT_TRUE(out.emplace(d.value("address", ""), d).second) << "listed twice: " << d.dump();
    return out;
}

std::string lspci_style_name(const nlohmann::json& d) {
    std::string device = d.value("device_name", "");
    static const std::regex unnamed(R"(^Device [0-9a-f]{4}$)");
    if (std::regex_match(device, unnamed)) device = "Device";
    return d.value("vendor_name", "") + " " + device;
}

} // namespace vfioctl::test
