#include "vm/inguest.hpp"

#include "util/strings.hpp"

namespace vfioctl::vm {

std::vector<LogFinding> scan_kernel_log(std::string_view log) {
    std::vector<LogFinding> out;
    for (const auto& raw : util::split(log, '\n')) {
        const std::string line(util::trim(raw));
        const std::string low = util::to_lower(line);
        const char* kind = nullptr;
        if (low.find("nvrm: xid") != std::string::npos)
            kind = "xid";
        else if (low.find("aer:") != std::string::npos &&
                 (low.find("error") != std::string::npos ||
                  low.find("uncorrect") != std::string::npos))
            kind = "aer";
        else if ((low.find("bar ") != std::string::npos ||
                  low.find("reg 0x") != std::string::npos) &&
                 (low.find("failed to assign") != std::string::npos ||
                  low.find("no space for") != std::string::npos ||
                  low.find("can't claim") != std::string::npos ||
                  low.find("failed to allocate") != std::string::npos))
            kind = "bar";
        else if (low.find("nvrm:") != std::string::npos &&
                 (low.find("failed") != std::string::npos ||
                  low.find("error") != std::string::npos ||
                  low.find("cannot") != std::string::npos))
            kind = "nvrm";
        if (kind) out.push_back({kind, line});
    }
    return out;
}

std::vector<SmiGpu> parse_nvidia_smi(std::string_view csv) {
    std::vector<SmiGpu> out;
    for (const auto& row : util::split(csv, '\n')) {
        auto f = util::split(row, ',');
        if (f.size() < 3) continue;
        SmiGpu g{std::string(util::trim(f[0])), std::string(util::trim(f[1])),
                 std::string(util::trim(f[2])),
                 f.size() > 3 ? std::string(util::trim(f[3])) : std::string()};
        if (g.name.empty()) continue;
        out.push_back(g);
    }
    return out;
}

std::vector<FabricState> parse_fabric_states(std::string_view smi_q) {
    std::vector<FabricState> out;
    std::string gpu;
    size_t fabric_indent = std::string::npos; // inside a Fabric section when set
    for (const auto& raw : util::split(smi_q, '\n')) {
        std::string_view line = raw;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        const size_t indent = line.find_first_not_of(' ');
        if (indent == std::string_view::npos) continue;
        auto text = util::trim(line);
        if (indent == 0 && util::starts_with(text, "GPU ")) {
            gpu = std::string(util::trim(text.substr(4)));
            fabric_indent = std::string::npos;
            continue;
        }
        if (fabric_indent != std::string::npos && indent <= fabric_indent)
            fabric_indent = std::string::npos;
        if (fabric_indent == std::string::npos) {
            if (text == "Fabric" && !gpu.empty()) {
                fabric_indent = indent;
                out.push_back({gpu, "", ""});
            }
            continue;
        }
        size_t colon = text.find(':');
        if (colon == std::string_view::npos) continue;
        auto key = util::trim(text.substr(0, colon));
        auto value = std::string(util::trim(text.substr(colon + 1)));
        if (key == "State") out.back().state = value;
        if (key == "Status") out.back().status = value;
    }
    return out;
}

std::vector<SysfsBar> parse_resource_file(std::string_view text) {
    std::vector<SysfsBar> out;
    auto lines = util::split(text, '\n');
    for (int i = 0; i < 6 && i < static_cast<int>(lines.size()); ++i) {
        auto f = util::split_ws(lines[static_cast<size_t>(i)]);
        if (f.size() < 3) continue;
        auto start = util::parse_hex(f[0]), end = util::parse_hex(f[1]),
             flags = util::parse_hex(f[2]);
        if (!start || !end || !flags || (*start == 0 && *end == 0) || *end < *start) continue;
        out.push_back({i, *end - *start + 1, (*flags & 0x100) != 0});
    }
    return out;
}

} // namespace vfioctl::vm
