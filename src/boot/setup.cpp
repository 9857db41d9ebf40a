#include "boot/setup.hpp"

#include "boot/shell.hpp"
#include "host/system.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <cstring>
#include <fnmatch.h>
#include <nlohmann/json.hpp>

namespace vfioctl::boot {

namespace {

const char* const k_grub_default = "/etc/default/grub";
const char* const k_grub_dropins = "/etc/default/grub.d";
const char* const k_kernel_cmdline = "/etc/kernel/cmdline";
const char* const k_kernelstub = "/etc/kernelstub/configuration";
const char* const k_proxmox_uuids = "/etc/kernel/proxmox-boot-uuids";

// A file's text, or nullopt when it cannot be read.
std::optional<std::string> read_opt(const host::Host& h, const std::string& p) {
    auto r = h.read(p);
    if (!r) return std::nullopt;
    return std::move(r).value();
}

// Newest first, as boot loaders sort entries by version.
void sort_newest_first(std::vector<std::string>& names) {
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
        return ::strverscmp(a.c_str(), b.c_str()) > 0;
    });
}

// The options of a loader entry, joined, with $variables from env expanded.
std::string entry_options(std::string_view text, const std::map<std::string, std::string>& env) {
    std::vector<std::string> parts;
    for (const auto& line : util::split(text, '\n')) {
        auto t = util::trim(line);
        if (!util::starts_with(t, "options")) continue;
        auto rest = t.substr(7);
        if (!rest.empty() && rest.front() != ' ' && rest.front() != '\t') continue;
        for (const auto& w : util::split_ws(rest)) {
            if (w.size() > 1 && w[0] == '$') {
                auto it = env.find(w.substr(1));
                if (it != env.end()) {
                    if (!util::trim(it->second).empty()) parts.emplace_back(util::trim(it->second));
                    continue;
                }
            }
            parts.push_back(w);
        }
    }
    return util::join(parts, " ");
}

// The command line of the first 'linux' line in a grub.cfg (the first menu entry's).
std::optional<std::string> grub_cfg_cmdline(std::string_view text) {
    for (const auto& line : util::split(text, '\n')) {
        auto w = util::split_ws(line);
        if (w.size() < 2) continue;
        if (w[0] != "linux" && w[0] != "linux16" && w[0] != "linuxefi") continue;
        return util::join(std::vector<std::string>(w.begin() + 2, w.end()), " ");
    }
    return std::nullopt;
}

// Loader entries (Type #1, with a 'linux' line) in dir, by file name.
std::vector<std::string> entry_files(const host::Host& h, const std::string& dir) {
    std::vector<std::string> out;
    auto names = h.list(dir);
    if (!names) return out;
    // A trial entry (boot/trial.hpp) is booted once, never edited as a default.
    for (const auto& n : *names)
        if (n.size() > 5 && n.compare(n.size() - 5, 5, ".conf") == 0 && n != "vfioctl-trial.conf")
            out.push_back(n);
    return out;
}

// Debian's grub-mkconfig reads /etc/default/grub.d/*.cfg; upstream's does not.
bool debian_family(const host::Host& h) {
    return h.exists("/etc/debian_version") || h.find_program("update-grub").has_value();
}

// /etc/default/grub and, where read, its drop-ins in glob order.
std::vector<ConfigFile> grub_files(const host::Host& h, BootSetup& s, bool dropins) {
    std::vector<ConfigFile> files;
    files.push_back({k_grub_default, Format::grub_shell, read_opt(h, k_grub_default).value_or("")});
    if (auto names = h.list(k_grub_dropins)) {
        for (const auto& n : *names) {
            if (n.size() <= 4 || n.compare(n.size() - 4, 4, ".cfg") != 0) continue;
            std::string p = std::string(k_grub_dropins) + "/" + n;
            if (!dropins) {
                s.notes.push_back(
                    p + " is not read: this distribution's grub-mkconfig reads no drop-ins");
                continue;
            }
            auto t = h.read(p);
            if (!t) {
                s.notes.push_back(t.error().describe());
                continue;
            }
            files.push_back({p, Format::grub_shell, std::move(t).value()});
        }
    }
    return files;
}

