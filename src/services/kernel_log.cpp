#include "services/kernel_log.hpp"

#include <sys/klog.h>
#include <unistd.h>

namespace vfioctl::services {

std::string kernel_log(const host::Host& host) {
    if (!host.is_live()) return host.read("/.vfioctl/dmesg").value_or("");
    int size = ::klogctl(10, nullptr, 0); // SYSLOG_ACTION_SIZE_BUFFER
    if (size <= 0) return {};
    std::string buf(static_cast<size_t>(size), '\0');
    int n = ::klogctl(3, buf.data(), size); // SYSLOG_ACTION_READ_ALL
    if (n <= 0) return {};
    buf.resize(static_cast<size_t>(n));
    return buf;
}

Result<std::string> self_binary() {
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return system_error("cannot find the vfioctl binary", "/proc/self/exe");
    return std::string(self, static_cast<size_t>(n));
}

} // namespace vfioctl::services
