// 'vfioctl vm start|stop|status|list|console|run|export': QEMU VMs with or without
// a GPU, and the kernel-development loop.

#include "cli/vm.hpp"

#include "cli/commands.hpp"
#include "cli/gpu_select.hpp"
#include "cli/health_view.hpp"
#include "cli/model.hpp"
#include "cli/numa_view.hpp"
#include "host/atomic_file.hpp"
#include "host/users.hpp"
#include "pci/health.hpp"
#include "services/console.hpp"
#include "services/devices.hpp"
#include "services/machine.hpp"
#include "util/strings.hpp"
#include "vfio/journal.hpp"
#include "vm/guest.hpp"
#include "vm/libvirt.hpp"
#include "vm/machine.hpp"
#include "vm/pinning.hpp"
#include "vm/process.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <set>
#include <sstream>
#include <variant>

namespace vfioctl::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The devices service on ctx's host: progress lines on stderr in text mode.
services::Devices devices(Context& ctx, const std::string& state_dir) {
    return services::Devices(ctx.host, state_dir, [&ctx](const std::string& s) {
        if (!ctx.json) ctx.err << s << "\n";
    });
}

} // namespace

namespace {

// The devices targets name on ctx's host, taken (bound to vfio-pci) when
// bind is true, else only resolved and checked as taking them would be.
services::Taken<Passthrough> find_devices(Context& ctx, const std::vector<std::string>& targets,
                                          const std::string& state_dir, bool bind) {
    auto m = load_host(ctx, state_dir);
    if (!m) return m.error();
    // "all-gpus" and "nvswitches" (--all-gpus, --with-nvswitches, or the
    // profile's gpus list) name this host's devices of that kind.
    GpuSelection sel;
    std::vector<std::string> named;
    for (const auto& t : targets) {
        if (t == k_all_gpus)
            sel.all_gpus = true;
        else if (t == k_nvswitches)
            sel.nvswitches = true;
        else
            named.push_back(t);
    }
    if (sel.any()) {
        auto s = select_devices(*m, sel);
        if (!s) return s.error();
        for (const auto& n : s->notes)
            warn(ctx, "--all-gpus " + n);
        for (const auto& a : s->addresses)
            if (std::find(named.begin(), named.end(), a) == named.end()) named.push_back(a);
    }
    if (!bind) return services::resolve_passthrough(*m, named);
    return devices(ctx, state_dir).take(*m, named);
}

} // namespace

services::Taken<Passthrough> take_devices(Context& ctx, const std::vector<std::string>& targets,
                                          const std::string& state_dir) {
    return find_devices(ctx, targets, state_dir, true);
}

Status give_devices_back(Context& ctx, const std::vector<std::string>& addresses,
                         const std::string& state_dir) {
    return devices(ctx, state_dir).give_back(addresses);
}

