#pragma once
// The boot a journal entry was written in: the kernel's random boot_id
// (/proc/sys/kernel/random/boot_id, a new UUID at every boot), or Unknown.
// Unknown is a value of its own and is never equal to any boot, not even to
// another Unknown: an entry of an unknown boot is never taken for one of an
// earlier boot.

#include "host/tree.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace vfioctl::vfio {

class BootId {
  public:
    // Unknown.
    BootId() = default;
    // text as the kernel writes it: a UUID in lower-case hex
    // (8-4-4-4-12), at most one trailing '\n'. Anything else (upper case,
    // "\r\n", spaces, other bytes) is nullopt: never guessed.
    static std::optional<BootId> parse(std::string_view text);

    bool known() const { return m_uuid.has_value(); }
    // The UUID; "" when unknown.
    const std::string& str() const;
    // True when both are known and differ: the other boot is an earlier
    // (or at least another) boot. False whenever either is unknown.
    bool known_other_than(const BootId& other) const {
        return known() && other.known() && *m_uuid != *other.m_uuid;
    }
    // True when both are known and equal.
    bool same_known(const BootId& other) const {
        return known() && other.known() && *m_uuid == *other.m_uuid;
    }

  private:
    std::optional<std::string> m_uuid;
};

// Where the running kernel says which boot this is.
inline constexpr const char* k_boot_id_path = "/proc/sys/kernel/random/boot_id";

// The running boot, read through tree (so a --root tree or a test kernel
// supplies it). Unknown when the file is missing, unreadable or not a
// strict UUID; why (when given) then says which.
BootId current_boot(const host::Tree& tree, std::string* why = nullptr);

// A boot in a JSON state file: a UUID string, or null when unknown.
nlohmann::json boot_json(const BootId& b);
// d[key] as a boot: missing or null is unknown; a string must be a boot id
// as the kernel writes it, anything else throws util::JsonCorrupt (never a
// guess).
BootId boot_from_json(const nlohmann::json& d, const char* key, const std::string& at);

} // namespace vfioctl::vfio
