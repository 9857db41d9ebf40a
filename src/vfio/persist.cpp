#include "vfio/persist.hpp"

#include "kernel/cmdline.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <cerrno>
#include <fmt/format.h>
#include <map>
#include <set>

namespace vfioctl::vfio {

namespace {

// Module names: modprobe and the kernel treat '-' and '_' alike.
std::string module_key(std::string_view name) {
    std::string s(name);
    std::replace(s.begin(), s.end(), '-', '_');
    return s;
}

bool is_vfio_pci(std::string_view name) {
    return module_key(name) == "vfio_pci";
}

// The parameters vfio-pci takes besides ids= (Linux 6.1): not conflicts.
bool known_vfio_pci_param(std::string_view key) {
    static const std::set<std::string> known = {"disable_vga",      "disable_idle_d3",
                                                "nointxmask",       "enable_sriov",
                                                "disable_denylist", "allow_unsafe_interrupts"};
    return known.count(module_key(key)) != 0;
}

std::optional<uint32_t> hex32(std::string_view s) {
    if (s.empty() || s.size() > 8) return std::nullopt;
    for (char c : s)
        if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    auto v = util::parse_hex(s);
    if (!v) return std::nullopt;
    return static_cast<uint32_t>(*v);
}

std::string where_line(std::string_view path, size_t line) {
    return std::string(path) + ":" + std::to_string(line);
}

// "pci-0000:8a:00.0" -> the address; only the full form driverctl writes.
std::optional<pci::PciAddress> entry_address(std::string_view name) {
    if (!util::starts_with(name, "pci-")) return std::nullopt;
    std::string_view a = name.substr(4);
    if (a.size() != 12) return std::nullopt;
    auto parsed = pci::PciAddress::parse(a);
    if (!parsed || parsed->str() != util::to_lower(a)) return std::nullopt;
    return *parsed;
}

// The ids= entries of one value ("10de:2336,10de:22e8") as claims.
void add_ids(std::string_view value, Source source, const std::string& where,
             std::vector<Claim>& claims, std::vector<ConfigProblem>& problems) {
    for (const auto& entry : util::split(value, ',')) {
        if (entry.empty()) continue;
        if (auto id = IdMatch::parse(entry)) {
            claims.push_back(Claim{source, where, std::nullopt, *id, "vfio-pci"});
        } else {
            problems.push_back({source, where,
                                "'" + entry +
                                    "' is no vendor:device[:subvendor:subdevice] ID; vfio-pci "
                                    "skips it",
                                false});
        }
    }
}

// Reads the entries of a per-address directory (vfioctl's or driverctl's).
void read_entry_dir(const host::Tree& host, const char* dir, Source source, PersistConfig& cfg) {
    auto names = host.list(dir);
    if (!names) {
        if (names.error().errnum != ENOENT)
            cfg.problems.push_back({source, dir, names.error().describe(), true});
        return;
    }
    for (const auto& name : *names) {
        const std::string path = std::string(dir) + "/" + name;
        // Temporary files of an atomic write, and the backups of removed
        // entries (boot-journal.json names them): no entries.
        if (name.front() == '.' ||
            (source == Source::vfioctl && name.find(".vfioctl-backup-") != std::string::npos))
            continue;
        auto addr = entry_address(name);
        if (!addr) {
            // driverctl also keeps overrides of other buses (usb-...): not ours to judge.
            if (source == Source::driverctl && !util::starts_with(name, "pci-")) continue;
            cfg.problems.push_back(
                {source, path, "the name is no pci-DDDD:BB:DD.F entry; it is ignored", false});
            continue;
        }
        auto data = host.read(path);
        if (!data) {
            if (data.error().errnum == ENOENT && !host.is_link(path)) continue;
            cfg.problems.push_back({source, path, data.error().describe(), true});
            continue;
        }
        std::string driver(util::trim(*data));
        if (driver.empty() || driver.find_first_of(" \t\r\n/") != std::string::npos) {
            cfg.problems.push_back(
                {source, path,
                 "holds no driver name" + std::string(driver.empty() ? "" : " on one line"),
                 false});
            continue;
        }
        if (source == Source::vfioctl && !is_vfio_pci(driver)) {
            cfg.problems.push_back(
                {source, path, "names '" + driver + "'; vfioctl's entries hold vfio-pci", false});
            continue;
        }
        cfg.claims.push_back(Claim{source, path, *addr, std::nullopt, driver});
    }
}

} // namespace

std::string bind_entry_path(const pci::PciAddress& address) {
    return std::string(k_bind_dir) + "/pci-" + address.str();
}

const char* source_id(Source s) {
    switch (s) {
    case Source::vfioctl:
        return "vfioctl";
    case Source::driverctl:
        return "driverctl";
    case Source::cmdline:
        return "cmdline";
    case Source::next_cmdline:
        return "next_cmdline";
    case Source::modprobe:
        return "modprobe";
    }
    return "?";
}

std::optional<IdMatch> IdMatch::parse(std::string_view text) {
    auto fields = util::split(util::trim(text), ':');
    if (fields.size() < 2 || fields.size() > 6) return std::nullopt;
    IdMatch m;
    uint32_t* slots[] = {&m.vendor,    &m.device,     &m.subvendor,
                         &m.subdevice, &m.class_code, &m.class_mask};
    for (size_t i = 0; i < fields.size(); ++i) {
        auto v = hex32(fields[i]);
        if (!v) return std::nullopt;
        *slots[i] = *v;
    }
    return m;
}

bool IdMatch::matches(const pci::PciDevice& d) const {
    auto field = [](uint32_t want, uint16_t have) { return want == any || want == have; };
    const uint32_t cls = (static_cast<uint32_t>(d.class_code) << 8) | d.prog_if;
    return field(vendor, d.vendor) && field(device, d.device) &&
           field(subvendor, d.subsys_vendor) && field(subdevice, d.subsys_device) &&
           ((cls ^ class_code) & class_mask) == 0;
}

std::string IdMatch::str() const {
    auto h = [](uint32_t v) {
        return v == any ? std::string("ffffffff") : fmt::format("{:04x}", v);
    };
    std::string s = h(vendor) + ":" + h(device);
    if (subvendor != any || subdevice != any || class_mask != 0)
        s += ":" + h(subvendor) + ":" + h(subdevice);
    if (class_mask != 0) s += fmt::format(":{:06x}:{:06x}", class_code, class_mask);
    return s;
}

bool PersistConfig::known(Source s) const {
    return std::none_of(problems.begin(), problems.end(),
                        [s](const ConfigProblem& p) { return p.source == s && p.unreadable; });
}

const Claim* PersistConfig::claim_for(Source s, const pci::PciAddress& address) const {
    for (const auto& c : claims)
        if (c.source == s && c.address == address) return &c;
    return nullptr;
}

std::vector<const Claim*> PersistConfig::ids_claims_for(const pci::PciDevice& d) const {
    std::vector<const Claim*> out;
    for (const auto& c : claims)
        if (c.ids && c.ids->matches(d)) out.push_back(&c);
    return out;
}

ModprobeConf parse_modprobe_conf(std::string_view text, std::string_view path) {
    ModprobeConf out;
    size_t lineno = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        // One logical line: physical lines joined where one ends in '\'.
        std::string logical;
        const size_t first = lineno + 1;
        bool continued = true;
        while (continued && pos < text.size()) {
            size_t nl = text.find('\n', pos);
            std::string_view phys =
                text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
            pos = nl == std::string_view::npos ? text.size() : nl + 1;
            ++lineno;
            if (!phys.empty() && phys.back() == '\r') phys.remove_suffix(1);
            continued = !phys.empty() && phys.back() == '\\';
            if (continued) phys.remove_suffix(1);
            logical += phys;
            if (continued) logical += ' ';
        }
        const std::string where = where_line(path, first);
        std::string_view body = util::trim(logical);
        if (body.empty() || body.front() == '#') continue;
        auto words = util::split_ws(body);
        const std::string& cmd = words[0];
        if (cmd == "options") {
            if (words.size() < 2) {
                out.problems.push_back(
                    {Source::modprobe, where, "'options' without a module", false});
                continue;
            }
            if (!is_vfio_pci(words[1])) continue;
            for (size_t i = 2; i < words.size(); ++i) {
                std::string_view w = words[i];
                if (w.front() == '#') {
                    out.problems.push_back(
                        {Source::modprobe, where,
                         "a '#' inside the line: modprobe passes '" +
                             util::join({words.begin() + static_cast<long>(i), words.end()}, " ") +
                             "' to vfio-pci as parameters (comments only start a line)",
                         false});
                    break;
                }
                auto eq = w.find('=');
                std::string key(w.substr(0, eq));
                if (module_key(key) == "ids") {
                    std::string_view v = eq == std::string_view::npos ? "" : w.substr(eq + 1);
                    if (v.size() >= 2 && v.front() == '"' && v.back() == '"')
                        v = v.substr(1, v.size() - 2);
                    if (v.empty() || v.find('"') != std::string_view::npos) {
                        out.problems.push_back({Source::modprobe, where,
                                                "'" + std::string(w) + "' is no list of IDs",
                                                false});
                        continue;
                    }
                    add_ids(v, Source::modprobe, where, out.claims, out.problems);
                } else if (!known_vfio_pci_param(key)) {
                    out.problems.push_back({Source::modprobe, where,
                                            "'" + std::string(w) + "' is no parameter of vfio-pci",
                                            false});
                }
            }
        } else if (cmd == "softdep") {
            if (words.size() < 3) {
                out.problems.push_back({Source::modprobe, where,
                                        "'softdep' needs a module and 'pre:' or 'post:' lists",
                                        false});
                continue;
            }
            bool pre = false, any_list = false, bad = false;
            for (size_t i = 2; i < words.size(); ++i) {
                if (words[i] == "pre:" || words[i] == "post:") {
                    pre = words[i] == "pre:";
                    any_list = true;
                } else if (!any_list) {
                    bad = true;
                    break;
                } else if (pre && is_vfio_pci(words[i])) {
                    out.softdeps.push_back({where, words[1]});
                }
            }
            if (bad)
                out.problems.push_back(
                    {Source::modprobe, where,
                     "'softdep " + words[1] + "' is followed by no 'pre:' or 'post:'", false});
        }
    }
    return out;
}

