#include "vfio/boot_id.hpp"

#include "util/json_words.hpp"

namespace vfioctl::vfio {

namespace {
bool lower_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}
} // namespace

std::optional<BootId> BootId::parse(std::string_view text) {
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    if (text.size() != 36) return std::nullopt;
    for (size_t i = 0; i < text.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text[i] != '-' : !lower_hex(text[i])) return std::nullopt;
    }
    BootId b;
    b.m_uuid = std::string(text);
    return b;
}

const std::string& BootId::str() const {
    static const std::string none;
    return m_uuid ? *m_uuid : none;
}

BootId current_boot(const host::Tree& tree, std::string* why) {
    auto text = tree.read(k_boot_id_path);
    if (!text) {
        if (why) *why = text.error().describe();
        return {};
    }
    auto b = BootId::parse(*text);
    if (!b) {
        if (why)
            *why = std::string(k_boot_id_path) + " holds no boot id (" +
                   std::to_string(text->size()) + " bytes, not a UUID)";
        return {};
    }
    return *b;
}

nlohmann::json boot_json(const BootId& b) {
    return b.known() ? nlohmann::json(b.str()) : nlohmann::json(nullptr);
}

BootId boot_from_json(const nlohmann::json& d, const char* key, const std::string& at) {
    auto s = util::json_opt_string(d, key, at);
    if (!s) return {};
    auto b = BootId::parse(*s);
    if (!b || b->str() != *s) throw util::JsonCorrupt{at + "." + key + " is not a boot id"};
    return *b;
}

} // namespace vfioctl::vfio
