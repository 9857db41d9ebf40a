#include "util/fault.hpp"

#include <cstdlib>
#include <map>
#include <mutex>
#include <unistd.h>

namespace vfioctl::util {

namespace {
struct State {
    std::mutex mu;
    std::string armed;
    int nth = 0;
    std::map<std::string, int, std::less<>> passes;
    bool env_read = false;
};
State& state() {
    static State s;
    return s;
}
} // namespace

void arm_fault_point(std::string name, int nth) {
    auto& s = state();
    std::lock_guard lock(s.mu);
    s.armed = std::move(name);
    s.nth = nth;
    s.passes.clear();
    s.env_read = true;
}

void disarm_fault_points() {
    auto& s = state();
    std::lock_guard lock(s.mu);
    s.armed.clear();
    s.passes.clear();
}

void fault_point(std::string_view name) {
    auto& s = state();
    std::lock_guard lock(s.mu);
#ifdef VFIOCTL_FAULT_POINTS
    if (!s.env_read) {
        s.env_read = true;
        if (const char* e = std::getenv("VFIOCTL_FAULT_POINT")) {
            std::string v(e);
            auto colon = v.rfind(':');
            s.armed = v.substr(0, colon);
            s.nth = colon == std::string::npos ? 1 : std::atoi(v.c_str() + colon + 1);
        }
    }
#endif
    auto it = s.passes.find(name);
    int n = it == s.passes.end() ? (s.passes.emplace(std::string(name), 1), 1) : ++it->second;
    if (!s.armed.empty() && s.armed == name && n == s.nth) ::_exit(86);
}

int fault_point_passes(std::string_view name) {
    auto& s = state();
    std::lock_guard lock(s.mu);
    auto it = s.passes.find(name);
    return it == s.passes.end() ? 0 : it->second;
}

} // namespace vfioctl::util