std::vector<Claim> cmdline_claims(std::string_view cmdline, Source source, std::string_view where,
                                  std::vector<ConfigProblem>& problems) {
    std::vector<Claim> claims;
    for (const auto& t : kernel::tokenize(cmdline)) {
        if (module_key(t.key) != "vfio_pci.ids") continue;
        add_ids(t.value.value_or(""), source, std::string(where), claims, problems);
    }
    return claims;
}

const std::vector<std::string>& modprobe_dirs() {
    // kmod's order (libkmod-config.c): a file name in an earlier one hides it in later ones.
    static const std::vector<std::string> dirs = {"/etc/modprobe.d", "/run/modprobe.d",
                                                  "/usr/local/lib/modprobe.d", "/lib/modprobe.d",
                                                  "/usr/lib/modprobe.d"};
    return dirs;
}

PersistConfig read_persist(const host::Tree& host, const std::optional<std::string>& next_cmdline) {
    PersistConfig cfg;
    read_entry_dir(host, k_bind_dir, Source::vfioctl, cfg);
    read_entry_dir(host, k_driverctl_dir, Source::driverctl, cfg);

    auto running = host.read("/proc/cmdline");
    if (running) {
        auto c = cmdline_claims(*running, Source::cmdline, "/proc/cmdline", cfg.problems);
        cfg.claims.insert(cfg.claims.end(), c.begin(), c.end());
    } else {
        cfg.problems.push_back(
            {Source::cmdline, "/proc/cmdline", running.error().describe(), true});
    }
    if (next_cmdline) {
        cfg.next_cmdline_known = true;
        auto c = cmdline_claims(*next_cmdline, Source::next_cmdline, "next boot's command line",
                                cfg.problems);
        cfg.claims.insert(cfg.claims.end(), c.begin(), c.end());
    }

    // Every *.conf, the first directory's file of a name winning, read in
    // name order as modprobe does.
    std::map<std::string, std::string> files; // name -> host path
    std::map<std::string, std::string> real;  // name -> resolved path of the winner
    for (const auto& dir : modprobe_dirs()) {
        auto names = host.list(dir);
        if (!names) {
            if (names.error().errnum != ENOENT && names.error().errnum != ENOTDIR)
                cfg.problems.push_back({Source::modprobe, dir, names.error().describe(), true});
            continue;
        }
        for (const auto& n : *names) {
            if (n.size() <= 5 || n.compare(n.size() - 5, 5, ".conf") != 0) continue;
            const std::string p = dir + "/" + n;
            auto resolved = host.resolve(p);
            if (files.count(n)) {
                // /lib -> usr/lib: the same file seen twice hides nothing.
                if (!resolved || *resolved != real[n]) cfg.masked.push_back(p);
                continue;
            }
            files[n] = p;
            real[n] = resolved ? *resolved : p;
        }
    }
    for (const auto& [name, p] : files) {
        auto data = host.read(p);
        if (!data) {
            if (data.error().errnum == ENOENT && !host.is_link(p)) continue;
            cfg.problems.push_back({Source::modprobe, p, data.error().describe(), true});
            continue;
        }
        auto conf = parse_modprobe_conf(*data, p);
        cfg.claims.insert(cfg.claims.end(), conf.claims.begin(), conf.claims.end());
        cfg.softdeps.insert(cfg.softdeps.end(), conf.softdeps.begin(), conf.softdeps.end());
        cfg.problems.insert(cfg.problems.end(), conf.problems.begin(), conf.problems.end());
    }
    return cfg;
}

