#pragma once
// The time now, in UTC, as vfioctl writes it into journals and file names.

#include <ctime>
#include <string>

namespace vfioctl::util {

// ISO 8601 in UTC, to the second: "2024-01-01T12:00:00Z".
inline constexpr const char* k_iso8601 = "%Y-%m-%dT%H:%M:%SZ";

// The time now in UTC, formatted by strftime(3) with format.
std::string utc_now(const char* format = k_iso8601);
// Time t (seconds since the epoch) in UTC, formatted the same way.
std::string utc_time(std::time_t t, const char* format = k_iso8601);

} // namespace vfioctl::util
