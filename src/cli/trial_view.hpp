#pragma once
// A trial boot (boot/trial.hpp) as 'iommu show' and 'status' show it.

#include "boot/trial.hpp"

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

namespace vfioctl::cli {

// {"state": ..., "operation": ..., "words": ..., "next": ..., "look_at": [...]};
// only "state" when there is no open trial.
nlohmann::json trial_json(const boot::TrialView& v);
// "trial boot: STATE: WORDS" with what to do next; nothing without a trial.
void print_trial(std::ostream& o, const boot::TrialView& v, const std::string& indent);

} // namespace vfioctl::cli