const char* conflict_kind_id(ConflictKind k) {
    switch (k) {
    case ConflictKind::driverctl_vs_vfioctl:
        return "driverctl_vs_vfioctl";
    case ConflictKind::ids_vs_driverctl:
        return "ids_vs_driverctl";
    case ConflictKind::cmdline_vs_modprobe:
        return "cmdline_vs_modprobe";
    case ConflictKind::cmdline_vs_next:
        return "cmdline_vs_next";
    case ConflictKind::modprobe_twice:
        return "modprobe_twice";
    }
    return "?";
}

std::vector<Conflict> find_conflicts(const PersistConfig& cfg, const pci::Inventory& inv) {
    std::vector<Conflict> out;
    for (const auto& c : cfg.claims) {
        if (c.source != Source::vfioctl || !c.address) continue;
        const Claim* dc = cfg.claim_for(Source::driverctl, *c.address);
        if (dc && !is_vfio_pci(dc->driver))
            out.push_back({ConflictKind::driverctl_vs_vfioctl,
                           c.address,
                           {c.where, dc->where},
                           c.address->str() +
                               ": vfioctl binds it to vfio-pci at boot, driverctl "
                               "sends it to " +
                               dc->driver + " ('driverctl unset-override " + c.address->str() +
                               "' removes driverctl's)"});
    }
    for (const auto& d : inv.devices) {
        const Claim* dc = cfg.claim_for(Source::driverctl, d.addr);
        if (!dc || is_vfio_pci(dc->driver)) continue;
        for (const Claim* ic : cfg.ids_claims_for(d))
            out.push_back({ConflictKind::ids_vs_driverctl,
                           d.addr,
                           {ic->where, dc->where},
                           d.addr.str() + ": vfio-pci ids " + ic->ids->str() + " (" + ic->where +
                               ") take it, driverctl sends it to " + dc->driver});
    }
    auto ids_of = [&](Source s) {
        std::set<std::string> ids;
        std::vector<std::string> where;
        for (const auto& c : cfg.claims)
            if (c.source == s && c.ids) {
                ids.insert(c.ids->str());
                if (std::find(where.begin(), where.end(), c.where) == where.end())
                    where.push_back(c.where);
            }
        return std::pair(ids, where);
    };
    auto [run_ids, run_where] = ids_of(Source::cmdline);
    auto [mod_ids, mod_where] = ids_of(Source::modprobe);
    auto [next_ids, next_where] = ids_of(Source::next_cmdline);
    auto joined = [](const std::set<std::string>& s) {
        return s.empty() ? std::string("none") : util::join({s.begin(), s.end()}, ",");
    };
    if (!run_ids.empty() && !mod_ids.empty() && run_ids != mod_ids) {
        std::vector<std::string> where = run_where;
        where.insert(where.end(), mod_where.begin(), mod_where.end());
        out.push_back({ConflictKind::cmdline_vs_modprobe, std::nullopt, where,
                       "vfio-pci ids on the command line (" + joined(run_ids) +
                           ") differ from modprobe.d's (" + joined(mod_ids) +
                           "): which list vfio-pci gets depends on how it is loaded"});
    }
    if (cfg.next_cmdline_known && next_ids != run_ids) {
        std::vector<std::string> where = run_where;
        where.insert(where.end(), next_where.begin(), next_where.end());
        out.push_back({ConflictKind::cmdline_vs_next, std::nullopt, where,
                       "vfio-pci ids on the running command line (" + joined(run_ids) +
                           ") differ from the next boot's (" + joined(next_ids) + ")"});
    }
    if (mod_where.size() > 1)
        out.push_back({ConflictKind::modprobe_twice, std::nullopt, mod_where,
                       "vfio-pci's ids are set on " + std::to_string(mod_where.size()) +
                           " modprobe.d lines (" + util::join(mod_where, ", ") +
                           "): the last one read wins"});
    return out;
}