namespace {

struct ProfileFlags {
    vm::ProfileOverrides o;
    std::string memory, machine, accel, share, disk, kernel, initrd, append, console_log;
    int cpus = 0, ssh_port = 0;
    bool share_root = false, no_share = false;
};

void add_profile_flags(CLI::App& sub, ProfileFlags& f, bool run_mode) {
    sub.add_option("--memory,-m", f.memory, "RAM: MiB or a size (4G)");
    sub.add_option("--cpus", f.cpus, "virtual CPUs")->check(CLI::Range(1, 1024));
    sub.add_option("--accel", f.accel, "auto (KVM when usable, else TCG), kvm or tcg")
        ->check(CLI::IsMember({"auto", "kvm", "tcg"}));
    sub.add_option("--share", f.share,
                   run_mode ? "how / is shared: auto (virtiofs when virtiofsd is installed and "
                              "usable, else 9p), "
                              "9p or virtiofs"
                            : "how / is shared: auto or 9p (virtiofs is for 'vm run')")
        ->check(CLI::IsMember({"auto", "9p", "virtiofs"}));
    sub.add_option("--kernel", f.kernel, "kernel image (bzImage) to boot");
    sub.add_option("--initrd", f.initrd,
                   run_mode ? "initramfs to add (its files come before vfioctl's /init)"
                            : "initramfs for --kernel");
    sub.add_option("--append", f.append, "kernel command line (added to vfioctl's)");
    sub.add_option("--console-log", f.console_log, "append the serial console to this file");
    // One value per --gpu: without allow_extra_args(false), a --gpu before
    // "--" swallowed the separator and the command's own options were parsed.
    // TakeAll: each --gpu adds one (the default policy refused a second).
    sub.add_option("--gpu", f.o.gpus,
                   "device to pass through: BDF (8a:00.0) or vendor:device (10de:2336); repeat")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->allow_extra_args(false);
    sub.add_flag_callback(
        "--all-gpus", [&f] { f.o.gpus.emplace_back(k_all_gpus); },
        "pass every NVIDIA GPU that can go ('vfioctl status': WILL WORK), each on its own root "
        "port, in address order (profile: gpus = [\"all-gpus\"])");
    sub.add_flag_callback(
        "--with-nvswitches", [&f] { f.o.gpus.emplace_back(k_nvswitches); },
        "pass every NVSwitch too: the full passthrough model of an HGX/DGX fabric, with Fabric "
        "Manager run inside the VM (profile: \"nvswitches\")");
    if (run_mode) return;
    sub.add_option("--machine", f.machine, "QEMU machine type (q35)");
    sub.add_option("--disk", f.disk, "disk image to boot (raw, or .qcow2)");
    sub.add_flag("--share-host-root", f.share_root,
                 "share / read-only (mount tag hostroot; over what: --share)");
    sub.add_flag("--no-share-host-root", f.no_share, "do not share /");
    sub.add_option("--ssh-port", f.ssh_port, "forward this host port to the guest's port 22")
        ->check(CLI::Range(1, 65535));
    sub.add_option("--qemu-arg", f.o.extra_args,
                   "extra QEMU argument (repeat; added after the profile's)")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->allow_extra_args(false);
}

vm::ProfileOverrides overrides_of(ProfileFlags& f) {
    vm::ProfileOverrides o = f.o;
    auto opt = [](const std::string& s) {
        return s.empty() ? std::nullopt : std::optional<std::string>(s);
    };
    o.memory = opt(f.memory);
    o.machine = opt(f.machine);
    o.accel = opt(f.accel);
    o.disk = opt(f.disk);
    o.kernel = opt(f.kernel);
    o.initrd = opt(f.initrd);
    o.append = opt(f.append);
    o.console_log = opt(f.console_log);
    if (f.cpus) o.cpus = f.cpus;
    if (f.ssh_port) o.ssh_port = f.ssh_port;
    o.share = opt(f.share);
    if (f.share_root) o.share_host_root = true;
    if (f.no_share) o.share_host_root = false;
    return o;
}

struct StartOptions {
    std::string name;
    std::string owner; // --owner: QEMU runs as this user
    ProfileFlags flags;
    std::string run_base;
    std::string state_dir;
    double wait_s = 30;
};

json record_json(const vm::VmRecord& r) {
    return {{"name", r.name},
            {"pid", r.pid},
            {"accel", r.accel},
            {"qmp_socket", r.qmp_socket},
            {"console_socket", r.console_socket},
            {"console_log", r.console_log},
            {"ssh_port", r.ssh_port ? json(*r.ssh_port) : json(nullptr)},
            {"devices", r.devices},
            {"device_ids", r.device_ids},
            {"profile", r.profile}};
}

// A run directory whose QEMU is gone: give back what it held, then remove it.
Status clean_stale(Context& ctx, const services::Machine& machine, const vm::VmRecord& rec,
                   const std::string& state_dir) {
    warn(ctx, "VM '" + rec.name + "' is not running (stale pidfile, PID " +
                  std::to_string(rec.pid) + "); cleaning up");
    if (auto s = give_devices_back(ctx, rec.devices, state_dir); !s) return s;
    machine.remove();
    return {};
}

// A Notify that prints a warning on ctx.
services::Notify warner(Context& ctx) {
    return [&ctx](const std::string& w) { warn(ctx, w); };
}

// Pins a started VM's vCPU threads to the plan's CPUs; a failure is a
// warning (the VM runs, unpinned). The threads pinned.
std::vector<int> pin_started(Context& ctx, const vm::VmRecord& rec, const vm::PlacementPlan& plan) {
    if (plan.pin_cpus.empty()) return {};
    auto qmp = vm::QmpClient::connect(rec.qmp_socket, 5000);
    auto pinned = qmp ? vm::pin_vcpus(*qmp, plan.pin_cpus) : Result<std::vector<int>>(qmp.error());
    if (!pinned) {
        warn(ctx, "vCPUs not pinned: " + pinned.error().describe());
        return {};
    }
    return *pinned;
}

// NAME's profile with the flags applied: NAME, or a .toml file (a path, or
// a name ending in .toml) whose stem names the VM (name is set to it). A
// failed Report for a bad name, profile or flag.
std::variant<vm::Profile, Report> profile_of(Context& ctx, std::string& name, ProfileFlags& flags) {
    const bool file = vm::profile_paths(name).size() == 1;
    const std::string source = file ? services::absolute_path(name) : name;
    if (file) name = fs::path(name).stem().string();
    if (auto s = vm::check_vm_name(name); !s) return failed(s.error(), exit_usage);
    auto ov = overrides_of(flags);
    auto profile = vm::load_profile(ctx.host, source, ov.kernel || ov.disk);
    if (!profile) return failed(profile.error());
    vm::Profile p = std::move(profile).value();
    p.name = name;
    if (auto s = vm::apply_overrides(p, ov); !s) return failed(s.error(), exit_usage);
    return p;
}

Report run_start(Context& ctx, StartOptions& o) {
    auto loaded = profile_of(ctx, o.name, o.flags);
    if (auto* r = std::get_if<Report>(&loaded)) return *r;
    vm::Profile p = std::move(std::get<vm::Profile>(loaded));
    // A detached VM's share is QEMU's own 9p: no virtiofsd to outlive us.
    if (p.share_host_root && p.share == vm::ShareMode::virtiofs)
        return failed(Error{"'vm start' shares / over 9p only", p.source,
                            "use share = \"auto\" or \"9p\" (--share); virtiofs is for 'vm run'",
                            0},
                      exit_usage);
    if (auto s = services::check_boot(ctx.host, p); !s) return failed(s.error());
    auto qemu = services::find_qemu(ctx.host);
    if (!qemu) return failed(qemu.error());

    const services::Machine machine(o.run_base, o.name);
    auto prior = machine.check_free(warner(ctx));
    if (!prior) return failed(prior.error());
    if (*prior)
        if (auto s = clean_stale(ctx, machine, **prior, o.state_dir); !s) return failed(s.error());
    if (p.ssh_port && !vm::tcp_port_free(*p.ssh_port))
        return failed(Error{"port " + std::to_string(*p.ssh_port) + " is already in use",
                            {},
                            "pick another with --ssh-port, or stop what listens there",
                            EADDRINUSE});
    auto accel = vm::choose_accel(p.accel, vm::read_kvm_state(ctx.host));
    if (accel.error) return failed(*accel.error);
    if (!accel.warning.empty()) warn(ctx, accel.warning);
    for (std::string* f : {&p.firmware.ovmf_code, &p.firmware.ovmf_vars})
        *f = services::absolute_path(*f);
    auto firmware = vm::prepare_firmware(ctx.host, p.firmware, o.state_dir, o.name);
    if (!firmware) return failed(firmware.error());

    std::optional<services::RunAs> run_as;
    if (!o.owner.empty()) {
        auto u = host::find_user(ctx.host, o.owner);
        if (!u) return failed(u.error(), exit_usage);
        // VFIO pins all guest RAM; QEMU's own allocations come on top.
        run_as = services::RunAs{*u, (p.memory_mib + 1024) << 20};
    }

    Passthrough pass;
    if (!p.gpus.empty()) {
        auto taken = take_devices(ctx, p.gpus, o.state_dir);
        if (!taken) return refused(taken.refusal());
        pass = std::move(taken).value();
    }
    auto fail = [&](const Error& e) {
        if (auto s = give_devices_back(ctx, pass.addresses, o.state_dir); !s)
            warn(ctx, s.error().describe());
        return failed(e);
    };
    std::vector<std::string> owned_nodes;
    if (run_as) {
        // Each group the VM holds: its /dev/vfio/N to the user.
        std::set<std::string> nodes;
        for (const auto& a : pass.addresses) {
            auto g = ctx.host.link_name("/sys/bus/pci/devices/" + a + "/iommu_group");
            if (!g) return fail(Error{"the IOMMU group of " + a + " cannot be read", {}, "", 0});
            nodes.insert("/dev/vfio/" + *g);
        }
        for (const auto& n : nodes) {
            if (auto s = host::give_node(ctx.host, n, run_as->user); !s) return fail(s.error());
            owned_nodes.push_back(n);
        }
    }
    // Before anything starts: an explicit placement that cannot be met refuses.
    auto placed = place_vm(ctx.host, p, pass.addresses);
    if (!placed) return fail(placed.error());
    if (auto ml = vm::judge_memlock(host::read_numa(ctx.host).memlock, p.memory_mib);
        !pass.addresses.empty() && ml.kind == vm::MemlockVerdict::too_low)
        warn(ctx, "locked-memory limit " + ml.text);
    if (auto s = machine.make_dir(); !s) return fail(s.error());

    vm::VmRecord rec;
    rec.name = o.name;
    rec.accel = accel.kvm ? "kvm" : "tcg";
    machine.place(rec, p.console_log);
    rec.ssh_port = p.ssh_port;
    rec.devices = pass.addresses;
    rec.device_ids = pass.ids;
    rec.profile = p.source;
    vm::LaunchSpec spec;
    spec.qemu = *qemu;
    spec.kvm = accel.kvm;
    spec.slots = pass.slots;
    spec.qmp_socket = rec.qmp_socket;
    spec.pidfile = rec.pidfile;
    spec.daemonize = true;
    spec.serials = {{vm::SerialPort::socket, rec.console_socket, rec.console_log}};
    spec.firmware = *firmware;
    spec.placement = *placed;
    rec.argv = vm::qemu_argv(p, spec);
    auto launched = machine.launch(
        ctx.host, rec, *qemu, static_cast<int>(o.wait_s * 1000),
        [&ctx](const std::string& line) {
            if (!ctx.json) ctx.err << line << "\n";
        },
        run_as);
    if (!launched) return fail(launched.error());
    const std::vector<int> pinned = pin_started(ctx, rec, *placed);
    Report r;
    r.json = record_json(rec);
    r.json["status"] = *launched;
    r.json["owner"] = run_as ? json({{"user", run_as->user.name},
                                     {"uid", run_as->user.uid},
                                     {"memlock_bytes", run_as->memlock_bytes},
                                     {"nodes", owned_nodes}})
                             : json(nullptr);
    r.json["placement"] = placement_json(*placed, pinned);
    r.text = "VM started with PID " + std::to_string(rec.pid) + "\n  name: " + rec.name + " (" +
             rec.accel + ", " + std::to_string(p.memory_mib) + " MiB, " + std::to_string(p.cpus) +
             " CPUs)\n";
    for (size_t i = 0; i < rec.devices.size(); ++i)
        r.text += "  passed through: " + rec.devices[i] + " [" + rec.device_ids[i] + "]\n";
    r.text += "  placement: " + placed->summary() + "\n";
    if (rec.ssh_port)
        r.text += "  ssh: ssh -p " + std::to_string(*rec.ssh_port) + " root@localhost\n";
    if (run_as)
        r.text += "  runs as: " + run_as->user.name + " (uid " + std::to_string(run_as->user.uid) +
                  "), locked memory up to " + std::to_string(run_as->memlock_bytes >> 20) + " MiB" +
                  (owned_nodes.empty() ? "" : ", owns " + util::join(owned_nodes, " ")) + "\n";
    r.text += "  console: vfioctl vm console " + rec.name + " (log " + rec.console_log + ")\n";
    r.text += "  stop: vfioctl vm stop " + rec.name + "\n";
    return r;
}

struct ExportOptions {
    std::string name;
    ProfileFlags flags;
    std::string output; // "" prints the XML
    std::string state_dir;
};

// The libvirt domain of what 'vm start NAME' would run: the profile, its
// devices, placement and firmware resolved on the host as vm start does
// them, with the same refusals; nothing is bound, written or started.
Report run_export(Context& ctx, ExportOptions& o) {
    auto loaded = profile_of(ctx, o.name, o.flags);
    if (auto* r = std::get_if<Report>(&loaded)) return *r;
    vm::Profile p = std::move(std::get<vm::Profile>(loaded));
    if (auto s = services::check_boot(ctx.host, p); !s) return failed(s.error());
    vm::LibvirtSpec spec;
    auto accel = vm::choose_accel(p.accel, vm::read_kvm_state(ctx.host));
    if (accel.error) return failed(*accel.error);
    if (!accel.warning.empty()) warn(ctx, accel.warning);
    spec.kvm = accel.kvm;
    if (p.accel == vm::Accel::automatic)
        spec.notes.push_back(std::string("accel = \"auto\": ") + (accel.kvm ? "KVM" : "TCG") +
                             " on this host");
    if (auto q = services::find_qemu(ctx.host)) spec.emulator = *q;
    if (p.firmware.kind == vm::Firmware::uefi) {
        for (std::string* f : {&p.firmware.ovmf_code, &p.firmware.ovmf_vars})
            if (!f->empty()) *f = services::absolute_path(*f);
        auto ovmf = vm::find_ovmf(ctx.host, p.firmware);
        if (!ovmf) return failed(ovmf.error());
        spec.ovmf = *ovmf;
    }
    std::vector<std::string> addresses;
    if (!p.gpus.empty()) {
        auto found = find_devices(ctx, p.gpus, o.state_dir, false);
        if (!found) return refused(found.refusal());
        spec.slots = found->slots;
        addresses = found->addresses;
    }
    auto placed = place_vm(ctx.host, p, addresses);
    if (!placed) return failed(placed.error());
    spec.placement = *placed;
    spec.notes.push_back("numa = \"" + vm::numa_id(p.numa) + "\", hugepages = \"" +
                         vm::hugepages_id(p.hugepages) + "\": " + placed->summary());
    auto dom = vm::libvirt_domain(p, spec);
    for (const auto& w : dom.warnings)
        warn(ctx, w);
    Report r;
    r.json = {
        {"name", p.name},           {"profile", p.source},
        {"devices", addresses},     {"output", o.output.empty() ? json(nullptr) : json(o.output)},
        {"warnings", dom.warnings}, {"xml", dom.xml}};
    if (o.output.empty()) {
        r.text = dom.xml;
        return r;
    }
    if (auto s = host::write_file_atomic(o.output, dom.xml, {.mode = 0644}); !s)
        return failed(s.error());
    r.text = "libvirt domain '" + p.name + "' written to " + o.output + " (virsh define " +
             o.output + ")\n";
    return r;
}

struct StopOptions {
    std::string name;
    bool force = false;
    double timeout_s = 30;
    std::string run_base;
    std::string state_dir;
};

Report run_stop(Context& ctx, const StopOptions& o) {
    if (auto s = vm::check_vm_name(o.name); !s) return failed(s.error(), exit_usage);
    const services::Machine machine(o.run_base, o.name);
    auto rec = machine.record();
    if (!rec)
        return failed(Error{"no VM '" + o.name + "' is running", machine.dir(),
                            "'vfioctl vm list' shows the VMs", 0});
    auto how = machine.stop(*rec, o.force, static_cast<int>(o.timeout_s * 1000), [&] {
        if (!ctx.json) ctx.err << "ACPI power-down sent; waiting up to " << o.timeout_s << " s\n";
    });
    if (!how) return failed(how.error());
    // Before the give-back: AER counters (to tell the errors it causes) and
    // the drivers the journal will give the devices back to.
    std::map<std::string, pci::AerErrors> aer_before;
    std::map<std::string, std::optional<std::string>> back_to;
    auto journal = vfio::load_journal(ctx.host, o.state_dir);
    for (const auto& d : rec->devices)
        if (auto a = pci::PciAddress::parse(d)) {
            aer_before[d] = pci::read_aer(ctx.host, *a);
            if (journal)
                if (const auto* e = journal->find(a->str())) back_to[d] = e->original_driver;
        }
    auto health_after = [&](bool only_wedged, std::string& text) {
        json after = json::array();
        for (const auto& [d, before] : aer_before) {
            auto it = back_to.find(d);
            const auto h = pci::check_return(ctx.host, pci::PciAddress::parse(d).value(), before,
                                             it == back_to.end() ? std::nullopt : it->second);
            if (only_wedged && h.state != pci::ReturnState::wedged) continue;
            after.push_back(return_json(h));
            text += return_text(h);
        }
        return after;
    };
    if (auto s = give_devices_back(ctx, rec->devices, o.state_dir); !s) {
        Error e = s.error();
        std::string text;
        json wedged = health_after(true, text);
        if (!wedged.empty())
            e.hint = "a device looks wedged: reboot the host, then run 'vfioctl recover'";
        return failed(e, exit_failure,
                      wedged.empty() ? json(nullptr) : json{{"health_after", wedged}}, text);
    }
    machine.remove();
    Report r;
    r.json = {{"name", o.name}, {"stopped", *how}, {"given_back", rec->devices}};
    r.text = "VM " + o.name + " " + *how + "\n";
    for (const auto& d : rec->devices)
        r.text += "  given back: " + d + "\n";
    r.json["health_after"] = health_after(false, r.text);
    return r;
}

std::string uptime_text(int64_t started) {
    int64_t s = std::max<int64_t>(0, static_cast<int64_t>(std::time(nullptr)) - started);
    return s >= 3600 ? fmt::format("{}h{:02}m", s / 3600, s / 60 % 60)
                     : fmt::format("{}m{:02}s", s / 60, s % 60);
}

Report run_status(Context& ctx, const std::string& name, const std::string& base, bool brief) {
    std::vector<std::string> names;
    if (!name.empty()) {
        if (auto s = vm::check_vm_name(name); !s) return failed(s.error(), exit_usage);
        names = {name};
    } else
        names = services::list_machines(base);
    Report r;
    std::ostringstream out;
    json arr = json::array();
    for (const auto& n : names) {
        const services::MachineView v = services::Machine(base, n).view(warner(ctx));
        if (v.rec.name.empty()) {
            if (!name.empty())
                return failed(
                    v.damaged
                        ? Error{v.error, {}, "remove the directory once no QEMU of this VM runs", 0}
                        : Error{"no VM '" + n + "'", vm::run_dir(base, n),
                                "'vfioctl vm list' shows the VMs", 0});
            if (v.damaged) warn(ctx, v.error);
            continue;
        }
        if (!v.alive && !name.empty()) {
            r.exit_code = exit_failure;
            // The answer is on stdout; the failure says why on stderr too.
            ctx.err << "vfioctl: VM '" << util::printable(n) << "' is not running"
                    << (v.error.empty() ? "" : ": ") << util::printable(v.error) << "\n";
        }
        if (ctx.json) {
            json j = record_json(v.rec);
            j["status"] = v.status;
            j["alive"] = v.alive;
            j["uptime_s"] = static_cast<int64_t>(std::time(nullptr)) - v.rec.started;
            json pci = json::array();
            for (const auto& d : v.pci)
                pci.push_back({{"bus", d.bus},
                               {"slot", d.slot},
                               {"function", d.function},
                               {"id", pci::PciId{d.vendor, d.device}.str()},
                               {"qdev_id", d.qdev_id}});
            j["guest_pci"] = pci;
            j["missing_on_guest_bus"] = v.missing;
            if (!v.error.empty()) j["error"] = v.error;
            arr.push_back(j);
            continue;
        }
        if (brief) {
            out << fmt::format("{:<16} {:<10} pid {:<8} up {:<8} {}\n", n, v.status, v.rec.pid,
                               v.alive ? uptime_text(v.rec.started) : "-",
                               v.rec.devices.empty() ? "no GPU" : util::join(v.rec.devices, ","));
            continue;
        }
        out << "VM " << n << ": " << v.status << "\n  PID " << v.rec.pid;
        if (v.alive) out << ", up " << uptime_text(v.rec.started);
        out << ", " << v.rec.accel << "\n";
        if (v.rec.ssh_port) out << "  ssh: port " << *v.rec.ssh_port << " -> guest 22\n";
        out << "  console log: " << v.rec.console_log << "\n  QMP: " << v.rec.qmp_socket << "\n";
        for (size_t i = 0; i < v.rec.devices.size() && i < v.rec.device_ids.size(); ++i) {
            bool miss = std::find(v.missing.begin(), v.missing.end(), v.rec.device_ids[i]) !=
                        v.missing.end();
            out << "  passed through: " << v.rec.devices[i] << " [" << v.rec.device_ids[i] << "] "
                << (v.alive ? (miss ? "NOT on the guest's bus" : "on the guest's bus") : "")
                << "\n";
        }
        if (!v.error.empty()) out << "  " << v.error << "\n";
    }
    r.json = name.empty() ? json{{"vms", arr}} : (arr.empty() ? json::object() : arr[0]);
    r.json["schema_version"] = k_json_schema_version;
    if (names.empty()) out << "No VMs are running\n";
    r.text = out.str();
    return r;
}

int run_console(Context& ctx, const std::string& name, const std::string& base) {
    if (auto s = vm::check_vm_name(name); !s) return report_error(ctx, s.error(), exit_usage);
    auto rec = services::Machine(base, name).record();
    if (!rec || !vm::process_alive(rec->pid))
        return report_error(
            ctx,
            Error{"no VM '" + name + "' is running", {}, "'vfioctl vm list' shows the VMs", 0});
    // Raw mode wants "\r\n", which the printable error stream would escape.
    ctx.err.flush();
    ctx.out.flush();
    if (auto s = services::relay_console(rec->console_socket,
                                         "console of " + name + "; Ctrl-] quits\r\n");
        !s)
        return report_error(ctx, s.error());
    return exit_ok;
}

struct RunOptions {
    ProfileFlags flags;
    VmRunOptions run;
};

} // namespace

