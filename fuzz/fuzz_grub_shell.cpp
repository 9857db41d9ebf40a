// /etc/default/grub: the shell reader, its evaluation, and the edits
// 'iommu enable' makes (remove, replace, append, a new assignment).
#include "boot/params.hpp"
#include "boot/shell.hpp"
#include "fuzz.hpp"

using namespace vfioctl::boot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text = fuzz_text(data, size);
    ShellFile f = parse_shell(text);
    evaluate({&f});
    ParamSet s("GRUB defaults", {{"/etc/default/grub", Format::grub_shell, std::string(text)}});
    auto v = s.view();
    for (const auto& p : v.written) {
        if (!p.editable) continue;
        (void)s.replace(p, "intel_iommu=on");
        break;
    }
    v = s.view();
    for (const auto& p : v.written) {
        if (!p.editable) continue;
        (void)s.remove(p);
        break;
    }
    (void)s.append("iommu=pt");
    (void)s.append_to(0, "GRUB_CMDLINE_LINUX", "quiet");
    s.view();
    return 0;
}
