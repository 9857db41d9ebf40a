#pragma once
// What the tests that run programs share: the built vfioctl, lspci as an
// oracle, and the JSON they print.

#include "fixture/fixture.hpp"

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vfioctl::test {

// The named fixture hosts ("seed_before", "seed_before_held", "seed_after",
// "amd", "shared_group", "critical_group", "firmware_off", "pvm",
// "vfio_missing", "dgx").
const std::vector<std::string>& host_names();
// A named fixture host, built once per test run and shared: never change it.
const fixture::HostTree& shared_host(const std::string& name);
// vfioctl --root HOST ARGS... on a shared host, run once per test run.
const fixture::Outcome& shared_run(const std::string& name, const std::vector<std::string>& args);

// Runs the built vfioctl with args (no shell) and records, as test
// failures, a death by signal or a sanitizer report on stderr. With
// libpci_fatal, the run is meant to end in libpci's fatal error handler,
// whose state vfioctl leaves unfreed on purpose: LeakSanitizer is told to
// ignore what libpci allocated (tests/unit/libpci-fatal.supp).
fixture::Outcome run_vfioctl(const std::vector<std::string>& args, bool libpci_fatal = false);
// vfioctl --root TREE ARGS...
fixture::Outcome run_on(const fixture::HostTree& tree, const std::vector<std::string>& args,
                        bool libpci_fatal = false);
// How run_vfioctl runs the program beyond its arguments.
struct RunOptions {
    std::vector<std::string> env; // extra "NAME=value" variables
    std::string stdin_path;       // standard input from this file ("": /dev/null)
    int timeout_ms = 60000;       // killed (and reported) after this long
};
fixture::Outcome run_vfioctl(const std::vector<std::string>& args, const RunOptions& opt);
fixture::Outcome run_on(const fixture::HostTree& tree, const std::vector<std::string>& args,
                        const RunOptions& opt);
// stdout parsed as JSON; a test failure and a null value when it is not JSON.
nlohmann::json json_of(const fixture::Outcome& o);
// True when text holds an AddressSanitizer/UBSan/LeakSanitizer report.
bool has_sanitizer_report(const std::string& text);

// True when any string in the array contains needle.
bool any_contains(const nlohmann::json& strings, const std::string& needle);
// The array's strings, in order (empty when j is no array).
std::vector<std::string> strings_of(const nlohmann::json& j);

// One function as `lspci -Dnnk` prints it.
struct LspciDevice {
    std::string address; // "0000:8a:00.0"
    std::string cls;     // "0302"
    std::string name;    // "NVIDIA Corporation GH100 [H100]" (lspci's "Device" when unnamed)
    std::string id;      // "10de:2336"
    std::string driver;  // "" when no driver is bound
};

// Where lspci is installed, or "" when it is not.
std::string lspci_path();
// Runs lspci -Dnnk, against root's sysfs unless root is "/"; the parsed
// devices by address. Unparsable lines are test failures.
std::map<std::string, LspciDevice> lspci_devices(const std::string& root);
// vfioctl's view of the same functions from 'groups --json' (.groups[].devices[]
// and .ungrouped[]), by address.
std::map<std::string, nlohmann::json> vfioctl_devices(const nlohmann::json& groups);
// The name lspci prints for d: vendor and device names, with libpci's
// "Device 22a3" for an unknown device shortened to lspci's "Device".
std::string lspci_style_name(const nlohmann::json& d);

} // namespace vfioctl::test