const char* at_boot_outcome_id(AtBootOutcome o) {
    switch (o) {
    case AtBootOutcome::already:
        return "already";
    case AtBootOutcome::bound:
        return "bound";
    case AtBootOutcome::taken_back:
        return "taken_back";
    case AtBootOutcome::override_only:
        return "override_only";
    case AtBootOutcome::absent:
        return "absent";
    case AtBootOutcome::failed:
        return "failed";
    }
    return "?";
}

std::vector<AtBootItem> bind_at_boot(const host::Host& host, const PersistConfig& cfg,
                                     const std::vector<pci::PciAddress>& only,
                                     int unbind_timeout_ms,
                                     const std::map<pci::PciAddress, std::string>& never_take) {
    std::vector<pci::PciAddress> addrs;
    for (const auto& c : cfg.claims)
        if (c.source == Source::vfioctl && c.address &&
            (only.empty() || std::find(only.begin(), only.end(), *c.address) != only.end()))
            addrs.push_back(*c.address);
    std::sort(addrs.begin(), addrs.end());
    std::optional<Status> loaded; // vfio-pci, loaded once when first needed
    std::vector<AtBootItem> out;
    for (const auto& a : addrs) {
        AtBootItem it{a.str(), AtBootOutcome::absent, std::nullopt, ""};
        const std::string dev = "/sys/bus/pci/devices/" + it.address;
        if (!host.exists(dev)) {
            it.note = "no such device on this boot";
            out.push_back(it);
            continue;
        }
        it.from = host.link_name(dev + "/driver");
        if (it.from && is_vfio_pci(*it.from)) {
            it.outcome = AtBootOutcome::already;
            // A later re-probe (a driver unloaded and loaded) must not take it.
            if (host.attr(dev + "/driver_override") != std::optional<std::string>("vfio-pci"))
                if (auto s = host.write(dev + "/driver_override", "vfio-pci"); !s)
                    it.note = "driver_override could not be set: " + s.error().describe();
            out.push_back(it);
            continue;
        }
        if (auto nt = never_take.find(a); it.from && nt != never_take.end()) {
            it.outcome = AtBootOutcome::failed;
            it.note = "not taken from " + *it.from + ": it holds the " + nt->second +
                      "; remove its entry (vfioctl unbind --persistent " + it.address + ")";
            out.push_back(it);
            continue;
        }
        if (auto s = host.write(dev + "/driver_override", "vfio-pci"); !s) {
            it.outcome = AtBootOutcome::failed;
            it.note = "driver_override could not be set: " + s.error().describe();
            out.push_back(it);
            continue;
        }
        if (it.from) {
            auto s = host.write_bounded("/sys/bus/pci/drivers/" + *it.from + "/unbind", it.address,
                                        unbind_timeout_ms);
            if (!s) {
                it.outcome = AtBootOutcome::failed;
                it.note = *it.from + " did not let it go: " + s.error().describe() +
                          "; driver_override is vfio-pci, so the next probe gives it to vfio-pci";
                out.push_back(it);
                continue;
            }
        }
        if (!loaded) loaded = host.load_module("vfio_pci");
        if (!*loaded) {
            it.outcome = AtBootOutcome::override_only;
            it.note = "vfio-pci could not be loaded (" + loaded->error().describe() +
                      "); no other driver will take it while driver_override is set";
            out.push_back(it);
            continue;
        }
        auto probe = host.write("/sys/bus/pci/drivers_probe", it.address);
        auto now = host.link_name(dev + "/driver");
        if (now && is_vfio_pci(*now)) {
            it.outcome = it.from ? AtBootOutcome::taken_back : AtBootOutcome::bound;
            if (it.from)
                it.note = *it.from +
                          " had bound it before vfioctl-bind.service ran: the initramfs loads " +
                          *it.from +
                          ". To keep it off from the start, put vfioctl's rule and entries into "
                          "the initramfs: 'update-initramfs -u' (vfioctl's initramfs-tools hook "
                          "copies them)";
        } else {
            it.outcome = AtBootOutcome::override_only;
            it.note = "driver_override is vfio-pci but after the probe it is on " +
                      now.value_or(std::string("no driver")) +
                      (probe ? std::string() : " (" + probe.error().describe() + ")");
        }
        out.push_back(it);
    }
    return out;
}

