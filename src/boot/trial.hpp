#pragma once
// A trial boot: the new command line as a one-shot boot entry, so that the
// first boot with the IOMMU on cannot strand a remote machine. The default
// entry stays as it was; the trial entry gets panic=N (a panic reboots by
// itself into the default entry) and vfioctl.trial=MARKER (so that the
// trial boot knows itself). 'iommu confirm', from inside the trial boot,
// makes the change permanent. GRUB (Debian: a /etc/grub.d script, then
// grub-reboot), GRUB with BootLoaderSpec entries (Fedora, RHEL: a loader
// entry, then grub2-reboot) and systemd-boot (a loader entry, then bootctl
// set-oneshot); other loaders have no trial and change the default at once.

#include "boot/journal.hpp"
#include "boot/plan.hpp"
#include "boot/setup.hpp"
#include "host/host.hpp"

#include <optional>
#include <string>
#include <vector>

namespace vfioctl::boot {

// The trial entry's id and file names.
inline constexpr const char* k_trial_entry_id = "vfioctl-trial";
inline constexpr const char* k_trial_grub_script = "/etc/grub.d/42_vfioctl_trial";
inline constexpr const char* k_trial_loader_entry = "vfioctl-trial.conf";
// The kernel parameter that marks the trial boot.
inline constexpr const char* k_trial_param = "vfioctl.trial";
// Seconds a panicking trial kernel waits before it reboots.
inline constexpr int k_trial_panic_s = 10;

// How a boot setup boots an entry once.
enum class OneShot { none, grub, grub_bls, systemd_boot };
OneShot oneshot_of(const BootSetup& s);
// Why a setup has no one-shot boot in vfioctl, in words ("" when it has one).
std::string no_oneshot_reason(const BootSetup& s);

struct TrialPlan {
    Plan plan;                             // creates the trial entry (one FileEdit)
    std::string cmdline;                   // the trial entry's command line
    std::string marker;                    // vfioctl.trial=MARKER
    std::vector<std::string> oneshot_argv; // grub-reboot vfioctl-trial, bootctl set-oneshot ...
    bool oneshot_found = true;             // the program is installed
    std::string source;                    // the entry the trial was copied from, in words
};

// Plans the trial entry for goal on setup: the default entry copied, its
// command line made to meet goal, panic=N in place of any panic=, and the
// marker. An Error when the setup has no one-shot boot, the default entry
// cannot be found, or its command line cannot be changed safely.
Result<TrialPlan> plan_trial(const host::Host& host, const BootSetup& setup, const Goal& goal,
                             const std::string& marker, int panic_s = k_trial_panic_s);

// The command that cancels a scheduled one-shot boot of the trial entry
// (empty when nothing is scheduled or it cannot be told).
std::vector<std::string> cancel_oneshot_argv(const host::Host& host, const BootSetup& setup);

// Where a trial stands.
enum class TrialState {
    none,     // no open trial
    pending,  // scheduled: the next boot is the trial
    running,  // this boot is the trial
    not_back, // the one-shot was used, and this boot is not the trial
    unknown,  // cannot tell (the boot or the one-shot cannot be read)
};
const char* trial_state_id(TrialState s); // "none", "pending", "running", "not_back", "unknown"

struct TrialView {
    TrialState state = TrialState::none;
    std::optional<Operation> op;      // the open trial operation
    std::string words;                // where it stands, in a sentence
    std::string next;                 // what to do next
    std::vector<std::string> look_at; // for not_back: where the failed boot left traces
};

// The open trial in journal, against the running boot. Never fails.
TrialView trial_view(const host::Host& host, const Journal& journal, const BootSetup& setup);

// The open trial operation (the last 'trial' still done or pending), if any.
const Operation* open_trial(const Journal& j);

} // namespace vfioctl::boot
