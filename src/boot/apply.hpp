#pragma once
// Carrying out a Plan on a host's boot configuration: a backup of every file
// first, the journal entry, each file replaced atomically, then the command
// that makes the boot loader read them (update-grub, grubby, ...). When a
// step fails the files are put back and the journal says so; a crash at any
// step leaves every file either as it was or completely new, and the journal
// entry 'pending' so that 'revert' can undo it. Also plans 'revert' from the
// journal.

#include "boot/journal.hpp"
#include "boot/plan.hpp"
#include "boot/setup.hpp"
#include "host/host.hpp"

#include <optional>
#include <string>
#include <vector>

namespace vfioctl::boot {

// Runs the regenerate command. A seam: tests give one that fails.
class CommandRunner {
  public:
    virtual ~CommandRunner() = default;
    // The program's exit code and output, or an Error when it could not run.
    virtual Result<host::RunOutput> run(const std::vector<std::string>& argv) = 0;
};

// Runs argv through Host::run (argv, no shell, bounded time); it refuses a
// recorded tree, so use it on the live host only.
class HostRunner : public CommandRunner {
  public:
    explicit HostRunner(const host::Host& host, int timeout_ms = 600000)
        : m_host(host), m_timeout_ms(timeout_ms) {}
    Result<host::RunOutput> run(const std::vector<std::string>& argv) override;

  private:
    const host::Host& m_host;
    int m_timeout_ms;
};

struct ApplyOptions {
    std::string state_dir = "/var/lib/vfioctl"; // host path of the journal's directory
    // Runs the regenerate command; null (a --root tree) leaves it to be printed.
    CommandRunner* runner = nullptr;
    std::string stamp; // names backups and the operation; "" takes the time now (UTC)
    // Whether the boot loader's regenerate command belongs to the change
    // (false: files the boot loader does not read, such as bind.d entries).
    bool regenerate = true;
    // Recorded with the operation (a trial's facts).
    std::optional<TrialInfo> trial;
};

struct AppliedFile {
    std::string path;
    std::string backup;
};

struct ApplyResult {
    std::string id; // the journal operation
    std::vector<AppliedFile> files;
    std::vector<std::string> regenerate; // the command, run or to be run
    bool regenerate_ran = false;
    std::optional<host::RunOutput> regenerate_output;
    std::vector<std::string> warnings;
};

// Applies plan for action ("enable", "disable", "revert"; reverts: the
// operation a revert undoes). An Error when any step fails, saying what was
// put back; the files are then as they were.
Result<ApplyResult> apply_plan(const host::Host& host, const BootSetup& setup, const Plan& plan,
                               const std::string& action, const ApplyOptions& opt,
                               const std::string& reverts = "");

// What 'revert' would do.
struct RevertPlan {
    Operation undoes; // the operation it undoes
    Plan plan;        // the edits (added/removed already swapped for grubby, kernelstub)
    std::vector<std::string> exact;     // files restored from their backup byte for byte
    std::vector<std::string> merged;    // files changed since: only vfioctl's parameters undone
    std::vector<std::string> untouched; // files already as they were before
};

// Plans undoing the last enable or disable in the journal; an Error when
// there is none, or a backup is missing or changed.
Result<RevertPlan> plan_revert(const host::Host& host, std::string_view state_dir);

// The time stamp for backups and operations: "YYYYmmdd-HHMMSS", UTC.
std::string now_stamp();

} // namespace vfioctl::boot