int vm_run(Context& ctx, const VmRunOptions& o) {
    const auto t0 = std::chrono::steady_clock::now();
    if (o.command.empty())
        return report_error(
            ctx, Error{"no command", {}, "vfioctl vm run --kernel BZIMAGE -- CMD ARGS...", 0},
            exit_usage);
    vm::Profile p;
    p.name = "vfioctl-run";
    p.memory_mib = 1024;
    p.cpus = 1;
    if (auto s = vm::apply_overrides(p, o.overrides); !s)
        return report_error(ctx, s.error(), exit_usage);
    if (p.boot.kernel.empty()) {
        // The running kernel's image, else the newest one in /boot.
        auto rel = ctx.host.read("/proc/sys/kernel/osrelease");
        p.boot.kernel = "/boot/vmlinuz-" + std::string(util::trim(rel.value_or("")));
        if (!ctx.host.exists(p.boot.kernel)) {
            std::string newest;
            for (const auto& f : ctx.host.list("/boot").value_or(std::vector<std::string>{}))
                if (util::starts_with(f, "vmlinuz-") && f > newest) newest = f;
            if (!newest.empty()) p.boot.kernel = "/boot/" + newest;
        }
    }
    if (auto s = services::check_boot(ctx.host, p); !s) return report_error(ctx, s.error());
    auto qemu = services::find_qemu(ctx.host);
    if (!qemu) return report_error(ctx, qemu.error());
    auto accel = vm::choose_accel(p.accel, vm::read_kvm_state(ctx.host));
    if (accel.error) return report_error(ctx, *accel.error);
    if (!accel.warning.empty()) warn(ctx, accel.warning);

    vm::RunRequest req;
    req.t0 = t0;
    req.command = o.command;
    req.cwd = o.cwd.empty() ? services::current_dir() : o.cwd;
    req.modules_dir = o.modules_dir;
    req.busybox = o.busybox;
    req.kvm = accel.kvm;
    req.qemu = *qemu;
    req.warn = [&ctx](const std::string& w) { warn(ctx, w); };
    req.boot_timeout_ms = static_cast<int>(o.boot_timeout_s * 1000);
    req.unpack = o.unpack == "yes"  ? vm::Unpack::yes
                 : o.unpack == "no" ? vm::Unpack::no
                                    : vm::Unpack::auto_;
    req.timeout_ms = static_cast<int>(o.timeout_s * 1000);
    req.run_dir = services::scratch_run_dir(o.run_base);
    if (auto s = vm::make_run_dir(req.run_dir); !s) return report_error(ctx, s.error());
    req.console_log = p.console_log.empty() ? req.run_dir + "/console.log" : p.console_log;
    req.profile = p;

    Passthrough pass;
    if (!p.gpus.empty()) {
        auto taken = take_devices(ctx, p.gpus, o.state_dir);
        if (!taken) {
            vm::remove_run_dir(req.run_dir);
            return report_refusal(ctx, taken.refusal());
        }
        pass = std::move(taken).value();
        req.slots = pass.slots;
    }
    ctx.out.flush();
    auto r = vm::run_guest(ctx.host, req);
    vm::remove_run_dir(req.run_dir);
    if (auto s = give_devices_back(ctx, pass.addresses, o.state_dir); !s) {
        report_error(ctx, s.error());
        return exit_failure;
    }
    if (!r) return report_error(ctx, r.error());
    auto show_phases = [&] {
        for (const auto& ph : r->phases)
            ctx.err << fmt::format("  {:<36} {:8.1f} s\n", ph.name, ph.ms / 1000);
    };
    if (!r->command_ran) {
        report_error(ctx, Error{r->failure, {}, {}, 0}, r->exit_code,
                     {{"waiting_for", r->waiting_for}, {"console_tail", r->console_tail}});
        if (!r->waiting_for.empty())
            ctx.err << "waiting for: " << util::printable(r->waiting_for) << "\n";
        if (!r->phases.empty()) {
            ctx.err << "boot phases reached:\n";
            show_phases();
        }
        if (!r->console_tail.empty()) {
            ctx.err << "last console lines"
                    << (p.console_log.empty() ? "" : " (all of them in " + p.console_log + ")")
                    << ":\n";
            for (const auto& l : r->console_tail)
                ctx.err << "  " << util::printable(l) << "\n";
        }
    }
    if (std::getenv("VFIOCTL_RUN_TIMES")) {
        ctx.err << fmt::format("vfioctl: {}: before QEMU {:.1f} ms, boot to command {:.0f} ms, "
                               "total {:.0f} ms, {} wake-ups ({})\n",
                               r->virtiofs ? "virtiofs" : "9p", r->prespawn_ms, r->boot_ms,
                               r->total_ms, r->wakeups, r->kernel_booted);
        if (r->command_ran) show_phases();
    }
    return r->exit_code;
}

