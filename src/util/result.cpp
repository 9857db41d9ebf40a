#include "util/result.hpp"

#include <cstring>

namespace vfioctl {

std::string Error::describe() const {
    std::string out = message;
    if (!path.empty()) out += ": " + path;
    if (errnum != 0) out += ": " + std::string(std::strerror(errnum));
    return out;
}

Error system_error(std::string message, std::string path, int errnum) {
    return Error{std::move(message), std::move(path), {}, errnum};
}

} // namespace vfioctl
