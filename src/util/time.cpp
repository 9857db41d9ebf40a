#include "util/time.hpp"

#include <ctime>

namespace vfioctl::util {

std::string utc_now(const char* format) {
    return utc_time(std::time(nullptr), format);
}

std::string utc_time(std::time_t t, const char* format) {
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[64];
    const size_t n = std::strftime(buf, sizeof buf, format, &tm);
    return std::string(buf, n);
}

} // namespace vfioctl::util