namespace {

int run_run(Context& ctx, RunOptions& o) {
    o.run.overrides = overrides_of(o.flags);
    return vm_run(ctx, o.run);
}

} // namespace

namespace {

// What every vm subcommand takes: where VMs live and the bind journal.
struct VmCommon {
    std::string run_base;
    std::string state_dir;
};

// One vm subcommand: its name, help, and option setup, which returns the
// handler run after parsing.
struct VmSubcommand {
    const char* name;
    const char* help;
    std::function<std::function<int(Context&)>(CLI::App& sub, std::shared_ptr<VmCommon> common)>
        setup;
};

const std::vector<VmSubcommand>& vm_subcommands() {
    static const std::vector<VmSubcommand> table = {
        {"start", "start VM NAME from its profile (and flags), detached",
         [](CLI::App& c, const std::shared_ptr<VmCommon>& common) -> std::function<int(Context&)> {
             auto o = std::make_shared<StartOptions>();
             c.add_option("name", o->name,
                          "profile name (/etc/vfioctl/vms/NAME.toml) or a .toml file")
                 ->required();
             add_profile_flags(c, o->flags, false);
             c.add_option("--owner", o->owner,
                          "run QEMU as this user (login name or uid), not root: it gets the VFIO "
                          "groups' /dev/vfio/N, the run directory and a locked-memory limit of "
                          "the guest's RAM + 1 GiB");
             c.add_option("--wait", o->wait_s, "seconds to wait for QEMU to run")
                 ->capture_default_str()
                 ->check(seconds_value());
             return [o, common](Context& ctx) {
                 o->run_base = common->run_base;
                 o->state_dir = common->state_dir;
                 return render(ctx, run_start(ctx, *o));
             };
         }},
        {"stop", "ACPI power-down (then quit), and give the GPU back",
         [](CLI::App& c, const std::shared_ptr<VmCommon>& common) -> std::function<int(Context&)> {
             auto o = std::make_shared<StopOptions>();
             c.add_option("name", o->name, "VM name")->required();
             c.add_flag("--force", o->force, "kill QEMU at once");
             c.add_option("--timeout", o->timeout_s, "seconds to wait for the guest to power off")
                 ->capture_default_str()
                 ->check(seconds_value());
             return [o, common](Context& ctx) {
                 o->run_base = common->run_base;
                 o->state_dir = common->state_dir;
                 return render(ctx, run_stop(ctx, *o));
             };
         }},
        {"status", "state from QMP, PID, uptime, devices on the guest's bus",
         [](CLI::App& c, const std::shared_ptr<VmCommon>& common) -> std::function<int(Context&)> {
             auto name = std::make_shared<std::string>();
             c.add_option("name", *name, "VM name (all when omitted)");
             return [name, common](Context& ctx) {
                 return render(ctx, run_status(ctx, *name, common->run_base, false));
             };
         }},
        {"list", "the VMs vfioctl started",
         [](CLI::App&, const std::shared_ptr<VmCommon>& common) -> std::function<int(Context&)> {
             return [common](Context& ctx) {
                 return render(ctx, run_status(ctx, "", common->run_base, true));
             };
         }},
        {"console",
         "attach to the serial console (Ctrl-] quits; piped input: sent, then the output until a "
         "second of quiet)",
         [](CLI::App& c, const std::shared_ptr<VmCommon>& common) -> std::function<int(Context&)> {
             auto name = std::make_shared<std::string>();
             c.add_option("name", *name, "VM name")->required();
             return
                 [name, common](Context& ctx) { return run_console(ctx, *name, common->run_base); };
         }},
        {"run",
         "boot a kernel with / shared read-only, run one command inside, return its exit code",
         [](CLI::App& c, const std::shared_ptr<VmCommon>& common) -> std::function<int(Context&)> {
             auto o = std::make_shared<RunOptions>();
             add_profile_flags(c, o->flags, true);
             c.add_option("command", o->run.command, "the command and its arguments (after --)");
             c.add_option("--modules", o->run.modules_dir,
                          "the kernel's modules directory (with modules.dep)");
             c.add_option("--busybox", o->run.busybox, "static busybox for the guest's init");
             c.add_option("--cwd", o->run.cwd,
                          "directory to run the command in (default: the current one)");
             c.add_option("--timeout", o->run.timeout_s,
                          "seconds the whole run may take (0: no limit)")
                 ->capture_default_str()
                 ->check(seconds_value());
             c.add_option("--boot-timeout", o->run.boot_timeout_s,
                          "seconds from QEMU start to the command")
                 ->capture_default_str()
                 ->check(seconds_value());
             c.add_option("--unpack", o->run.unpack,
                          "boot a bzImage's uncompressed kernel through PVH, cached (auto: under "
                          "TCG, where decompressing costs most of the boot)")
                 ->check(CLI::IsMember({"auto", "yes", "no"}))
                 ->capture_default_str();
             return [o, common](Context& ctx) {
                 o->run.run_base = common->run_base;
                 o->run.state_dir = common->state_dir;
                 return run_run(ctx, *o);
             };
         }},
        {"export",
         "print VM NAME's profile as a libvirt domain XML (virsh define), binding nothing",
         [](CLI::App& c, const std::shared_ptr<VmCommon>& common) -> std::function<int(Context&)> {
             auto o = std::make_shared<ExportOptions>();
             c.add_option("name", o->name,
                          "profile name (/etc/vfioctl/vms/NAME.toml) or a .toml file")
                 ->required();
             add_profile_flags(c, o->flags, false);
             c.add_option("--output,-o", o->output, "write the XML to this file (atomically)");
             return [o, common](Context& ctx) {
                 o->state_dir = common->state_dir;
                 return render(ctx, run_export(ctx, *o));
             };
         }},
    };
    return table;
}

} // namespace

Command vm_command() {
    return {"vm", "QEMU VMs with or without a GPU: start, stop, status, list, console, run, export",
            [](CLI::App& sub, const services::Paths& paths) {
                sub.require_subcommand(1);
                auto common = std::make_shared<VmCommon>(VmCommon{paths.run_base, paths.state_dir});
                std::vector<std::pair<CLI::App*, std::function<int(Context&)>>> handlers;
                for (const auto& row : vm_subcommands()) {
                    CLI::App* c = sub.add_subcommand(row.name, row.help);
                    auto handler = row.setup(*c, common);
                    // The options every row shares come after its own.
                    c->add_option("--run-dir", common->run_base,
                                  "where VMs keep their sockets, pidfile and record")
                        ->capture_default_str();
                    c->add_option("--state-dir", common->state_dir, "where the bind journal lives")
                        ->capture_default_str()
                        ->check(state_dir_check());
                    handlers.emplace_back(c, std::move(handler));
                }
                return [handlers](Context& ctx) {
                    for (const auto& [c, handler] : handlers)
                        if (c->parsed()) return handler(ctx);
                    return static_cast<int>(exit_usage);
                };
            }};
}

} // namespace vfioctl::cli