BootHooks boot_hooks(const host::Tree& host) {
    BootHooks h;
    auto first = [&](std::initializer_list<const char*> dirs, const char* name) {
        for (const char* d : dirs) {
            const std::string p = std::string(d) + "/" + name;
            if (host.exists(p)) return std::optional<std::string>(p);
        }
        return std::optional<std::string>();
    };
    if (!first({"/etc/udev/rules.d", "/run/udev/rules.d", "/lib/udev/rules.d",
                "/usr/lib/udev/rules.d"},
               k_udev_rule))
        h.missing.push_back(std::string("the udev rule ") + k_udev_rule +
                            " is not installed (/lib/udev/rules.d)");
    auto unit = first({"/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"},
                      k_bind_unit);
    if (!unit) {
        h.missing.push_back(std::string("the unit ") + k_bind_unit +
                            " is not installed (/lib/systemd/system)");
        return h;
    }
    const std::string etc_unit = std::string("/etc/systemd/system/") + k_bind_unit;
    if (auto t = host.read_link(etc_unit); t && *t == "/dev/null") {
        h.missing.push_back(std::string(k_bind_unit) + " is masked ('systemctl unmask " +
                            k_bind_unit + "')");
        return h;
    }
    if (!host.exists(std::string("/etc/systemd/system/sysinit.target.wants/") + k_bind_unit))
        h.missing.push_back(std::string(k_bind_unit) + " is not enabled ('systemctl enable " +
                            k_bind_unit + "')");
    return h;
}

