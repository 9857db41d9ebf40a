#pragma once
// Small string helpers with no project dependencies.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::util {

// s without leading and trailing whitespace.
std::string_view trim(std::string_view s);
// s split on ch; empty fields kept.
std::vector<std::string> split(std::string_view s, char ch);
// s split on runs of whitespace; no empty fields.
std::vector<std::string> split_ws(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
std::string to_lower(std::string_view s);
// Parses a hexadecimal number with or without "0x"; nullopt on garbage or overflow.
std::optional<uint64_t> parse_hex(std::string_view s);
// Parses a decimal number; nullopt on garbage or overflow.
std::optional<uint64_t> parse_dec(std::string_view s);
// The elements joined by sep.
std::string join(const std::vector<std::string>& parts, std::string_view sep);

// s made safe for a terminal: control bytes (below 0x20 except tab, and
// 0x7f), C1 controls (U+0080..U+009F) and bytes that are not valid UTF-8
// are written as \xNN, so that no escape sequence from the host reaches the
// terminal raw. With keep_newlines, '\n' passes as it is (whole texts).
std::string printable(std::string_view s, bool keep_newlines = false);

} // namespace vfioctl::util