// Where systemd-boot's entries are: the ESP or XBOOTLDR mount with loader/.
std::optional<std::string> loader_dir(const host::Host& h) {
    for (const char* mp : {"/efi", "/boot", "/boot/efi"}) {
        std::string d = std::string(mp) + "/loader";
        if (h.exists(d + "/loader.conf") || h.is_dir(d + "/entries")) return d;
    }
    return std::nullopt;
}

// systemd-boot's Type #1 entries (the default one first) and /etc/kernel/cmdline.
void detect_systemd_boot(const host::Host& h, BootSetup& s, const std::string& dir) {
    s.loader = Loader::systemd_boot;
    s.evidence.push_back(dir + (h.exists(dir + "/loader.conf") ? "/loader.conf" : "/entries"));
    auto names = entry_files(h, dir + "/entries");
    sort_newest_first(names);
    // loader.conf's 'default' pattern picks the entry; else the newest.
    std::string pattern;
    if (auto conf = read_opt(h, dir + "/loader.conf"))
        for (const auto& line : util::split(*conf, '\n')) {
            auto w = util::split_ws(line);
            if (w.size() >= 2 && w[0] == "default") pattern = w[1];
        }
    std::string chosen;
    if (!pattern.empty() && pattern[0] != '@')
        for (const auto& n : names)
            if (::fnmatch(pattern.c_str(), n.c_str(), 0) == 0 ||
                ::fnmatch(pattern.c_str(), n.substr(0, n.size() - 5).c_str(), 0) == 0) {
                chosen = n;
                break;
            }
    if (chosen.empty() && !names.empty()) chosen = names.front();
    std::stable_partition(names.begin(), names.end(),
                          [&](const std::string& n) { return n == chosen; });
    for (const auto& n : names) {
        std::string p = dir + "/entries/" + n;
        auto t = h.read(p);
        if (!t) {
            s.notes.push_back(t.error().describe());
            continue;
        }
        bool type1 = false;
        for (const auto& line : util::split(*t, '\n')) {
            auto w = util::split_ws(line);
            if (!w.empty() && w[0] == "linux") type1 = true;
        }
        if (!type1) {
            s.notes.push_back(p + " boots a unified kernel image whose command line is built in; "
                                  "vfioctl leaves it alone");
            continue;
        }
        if (n == chosen) {
            s.generated_path = p;
            s.generated_cmdline = entry_options(*t, {});
        }
        s.sets.emplace_back("loader entry " + n, std::vector<ConfigFile>{{p, Format::loader_entry,
                                                                          std::move(t).value()}});
    }
    if (auto t = read_opt(h, k_kernel_cmdline))
        s.sets.emplace_back(std::string(k_kernel_cmdline) + " (for kernels installed later)",
                            std::vector<ConfigFile>{{k_kernel_cmdline, Format::cmdline_file, *t}});
    s.description =
        "systemd-boot, entries in " + dir + "/entries" +
        (h.exists(k_kernel_cmdline) ? std::string(" and ") + k_kernel_cmdline + " for new kernels"
                                    : "");
    if (s.sets.empty())
        s.notes.emplace_back("no loader entry with a 'linux' line: nothing vfioctl can edit");
}

} // namespace

