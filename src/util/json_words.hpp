#pragma once
// JSON values in words, for error messages about files vfioctl reads.

#include <nlohmann/json.hpp>
#include <string>

namespace vfioctl::util {

// "a string", "an array", "an object", "a number", ...
inline std::string json_type_words(const nlohmann::json& j) {
    const std::string t = j.type_name();
    return (t == "array" || t == "object") ? "an " + t : "a " + t;
}

} // namespace vfioctl::util