Result<PersistPlan> plan_persist(const PersistConfig& cfg, const BootHooks& hooks,
                                 const std::vector<pci::PciAddress>& devices) {
    if (!hooks.ok())
        return Error{"a persistent binding would not be applied at boot on this host: " +
                         util::join(hooks.missing, "; "),
                     {},
                     "install vfioctl's package (it ships and enables both), or 'cmake --install' "
                     "and 'systemctl enable vfioctl-bind.service'; nothing was changed",
                     0};
    for (Source s : {Source::vfioctl, Source::driverctl})
        if (!cfg.known(s)) {
            std::vector<std::string> why;
            for (const auto& p : cfg.problems)
                if (p.source == s && p.unreadable) why.push_back(p.where + ": " + p.text);
            return Error{std::string("cannot read ") + source_id(s) +
                             "'s persistent bindings, so what they say about these devices is "
                             "unknown: " +
                             util::join(why, "; "),
                         {},
                         "nothing was changed",
                         0};
        }
    PersistPlan plan;
    std::vector<std::string> against;
    std::vector<std::string> unset;
    for (const auto& a : devices) {
        if (const Claim* dc = cfg.claim_for(Source::driverctl, a)) {
            if (is_vfio_pci(dc->driver)) {
                plan.notes.push_back(a.str() +
                                     ": driverctl already binds it to vfio-pci at boot (" +
                                     dc->where + "): kept, no second entry");
                continue;
            }
            against.push_back(a.str() + " to " + dc->driver + " (" + dc->where + ")");
            unset.push_back("'driverctl unset-override " + a.str() + "'");
            continue;
        }
        if (const Claim* vc = cfg.claim_for(Source::vfioctl, a)) {
            plan.notes.push_back(a.str() + ": already bound at every boot (" + vc->where + ")");
            continue;
        }
        plan.add.push_back(a);
    }
    if (!against.empty())
        return Error{"driverctl sends " + util::join(against, ", ") +
                         " at every boot; vfioctl does not fight it",
                     {},
                     "remove driverctl's override with " + util::join(unset, ", ") +
                         " (that also rebinds the device now), then run this again; nothing was "
                         "changed",
                     0};
    return plan;
}

Result<PersistPlan> plan_unpersist(const PersistConfig& cfg, const pci::Inventory& inv,
                                   const std::vector<pci::PciAddress>& devices) {
    if (!cfg.known(Source::vfioctl))
        return Error{"cannot read vfioctl's persistent bindings (" + std::string(k_bind_dir) + ")",
                     k_bind_dir, "nothing was changed", 0};
    PersistPlan plan;
    for (const auto& a : devices) {
        if (cfg.claim_for(Source::vfioctl, a))
            plan.remove.push_back(a);
        else
            plan.notes.push_back(a.str() + ": no persistent binding of vfioctl's");
        if (const Claim* dc = cfg.claim_for(Source::driverctl, a); dc && is_vfio_pci(dc->driver))
            plan.notes.push_back(a.str() + ": driverctl still binds it to vfio-pci at boot (" +
                                 dc->where + "): 'driverctl unset-override " + a.str() +
                                 "' removes that");
        if (const auto* d = inv.find(a))
            for (const Claim* ic : cfg.ids_claims_for(*d))
                plan.notes.push_back(a.str() + ": vfio-pci ids " + ic->ids->str() + " (" +
                                     ic->where + ") still take it at boot");
    }
    return plan;
}

} // namespace vfioctl::vfio
