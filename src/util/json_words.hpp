#pragma once
// JSON values in words, for error messages about files vfioctl reads, and
// the field readers and error mapping its JSON state files share (the bind
// journal, the settled record).

#include "util/result.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace vfioctl::util {

// "a string", "an array", "an object", "a number", ...
inline std::string json_type_words(const nlohmann::json& j) {
    const std::string t = j.type_name();
    return (t == "array" || t == "object") ? "an " + t : "a " + t;
}

// What a file holds where it cannot be trusted, in words (never
// nlohmann's own exception text); thrown by the readers below inside
// parse_json_file only.
struct JsonCorrupt {
    std::string what;
};

// d[key]; JsonCorrupt "AT has no 'KEY'" when it is missing.
inline const nlohmann::json& json_field(const nlohmann::json& d, const char* key,
                                        const std::string& at) {
    auto it = d.find(key);
    if (it == d.end()) throw JsonCorrupt{at + " has no '" + key + "'"};
    return *it;
}
// d[key] as a string; JsonCorrupt when missing or not a string.
inline std::string json_string(const nlohmann::json& d, const char* key, const std::string& at) {
    const nlohmann::json& v = json_field(d, key, at);
    if (!v.is_string())
        throw JsonCorrupt{at + "." + key + " is " + json_type_words(v) + ", not a string"};
    return v.get<std::string>();
}
// d[key] as a string, nullopt when missing or null; JsonCorrupt otherwise.
inline std::optional<std::string> json_opt_string(const nlohmann::json& d, const char* key,
                                                  const std::string& at) {
    auto it = d.find(key);
    if (it == d.end() || it->is_null()) return std::nullopt;
    if (!it->is_string())
        throw JsonCorrupt{at + "." + key + " is " + json_type_words(*it) +
                          ", not a string or null"};
    return it->get<std::string>();
}
// The string, or null.
inline nlohmann::json json_or_null(const std::optional<std::string>& s) {
    return s ? nlohmann::json(*s) : nlohmann::json(nullptr);
}

// Runs parse(), which reads a document with the readers above, and turns
// what it throws into "the WHAT is corrupt (...)", naming path, with keep
// as the hint. Never throws.
template <class T, class F>
Result<T> parse_json_file(const std::string& what, const std::string& path, const char* keep,
                          F&& parse) {
    try {
        return parse();
    } catch (const JsonCorrupt& c) {
        return Error{"the " + what + " is corrupt (" + c.what + ")", path, keep, 0};
    } catch (const nlohmann::json::parse_error& ex) {
        return Error{"the " + what + " is corrupt (not JSON: the parse stopped at byte " +
                         std::to_string(ex.byte) + ")",
                     path, keep, 0};
    } catch (const std::exception& ex) {
        return Error{"the " + what + " is corrupt (" + ex.what() + ")", path, keep, 0};
    }
}

} // namespace vfioctl::util
