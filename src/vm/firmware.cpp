#include "vm/firmware.hpp"

#include "vm/argv.hpp"

namespace vfioctl::vm {

namespace {

constexpr uint64_t GiB = 1ull << 30;

// OVMF 2022.11 (Debian 12's ovmf) gives 64-bit BARs an aperture of
// PcdPciMmio64Size, 32 GiB, placed above RAM and aligned to its own size;
// fw_cfg opt/ovmf/X-PciMmio64Mb replaces that size. This build already has
// PlatformDynamicMmioWindow: when it trusts the CPU's phys-bits, the
// aperture becomes the top eighth of the address space if that is larger
// (phys-bits 40, QEMU's default under TCG and under KVM without
// host-phys-bits: 128 GiB at 896 GiB). Measured with QEMU 7.2 under TCG:
// a 64 GiB BAR was assigned at 0xe000000000 with no fw_cfg at all, a
// 256 GiB one was left unassigned; with X-PciMmio64Mb the aperture sits at
// its size-aligned place above RAM (128 GiB for 128 GiB) and holds it
// (tests/firmware boots these cases).
// The dynamic size depends on phys-bits vfioctl does not always know
// (host-phys-bits under KVM), so the fixed 32 GiB is the default it
// relies on, and any larger window is asked for.
constexpr uint64_t ovmf_default_aperture = 32 * GiB;

} // namespace

const char* firmware_id(Firmware f) {
    return f == Firmware::uefi ? "uefi" : "bios";
}

Result<Firmware> parse_firmware(std::string_view text) {
    if (text == "bios") return Firmware::bios;
    if (text == "uefi") return Firmware::uefi;
    return Error{"bad firmware '" + std::string(text) + "'",
                 {},
                 "use bios (SeaBIOS, the default) or uefi (OVMF)",
                 0};
}

const std::vector<OvmfFiles>& ovmf_candidates() {
    static const std::vector<OvmfFiles> c = {
        {"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
        {"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
    };
    return c;
}

Result<OvmfFiles> find_ovmf(const host::Tree& host, const FirmwareConfig& c) {
    const char* const hint = "install the ovmf package (apt install ovmf), or set ovmf_code and "
                             "ovmf_vars in the profile";
    for (const auto& cand : ovmf_candidates()) {
        OvmfFiles f{c.ovmf_code.empty() ? cand.code : c.ovmf_code,
                    c.ovmf_vars.empty() ? cand.vars_template : c.ovmf_vars};
        if (host.exists(f.code) && host.exists(f.vars_template)) return f;
        // A path the profile gave names the one file that is missing.
        if (!c.ovmf_code.empty() && !host.exists(f.code))
            return Error{"UEFI firmware (OVMF code) not found", f.code, hint, ENOENT};
        if (!c.ovmf_vars.empty() && !host.exists(f.vars_template))
            return Error{"UEFI variable store template (OVMF vars) not found", f.vars_template,
                         hint, ENOENT};
    }
    std::string looked;
    for (const auto& cand : ovmf_candidates())
        looked += (looked.empty() ? "" : ", ") + cand.code + " with " + cand.vars_template;
    return Error{"firmware = \"uefi\" needs OVMF, which is not installed (looked for " + looked +
                     ")",
                 {},
                 hint,
                 ENOENT};
}

std::string vars_path(const std::string& state_dir, const std::string& name) {
    return state_dir + "/vms/" + name + "/OVMF_VARS.fd";
}

Result<std::string> prepare_vars(const host::StateFiles& host, const std::string& state_dir,
                                 const std::string& name, const std::string& vars_template) {
    const std::string path = vars_path(state_dir, name);
    if (host.exists(path)) return path;
    auto data = host.read(vars_template);
    if (!data) return data.error();
    if (Status st = host.make_dirs(state_dir + "/vms/" + name); !st) return st.error();
    if (Status st = host.write_atomic(path, *data, 0600); !st) {
        Error e = st.error();
        e.message = "cannot write the VM's UEFI variable store";
        if (e.hint.empty()) e.hint = "give a writable --state-dir";
        return e;
    }
    return path;
}

Result<FirmwareLaunch> prepare_firmware(const host::StateFiles& host, const FirmwareConfig& c,
                                        const std::string& state_dir, const std::string& name) {
    FirmwareLaunch f;
    f.kind = c.kind;
    if (c.kind == Firmware::bios) return f;
    auto files = find_ovmf(host, c);
    if (!files) return files.error();
    auto vars = prepare_vars(host, state_dir, name, files->vars_template);
    if (!vars) return vars.error();
    f.code = host.path(files->code).string();
    f.vars = host.path(*vars).string();
    return f;
}

uint64_t ovmf_aperture_mib(const MmioPlan& mmio) {
    // plan_mmio's window (twice the next power of two of the BARs' sum),
    // which it gives QEMU's pci-hole64 once it exceeds QEMU's 32 GiB.
    return mmio.hole64_bytes > ovmf_default_aperture ? mmio.hole64_bytes >> 20 : 0;
}

std::vector<std::string> firmware_argv(const FirmwareLaunch& f, const MmioPlan& mmio) {
    if (f.kind == Firmware::bios) return {};
    std::vector<std::string> a = {
        "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + qemu_escape(f.code), "-drive",
        "if=pflash,format=raw,unit=1,file=" + qemu_escape(f.vars)};
    // OVMF puts the aperture at the first multiple of its size above RAM,
    // where plan_mmio counts from the first GiB above RAM: for a power-of-two
    // size both ends lie below the same power of two, so plan_mmio's
    // phys-bits reach OVMF's aperture as well.
    const uint64_t mib = f.size_aperture ? ovmf_aperture_mib(mmio) : 0;
    if (mib)
        a.insert(a.end(), {"-fw_cfg", "name=opt/ovmf/X-PciMmio64Mb,string=" + std::to_string(mib)});
    return a;
}

} // namespace vfioctl::vm