// grubenv: "# GRUB Environment Block", then key=value lines, padded with '#'.
std::map<std::string, std::string> read_grubenv(std::string_view text) {
    std::map<std::string, std::string> env;
    for (const auto& line : util::split(text, '\n')) {
        if (line.empty() || line[0] == '#') continue;
        size_t eq = line.find('=');
        if (eq == std::string::npos) continue;
        env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return env;
}

const char* loader_id(Loader l) {
    switch (l) {
    case Loader::grub:
        return "grub";
    case Loader::grub_bls:
        return "grub-bls";
    case Loader::systemd_boot:
        return "systemd-boot";
    case Loader::kernelstub:
        return "kernelstub";
    case Loader::proxmox:
        return "proxmox-boot-tool";
    case Loader::nixos:
        return "nixos";
    case Loader::unknown:
        return "unknown";
    }
    return "?";
}

BootSetup detect_setup(const host::Host& h) {
    BootSetup s;
    if (h.exists("/etc/NIXOS") || h.is_dir("/etc/nixos")) {
        s.loader = Loader::nixos;
        s.evidence.emplace_back(h.exists("/etc/NIXOS") ? "/etc/NIXOS" : "/etc/nixos");
        s.description =
            "NixOS: the command line is boot.kernelParams in /etc/nixos/configuration.nix, "
            "and nixos-rebuild writes the boot loader's files";
        return s;
    }
    if (h.exists(k_kernelstub)) {
        s.loader = Loader::kernelstub;
        s.evidence.emplace_back(k_kernelstub);
        s.description = std::string("kernelstub (Pop!_OS): user.kernel_options in ") + k_kernelstub;
        auto t = h.read(k_kernelstub);
        if (!t) {
            s.notes.push_back(t.error().describe());
            return s;
        }
        std::string esp = "/boot/efi";
        auto j = nlohmann::json::parse(*t, nullptr, false);
        if (!j.is_discarded() && j.is_object() && j.contains("user") && j["user"].is_object() &&
            j["user"].contains("esp_path") && j["user"]["esp_path"].is_string())
            esp = j["user"]["esp_path"].get<std::string>();
        s.sets.emplace_back(
            "kernelstub configuration",
            std::vector<ConfigFile>{{k_kernelstub, Format::kernelstub_json, std::move(t).value()}});
        std::string entry = esp + "/loader/entries/Pop_OS-current.conf";
        if (auto e = read_opt(h, entry)) {
            s.generated_path = entry;
            s.generated_cmdline = entry_options(*e, {});
        }
        return s;
    }
    if (h.exists(k_proxmox_uuids)) {
        s.loader = Loader::proxmox;
        s.evidence.emplace_back(k_proxmox_uuids);
        if (auto t = read_opt(h, k_kernel_cmdline)) {
            s.description = std::string("proxmox-boot-tool (systemd-boot): ") + k_kernel_cmdline;
            s.evidence.emplace_back(k_kernel_cmdline);
            s.sets.emplace_back(
                k_kernel_cmdline,
                std::vector<ConfigFile>{{k_kernel_cmdline, Format::cmdline_file, *t}});
        } else if (h.exists(k_grub_default)) {
            s.description = std::string("proxmox-boot-tool (GRUB): ") + k_grub_default;
            s.evidence.emplace_back(k_grub_default);
            s.sets.emplace_back("GRUB defaults", grub_files(h, s, true));
        } else {
            s.notes.emplace_back("proxmox-boot-tool is set up but neither /etc/kernel/cmdline nor "
                                 "/etc/default/grub exists");
        }
        return s;
    }
    auto ldir = loader_dir(h);
    if (h.exists(k_grub_default)) {
        const bool deb = debian_family(h);
        auto files = grub_files(h, s, deb);
        std::vector<ShellFile> parsed;
        for (const auto& f : files)
            parsed.push_back(parse_shell(f.text));
        std::vector<const ShellFile*> ptrs;
        for (const auto& p : parsed)
            ptrs.push_back(&p);
        ShellEnv env = evaluate(ptrs);
        auto bls = env.vars.find("GRUB_ENABLE_BLSCFG");
        const bool bls_on = bls != env.vars.end() && value_text(bls->second) == "true";
        const bool grub_cfg = h.exists("/boot/grub/grub.cfg") || h.exists("/boot/grub2/grub.cfg");
        if (!bls_on && ldir && h.exists(*ldir + "/loader.conf") && !grub_cfg) {
            s.notes.emplace_back(
                "/etc/default/grub exists, but no grub.cfg does and systemd-boot is set up: "
                "systemd-boot boots this host");
            detect_systemd_boot(h, s, *ldir);
            return s;
        }
        s.evidence.emplace_back(k_grub_default);
        for (size_t i = 1; i < files.size(); ++i)
            s.evidence.push_back(files[i].path);
        if (bls_on) {
            s.loader = Loader::grub_bls;
            s.evidence.emplace_back("GRUB_ENABLE_BLSCFG=true");
            s.description = std::string("GRUB with BootLoaderSpec entries (Fedora/RHEL): ") +
                            k_grub_default + " for new kernels, grubby for the installed ones";
            s.sets.emplace_back("GRUB defaults", std::move(files), "GRUB_CMDLINE_LINUX");
            if (auto t = read_opt(h, k_kernel_cmdline))
                s.sets.emplace_back(
                    k_kernel_cmdline,
                    std::vector<ConfigFile>{{k_kernel_cmdline, Format::cmdline_file, *t}});
            std::map<std::string, std::string> genv;
            std::string saved;
            for (const char* p :
                 {"/boot/grub2/grubenv", "/boot/efi/EFI/fedora/grubenv", "/boot/grub/grubenv"})
                if (auto t = read_opt(h, p)) {
                    genv = read_grubenv(*t);
                    break;
                }
            if (genv.count("saved_entry")) saved = genv["saved_entry"];
            auto names = entry_files(h, "/boot/loader/entries");
            sort_newest_first(names);
            std::string chosen = names.empty() ? "" : names.front();
            for (const auto& n : names)
                if (!saved.empty() && n == saved + ".conf") chosen = n;
            if (!chosen.empty()) {
                std::string p = "/boot/loader/entries/" + chosen;
                if (auto t = read_opt(h, p)) {
                    s.generated_path = p;
                    s.generated_cmdline = entry_options(*t, genv);
                }
            }
            return s;
        }
        s.loader = Loader::grub;
        s.description = std::string("GRUB: ") + k_grub_default +
                        (files.size() > 1 ? " and its drop-ins in " + std::string(k_grub_dropins)
                                          : std::string()) +
                        ", turned into grub.cfg by " + (deb ? "update-grub" : "grub-mkconfig");
        s.sets.emplace_back("GRUB defaults", std::move(files));
        for (const char* p : {"/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"}) {
            auto t = h.read(p);
            if (!t) {
                if (h.exists(p)) s.notes.push_back(t.error().describe());
                continue;
            }
            s.generated_path = p;
            s.generated_cmdline = grub_cfg_cmdline(*t);
            if (!s.generated_cmdline) s.notes.push_back(std::string(p) + " has no 'linux' line");
            break;
        }
        return s;
    }
    if (ldir) {
        detect_systemd_boot(h, s, *ldir);
        return s;
    }
    s.description = "unknown: no /etc/default/grub, loader entries, kernelstub or "
                    "proxmox-boot-tool configuration";
    return s;
}

Regenerate regenerate_command(const host::Host& h, const BootSetup& s,
                              const std::vector<std::string>& added,
                              const std::vector<std::string>& removed) {
    Regenerate r;
    auto prog = [&](const char* name, const char* package) -> std::string {
        if (auto p = h.find_program(name)) return *p;
        r.found = false;
        r.missing = std::string(name) + " (package " + package + ")";
        return name;
    };
    switch (s.loader) {
    case Loader::grub:
    case Loader::proxmox:
        if (s.loader == Loader::proxmox) {
            r.argv = {prog("proxmox-boot-tool", "proxmox-kernel-helper"), "refresh"};
            break;
        }
        if (auto p = h.find_program("update-grub")) {
            r.argv = {*p};
        } else if (auto p = h.find_program("grub-mkconfig")) {
            r.argv = {*p, "-o", "/boot/grub/grub.cfg"};
        } else if (auto p = h.find_program("grub2-mkconfig")) {
            r.argv = {*p, "-o", "/boot/grub2/grub.cfg"};
        } else if (debian_family(h)) {
            r.argv = {prog("update-grub", "grub2-common")};
        } else {
            r.argv = {prog("grub-mkconfig", "grub"), "-o", "/boot/grub/grub.cfg"};
        }
        break;
    case Loader::grub_bls: {
        if (added.empty() && removed.empty()) break;
        r.argv = {prog("grubby", "grubby"), "--update-kernel=ALL"};
        if (!added.empty()) r.argv.push_back("--args=" + util::join(added, " "));
        if (!removed.empty()) r.argv.push_back("--remove-args=" + util::join(removed, " "));
        break;
    }
    case Loader::kernelstub: {
        if (added.empty() && removed.empty()) break;
        r.argv = {prog("kernelstub", "kernelstub")};
        if (!added.empty()) r.argv.insert(r.argv.end(), {"--add-options", util::join(added, " ")});
        if (!removed.empty())
            r.argv.insert(r.argv.end(), {"--delete-options", util::join(removed, " ")});
        break;
    }
    case Loader::systemd_boot:
    case Loader::nixos:
    case Loader::unknown:
        break;
    }
    return r;
}

PlatformGuess detect_platform(const host::Host& h) {
    PlatformGuess g;
    const bool dmar = h.exists("/sys/firmware/acpi/tables/DMAR");
    const bool ivrs = h.exists("/sys/firmware/acpi/tables/IVRS");
    bool intel_units = false, amd_units = false;
    if (auto units = h.list("/sys/class/iommu"))
        for (const auto& u : *units) {
            intel_units = intel_units || util::starts_with(u, "dmar");
            amd_units = amd_units || util::starts_with(u, "ivhd");
        }
    g.firmware_table = dmar || ivrs;
    if (auto rel = h.attr("/proc/sys/kernel/osrelease"))
        if (auto cfg = h.read("/boot/config-" + *rel)) {
            if (cfg->find("\nCONFIG_INTEL_IOMMU_DEFAULT_ON=y") != std::string::npos)
                g.intel_default_on = true;
            else if (cfg->find("CONFIG_INTEL_IOMMU") != std::string::npos)
                g.intel_default_on = false;
        }
    if (dmar && (!ivrs || intel_units)) {
        g.platform = Platform::intel;
        g.evidence = "ACPI DMAR table (Intel VT-d)";
    } else if (ivrs) {
        g.platform = Platform::amd;
        g.evidence = "ACPI IVRS table (AMD-Vi)";
    } else if (intel_units || amd_units) {
        g.platform = intel_units ? Platform::intel : Platform::amd;
        g.evidence = std::string("IOMMU units ") + (intel_units ? "dmar*" : "ivhd*") +
                     " in /sys/class/iommu";
    } else {
        std::string vendor;
        if (auto c = h.read("/proc/cpuinfo")) vendor = host::parse_cpuinfo(*c).vendor;
        if (vendor == "GenuineIntel")
            g.platform = Platform::intel;
        else if (vendor == "AuthenticAMD" || vendor == "HygonGenuine")
            g.platform = Platform::amd;
        g.evidence = "CPU vendor " + (vendor.empty() ? std::string("unknown") : vendor) +
                     " (the firmware describes no IOMMU: no ACPI DMAR or IVRS table)";
    }
    return g;
}

std::vector<std::string> manual_steps(const BootSetup& s, const Goal& goal,
                                      std::string_view running) {
    std::vector<std::string> steps;
    const auto want = goal_params(goal);
    const auto drop = conflicting_params(running, goal);
    if (s.loader == Loader::nixos) {
        std::string list;
        for (const auto& w : want)
            list += " \"" + w + "\"";
        steps.push_back("in /etc/nixos/configuration.nix, add to boot.kernelParams:" + list +
                        "  (boot.kernelParams = [" + list + " ];)");
        for (const auto& d : drop)
            steps.push_back("remove \"" + d +
                            "\" from boot.kernelParams (the running kernel has it)");
        steps.emplace_back("run 'nixos-rebuild boot', then reboot");
    } else {
        steps.emplace_back(
            "vfioctl found no boot configuration it knows (it looks for /etc/default/grub, loader "
            "entries in /efi, /boot or /boot/efi, /etc/kernelstub/configuration and "
            "/etc/kernel/proxmox-boot-uuids)");
        if (!want.empty())
            steps.push_back("add " + util::join(want, " ") +
                            " to the kernel command line in your boot loader's configuration");
        for (const auto& d : drop)
            steps.push_back("remove " + d + " from it (the running kernel has it)");
        steps.emplace_back("regenerate the boot loader's files if it needs that, then reboot");
    }
    steps.emplace_back(
        "check with 'vfioctl iommu show' before rebooting, and with 'vfioctl status' after");
    return steps;
}

BootState inspect_boot(const host::Host& h) {
    return inspect_boot(h, detect_setup(h));
}

BootState inspect_boot(const host::Host& h, BootSetup setup) {
    BootState st;
    st.setup = std::move(setup);
    std::optional<std::string> unreadable;
    if (auto r = h.read("/proc/cmdline"))
        st.running_cmdline = std::string(util::trim(*r));
    else
        unreadable = r.error().describe();
    st.running_known = !unreadable;
    st.running_iommu = iommu_params(st.running_cmdline);
    if (st.setup.editable() && !st.setup.sets.empty())
        st.configured_cmdline = st.setup.sets.front().view().cmdline;
    st.next_cmdline =
        st.setup.generated_cmdline ? st.setup.generated_cmdline : st.configured_cmdline;
    auto words = [](const std::vector<std::string>& v) {
        return v.empty() ? std::string("no IOMMU parameters") : util::join(v, " ");
    };
    if (!st.next_cmdline) {
        st.reason = "the next boot's command line is unknown (" + st.setup.description + ")";
        return st;
    }
    st.next_iommu = iommu_params(*st.next_cmdline);
    st.reboot_pending = st.running_known && st.next_iommu != st.running_iommu;
    if (!st.running_known)
        st.reason = "the next boot gets " + words(st.next_iommu) +
                    "; the running kernel's command line is unknown (" + *unreadable + ")";
    else if (st.reboot_pending)
        st.reason = "the next boot gets " + words(st.next_iommu) + "; the running kernel has " +
                    words(st.running_iommu);
    else
        st.reason = "the next boot gets the same IOMMU parameters as the running kernel (" +
                    words(st.running_iommu) + ")";
    if (st.setup.generated_cmdline && st.configured_cmdline) {
        auto conf = iommu_params(*st.configured_cmdline);
        if (conf != st.next_iommu) {
            st.regenerate_pending = true;
            std::vector<std::string> add, drop;
            for (const auto& p : conf)
                if (std::find(st.next_iommu.begin(), st.next_iommu.end(), p) == st.next_iommu.end())
                    add.push_back(p);
            for (const auto& p : st.next_iommu)
                if (std::find(conf.begin(), conf.end(), p) == conf.end()) drop.push_back(p);
            auto regen = regenerate_command(h, st.setup, add, drop);
            st.reason += "; the configuration says " + words(conf) + " but " +
                         st.setup.generated_path + " says " + words(st.next_iommu);
            if (!regen.argv.empty()) {
                st.regenerate_command = util::join(regen.argv, " ");
                st.reason += ": run '" + st.regenerate_command + "'";
            }
        }
    }
    return st;
}

} // namespace vfioctl::boot
