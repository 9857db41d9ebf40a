#include "kernel/cmdline.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <cctype>

namespace vfioctl::kernel {

std::vector<Token> tokenize(std::string_view s) {
    std::vector<Token> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
            ++i;
        if (i >= s.size()) break;
        std::string text;
        bool quoted = false;
        while (i < s.size() && (quoted || !std::isspace(static_cast<unsigned char>(s[i])))) {
            if (s[i] == '"') quoted = !quoted;
            text += s[i++];
        }
        if (text == "--") break;
        Token t;
        t.text = text;
        std::string unq;
        for (char c : text)
            if (c != '"') unq += c;
        size_t eq = unq.find('=');
        if (eq == std::string::npos) {
            t.key = unq;
        } else {
            t.key = unq.substr(0, eq);
            t.value = unq.substr(eq + 1);
        }
        // The kernel treats '-' and '_' in parameter names alike.
        for (char& c : t.key)
            if (c == '-') c = '_';
        out.push_back(std::move(t));
    }
    return out;
}

std::optional<bool> parse_kernel_bool(std::string_view v) {
    std::string l = util::to_lower(v);
    if (l == "1" || l == "y" || l == "yes" || l == "on" || l == "true") return true;
    if (l == "0" || l == "n" || l == "no" || l == "off" || l == "false") return false;
    return std::nullopt;
}

IommuCmdline interpret(const std::vector<Token>& tokens) {
    IommuCmdline c;
    for (const auto& t : tokens) {
        const std::string v = t.value.value_or("");
        if (t.key == "intel_iommu") {
            c.iommu_tokens.push_back(t.text);
            for (const auto& o : util::split(v, ',')) {
                if (o.empty()) continue;
                c.intel_opts.push_back(o);
                if (o == "on")
                    c.intel = Switch::on;
                else if (o == "off")
                    c.intel = Switch::off;
                else if (o != "sm_on" && o != "sm_off" && o != "igfx_off" && o != "strict" &&
                         o != "sp_off" && o != "tboot_noforce" && o != "forcedac" &&
                         o != "nobounce")
                    c.notes.push_back("intel_iommu=" + o +
                                      " is not an option this kernel documents");
            }
        } else if (t.key == "amd_iommu") {
            c.iommu_tokens.push_back(t.text);
            for (const auto& o : util::split(v, ',')) {
                if (o.empty()) continue;
                c.amd_opts.push_back(o);
                if (o == "off")
                    c.amd = Switch::off;
                else if (o == "on")
                    c.amd = Switch::on;
            }
        } else if (t.key == "iommu") {
            c.iommu_tokens.push_back(t.text);
            for (const auto& o : util::split(v, ',')) {
                if (o.empty()) continue;
                c.iommu = o;
                if (o == "pt")
                    c.passthrough = true;
                else if (o == "nopt")
                    c.passthrough = false;
                else if (o == "off")
                    c.iommu_off = true; // no later option turns it back on
            }
        } else if (t.key == "iommu.passthrough") {
            c.iommu_tokens.push_back(t.text);
            if (auto b = parse_kernel_bool(v))
                c.passthrough = *b;
            else
                c.notes.push_back("iommu.passthrough=" + v +
                                  " is not a boolean; the kernel ignores it");
        } else if (t.key == "iommu.strict") {
            c.iommu_tokens.push_back(t.text);
            if (auto b = parse_kernel_bool(v))
                c.strict = *b;
            else
                c.notes.push_back("iommu.strict=" + v + " is not a boolean; the kernel ignores it");
        } else if (t.key == "intremap") {
            c.iommu_tokens.push_back(t.text);
            if (v == "off" || v == "nosid") c.intremap_off = v == "off";
        } else if (t.key == "vfio_pci.ids") {
            c.iommu_tokens.push_back(t.text);
            for (const auto& id : util::split(v, ','))
                if (!id.empty()) c.vfio_pci_ids.push_back(id);
        } else if (t.key == "vfio_iommu_type1.allow_unsafe_interrupts") {
            c.iommu_tokens.push_back(t.text);
            c.allow_unsafe_interrupts = parse_kernel_bool(v);
        } else if (t.key == "modprobe.blacklist" || t.key == "rd.driver.blacklist" ||
                   t.key == "module_blacklist") {
            c.iommu_tokens.push_back(t.text);
            for (const auto& m : util::split(v, ','))
                if (!m.empty()) c.blacklisted.push_back(m);
        }
    }
    if (c.iommu_off)
        c.notes.emplace_back(
            "iommu=off disables every IOMMU; intel_iommu= and amd_iommu= do not matter");
    if (c.intel == Switch::off && c.passthrough == true)
        c.notes.emplace_back(
            "intel_iommu=off makes iommu=pt moot: there is no IOMMU to pass through");
    if (c.amd == Switch::off && c.passthrough == true)
        c.notes.emplace_back(
            "amd_iommu=off makes iommu=pt moot: there is no IOMMU to pass through");
    for (const auto& m : c.blacklisted)
        if (m == "vfio_pci" || m == "vfio-pci" || m == "vfio")
            c.notes.push_back(m +
                              " is blacklisted on the command line: vfio-pci cannot load by alias");
    return c;
}

bool iommu_on(const IommuCmdline& c, Platform p, bool default_on) {
    if (c.iommu_off) return false;
    if (p == Platform::intel)
        return c.intel == Switch::on || (c.intel == Switch::unset && default_on);
    return c.amd != Switch::off;
}

std::vector<std::string> iommu_params(std::string_view cmdline) {
    auto c = interpret(tokenize(cmdline));
    auto v = c.iommu_tokens;
    std::sort(v.begin(), v.end());
    return v;
}

} // namespace vfioctl::kernel
