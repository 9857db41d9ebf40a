#pragma once
// What 'iommu enable' and 'iommu disable' change in a boot configuration,
// and what 'iommu revert' changes back: parameter by parameter, in the files
// of ParamSets, keeping everything else. Pure.

#include "boot/cmdline.hpp"
#include "boot/params.hpp"
#include "util/result.hpp"

#include <string>
#include <vector>

namespace vfioctl::boot {

enum class Action { enable, disable };
using kernel::iommu_on;
using kernel::iommu_params;
using kernel::Platform;

// "enable", "disable"; "intel", "amd".
const char* action_id(Action a);
const char* platform_id(Platform p);

// What the command line should say afterwards.
struct Goal {
    Action action = Action::enable;
    Platform platform = Platform::intel;
    bool passthrough = true; // enable: iommu=pt as well
};

// The parameters a goal puts on the command line ("intel_iommu=on iommu=pt").
std::vector<std::string> goal_params(const Goal& g);

// Whether the command line meets the goal.
bool meets(const IommuCmdline& c, const Goal& g);

// The parameters of cmdline that work against goal ("intel_iommu=off" for enable).
std::vector<std::string> conflicting_params(std::string_view cmdline, const Goal& goal);

// One parameter change in one place.
struct ParamChange {
    std::string path;     // host path of the file
    std::string variable; // GRUB_CMDLINE_LINUX_DEFAULT, options, cmdline, kernel_options
    std::string removed;  // the parameter taken out, "" when one was only added
    std::string added;    // the parameter put in, "" when one was only taken out
};

// A file whose text changes, or that comes or goes.
struct FileEdit {
    std::string path;
    Format format = Format::cmdline_file;
    std::string before;   // "" when created
    std::string after;    // "" when removed
    bool created = false; // the file does not exist yet
    bool removed = false; // the file goes
    unsigned mode = 0644; // a created file's mode (a removed one's, to put it back)
};

// The command line of one ParamSet before and after.
struct CmdlineChange {
    std::string label;
    std::string before;
    std::string after;
};

struct Plan {
    std::vector<FileEdit> edits;         // only files whose text changes
    std::vector<ParamChange> changes;    // in the order they were made
    std::vector<std::string> added;      // every parameter added, once each
    std::vector<std::string> removed;    // every parameter taken out, once each
    std::vector<CmdlineChange> cmdlines; // per ParamSet
    std::vector<std::string> notes;
    bool empty() const { return edits.empty(); }
};

// Edits sets so that every command line meets goal: conflicting parameters
// are replaced where they decide the outcome and removed everywhere else,
// missing ones are added next to the IOMMU parameters already there. An
// Error (and no plan) when a set cannot be known or edited safely: an
// assignment inside a condition, a command substitution, a conflicting
// parameter written inside an expression.
Result<Plan> plan_goal(std::vector<ParamSet> sets, const Goal& goal);

// Edits sets to undo changes (the journal's record of a past plan) in files
// that changed since: takes out exactly what was added, puts back what was
// taken out, leaves everything else.
Result<Plan> plan_inverse(std::vector<ParamSet> sets, const std::vector<ParamChange>& changes);

} // namespace vfioctl::boot
