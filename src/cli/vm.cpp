// 'vfioctl vm start|stop|status|list|console|run': QEMU VMs with or without
// a GPU, and the kernel-development loop.

#include "cli/vm.hpp"

#include "cli/commands.hpp"
#include "cli/model.hpp"
#include "iommu/diagnosis.hpp"
#include "util/strings.hpp"
#include "vfio/bind.hpp"
#include "vm/guest.hpp"
#include "vm/machine.hpp"
#include "vm/process.hpp"
#include "vm/qmp.hpp"

#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

namespace vfioctl::cli {

namespace fs = std::filesystem;
using nlohmann::json;

Result<Passthrough> take_devices(Context& ctx, const std::vector<std::string>& targets,
                                 const std::string& state_dir, int* code) {
    *code = exit_failure;
    auto m = load_host(ctx);
    if (!m) return m.error();
    std::vector<const pci::PciDevice*> devs;
    auto add = [&devs](const pci::PciDevice* d) {
        if (std::find(devs.begin(), devs.end(), d) == devs.end()) devs.push_back(d);
    };
    for (const auto& t : targets) {
        auto found = match_devices(m->inv, t);
        if (!found) return found.error();
        for (const auto* d : *found) {
            add(d);
            if (d->is_gpu())
                for (const auto& o : m->inv.devices)
                    if (o.addr.same_slot(d->addr) && m->inv.is_gpu_companion(o)) add(&o);
        }
    }
    // Preflight: the verdict 'status' gives, before anything changes.
    auto dx = iommu::diagnose(m->facts, m->inv, m->groups);
    for (const auto* d : devs) {
        const iommu::GpuDiagnosis* g = nullptr;
        for (const auto& x : dx.gpus)
            if (x.gpu->addr == d->addr) g = &x;
        if (g && g->verdict != iommu::Verdict::will_work) {
            *code = exit_wont_work;
            return Error{"passthrough of " + d->addr.str() + " " + iommu::verdict_text(g->verdict) +
                             ": " + util::join(g->causes, "; "),
                         {},
                         g->steps.empty() ? "'vfioctl status' explains"
                                          : "then try again: " + util::join(g->steps, "; "),
                         0};
        }
        if (!d->iommu_group) {
            *code = exit_wont_work;
            return Error{
                d->addr.str() + " has no IOMMU group" +
                    (dx.iommu.off_cause ? ": " + *dx.iommu.off_cause : std::string()),
                {},
                "QEMU would fail with 'no iommu_group found'; 'vfioctl status' gives the steps",
                0};
        }
    }
    auto plan = vfio::plan_bind(devs, m->inv, m->facts, m->groups);
    if (!plan.refusals.empty())
        return Error{"refusing to bind: " + util::join(vfio::texts(plan.refusals), "; "),
                     {},
                     "nothing was changed; 'vfioctl groups' shows each group's members",
                     0};
    if (!plan.blockers.empty())
        return Error{
            "refusing to bind: " + util::join(vfio::texts(plan.blockers), "; "),
            {},
            "nothing was changed; stop what uses the device, or 'vfioctl bind --force' it first",
            0};
    vfio::ChangeOptions o;
    o.state_dir = state_dir;
    o.progress = [&ctx](const std::string& s) {
        if (!ctx.json) ctx.err << s << "\n";
    };
    auto changes = vfio::execute_bind(ctx.host, plan, o);
    if (!changes) return changes.error();
    Passthrough p;
    p.slots = vm::group_slots(devs);
    for (const auto& s : p.slots)
        for (const auto& f : s.functions) {
            p.addresses.push_back(f.host.str());
            p.ids.push_back(pci::PciId{f.vendor, f.device}.str());
        }
    return p;
}

Status give_devices_back(Context& ctx, const std::vector<std::string>& addresses,
                         const std::string& state_dir) {
    if (addresses.empty()) return {};
    std::vector<pci::PciAddress> addrs;
    for (const auto& a : addresses)
        if (auto p = pci::PciAddress::parse(a)) addrs.push_back(*p);
    vfio::ChangeOptions o;
    o.state_dir = state_dir;
    o.progress = [&ctx](const std::string& s) {
        if (!ctx.json) ctx.err << s << "\n";
    };
    auto r = vfio::give_back(ctx.host, addrs, {}, false, o);
    if (!r) return r.error();
    return {};
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

std::string absolute(const std::string& p) {
    if (p.empty()) return p;
    std::error_code ec;
    return fs::absolute(p, ec).lexically_normal().string();
}

// Boot files must exist before anything changes; paths become absolute
// (a daemonized QEMU runs in /).
Status check_boot(const host::Host& host, vm::Profile& p) {
    for (std::string* f : {&p.boot.kernel, &p.boot.initrd, &p.boot.disk}) {
        if (f->empty()) continue;
        *f = absolute(*f);
        if (!host.exists(*f))
            return Error{f == &p.boot.kernel   ? "kernel not found"
                         : f == &p.boot.initrd ? "initrd not found"
                                               : "disk image not found",
                         *f, "check the path in the profile or on the command line", ENOENT};
    }
    if (p.boot.kernel.empty() && p.boot.disk.empty())
        return Error{"VM '" + p.name + "' has nothing to boot", p.source,
                     "set [boot] kernel or disk in the profile, or give --kernel or --disk", 0};
    if (!p.console_log.empty()) p.console_log = absolute(p.console_log);
    return {};
}

Result<std::string> find_qemu(const host::Host& host) {
    auto q = host.find_program("qemu-system-x86_64");
    if (!q)
        return Error{
            "QEMU is not installed (no qemu-system-x86_64)", {}, "install qemu-system-x86", ENOENT};
    return *q;
}

struct StartOptions {
    std::string name;
    ProfileFlags flags;
    std::string run_base;
    std::string state_dir = "/var/lib/vfioctl";
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
Status clean_stale(Context& ctx, const std::string& dir, const vm::VmRecord& rec,
                   const std::string& state_dir) {
    warn(ctx, "VM '" + rec.name + "' is not running (stale pidfile, PID " +
                  std::to_string(rec.pid) + "); cleaning up");
    if (auto s = give_devices_back(ctx, rec.devices, state_dir); !s) return s;
    vm::remove_run_dir(dir);
    return {};
}

int run_start(Context& ctx, StartOptions& o) {
    // NAME, or a .toml file (a path, or a name ending in .toml) whose stem names the VM.
    const bool file = vm::profile_paths(o.name).size() == 1;
    const std::string source = file ? absolute(o.name) : o.name;
    if (file) o.name = fs::path(o.name).stem().string();
    if (auto s = vm::check_vm_name(o.name); !s) return report_error(ctx, s.error(), exit_usage);
    auto ov = overrides_of(o.flags);
    auto profile = vm::load_profile(ctx.host, source, ov.kernel || ov.disk);
    if (!profile) return report_error(ctx, profile.error());
    vm::Profile p = std::move(profile).value();
    p.name = o.name;
    if (auto s = vm::apply_overrides(p, ov); !s) return report_error(ctx, s.error(), exit_usage);
    // A detached VM's share is QEMU's own 9p: no virtiofsd to outlive us.
    if (p.share_host_root && p.share == vm::ShareMode::virtiofs)
        return report_error(
            ctx,
            Error{"'vm start' shares / over 9p only", p.source,
                  "use share = \"auto\" or \"9p\" (--share); virtiofs is for 'vm run'", 0},
            exit_usage);
    if (auto s = check_boot(ctx.host, p); !s) return report_error(ctx, s.error());
    auto qemu = find_qemu(ctx.host);
    if (!qemu) return report_error(ctx, qemu.error());

    const std::string dir = vm::run_dir(o.run_base, o.name);
    if (auto rec = vm::read_record(dir)) {
        if (vm::process_alive(rec->pid))
            return report_error(
                ctx, Error{"VM '" + o.name + "' is already running (PID " +
                               std::to_string(rec->pid) + ")",
                           dir, "'vfioctl vm stop " + o.name + "' first, or pick another name", 0});
        if (auto s = clean_stale(ctx, dir, *rec, o.state_dir); !s)
            return report_error(ctx, s.error());
    } else if (fs::exists(dir + "/qemu.pid")) {
        auto pid = vm::read_pidfile(dir + "/qemu.pid");
        if (pid && vm::process_alive(*pid))
            return report_error(ctx, Error{"VM '" + o.name + "' is starting or running (PID " +
                                               std::to_string(*pid) + ")",
                                           dir, "'vfioctl vm stop " + o.name + "' first", 0});
        warn(ctx, "removing the stale run directory " + dir);
        vm::remove_run_dir(dir);
    }
    if (p.ssh_port && !vm::tcp_port_free(*p.ssh_port))
        return report_error(ctx, Error{"port " + std::to_string(*p.ssh_port) + " is already in use",
                                       {},
                                       "pick another with --ssh-port, or stop what listens there",
                                       EADDRINUSE});
    auto accel = vm::choose_accel(p.accel, vm::read_kvm_state(ctx.host));
    if (accel.error) return report_error(ctx, *accel.error);
    if (!accel.warning.empty()) warn(ctx, accel.warning);

    Passthrough pass;
    if (!p.gpus.empty()) {
        int code = exit_failure;
        auto taken = take_devices(ctx, p.gpus, o.state_dir, &code);
        if (!taken) return report_error(ctx, taken.error(), code);
        pass = std::move(taken).value();
    }
    auto fail = [&](const Error& e) {
        if (auto s = give_devices_back(ctx, pass.addresses, o.state_dir); !s)
            warn(ctx, s.error().describe());
        return report_error(ctx, e);
    };
    if (auto s = vm::make_run_dir(dir); !s) return fail(s.error());

    vm::VmRecord rec;
    rec.name = o.name;
    rec.accel = accel.kvm ? "kvm" : "tcg";
    rec.qmp_socket = dir + "/qmp.sock";
    rec.console_socket = dir + "/console.sock";
    rec.console_log = p.console_log.empty() ? dir + "/console.log" : p.console_log;
    rec.pidfile = dir + "/qemu.pid";
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
    rec.argv = vm::qemu_argv(p, spec);
    rec.started = static_cast<int64_t>(std::time(nullptr));
    // Recorded first, so that a QEMU that dies half-way is found and cleaned.
    if (auto s = vm::write_record(dir, rec); !s) return fail(s.error());

    if (!ctx.json) ctx.err << "starting QEMU (" << rec.accel << ")\n";
    const mode_t old_umask = ::umask(077); // QMP and console sockets: 0600
    auto out = ctx.host.run(rec.argv, static_cast<int>(o.wait_s * 1000) + 30000);
    ::umask(old_umask);
    if (!out || out->exit_code != 0) {
        std::string why = out ? std::string(util::trim(out->output)) : out.error().describe();
        vm::remove_run_dir(dir);
        return fail(Error{"QEMU did not start: " + why, *qemu,
                          "the full command is in --json output of a dry run", 0});
    }
    auto pid = vm::read_pidfile(rec.pidfile);
    if (!pid) return fail(Error{"QEMU started but wrote no pidfile", rec.pidfile, {}, 0});
    rec.pid = *pid;
    if (auto s = vm::write_record(dir, rec); !s) return fail(s.error());
    ::chmod(rec.qmp_socket.c_str(), 0600);
    ::chmod(rec.console_socket.c_str(), 0600);

    auto qmp = vm::QmpClient::connect(rec.qmp_socket, static_cast<int>(o.wait_s * 1000));
    std::string state = "unknown";
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<int>(o.wait_s * 1000));
    while (qmp) {
        auto st = qmp->query_status();
        if (!st) break;
        state = *st;
        if (state == "running" || std::chrono::steady_clock::now() > deadline) break;
        usleep(20000);
    }
    if (state != "running") {
        ::kill(rec.pid, SIGKILL);
        vm::wait_gone(rec.pid, 5000);
        vm::remove_run_dir(dir);
        return fail(Error{"QEMU did not reach the running state (" +
                              (qmp ? state : qmp.error().describe()) + ")",
                          rec.console_log, "the console log may say why", 0});
    }
    if (ctx.json) {
        json j = record_json(rec);
        j["status"] = state;
        print_json(ctx, j);
        return exit_ok;
    }
    ctx.out << "VM started with PID " << rec.pid << "\n";
    ctx.out << "  name: " << rec.name << " (" << rec.accel << ", " << p.memory_mib << " MiB, "
            << p.cpus << " CPUs)\n";
    for (size_t i = 0; i < rec.devices.size(); ++i)
        ctx.out << "  passed through: " << rec.devices[i] << " [" << rec.device_ids[i] << "]\n";
    if (rec.ssh_port) ctx.out << "  ssh: ssh -p " << *rec.ssh_port << " root@localhost\n";
    ctx.out << "  console: vfioctl vm console " << rec.name << " (log " << rec.console_log << ")\n";
    ctx.out << "  stop: vfioctl vm stop " << rec.name << "\n";
    return exit_ok;
}

struct StopOptions {
    std::string name;
    bool force = false;
    double timeout_s = 30;
    std::string run_base;
    std::string state_dir = "/var/lib/vfioctl";
};

int run_stop(Context& ctx, const StopOptions& o) {
    if (auto s = vm::check_vm_name(o.name); !s) return report_error(ctx, s.error(), exit_usage);
    const std::string dir = vm::run_dir(o.run_base, o.name);
    auto rec = vm::read_record(dir);
    if (!rec)
        return report_error(ctx, Error{"no VM '" + o.name + "' is running", dir,
                                       "'vfioctl vm list' shows the VMs", 0});
    std::string how;
    if (!vm::process_alive(rec->pid)) {
        how = "was not running (stale pidfile cleaned)";
    } else if (o.force) {
        ::kill(rec->pid, SIGKILL);
        how = vm::wait_gone(rec->pid, 5000) ? "killed" : "";
    } else {
        auto qmp = vm::QmpClient::connect(rec->qmp_socket, 2000);
        if (qmp && qmp->system_powerdown()) {
            if (!ctx.json)
                ctx.err << "ACPI power-down sent; waiting up to " << o.timeout_s << " s\n";
            if (vm::wait_gone(rec->pid, static_cast<int>(o.timeout_s * 1000))) how = "powered off";
        }
        if (how.empty()) {
            if (qmp) (void)qmp->quit();
            if (vm::wait_gone(rec->pid, 5000)) how = "quit (the guest ignored the power button)";
        }
        if (how.empty()) {
            ::kill(rec->pid, SIGKILL);
            if (vm::wait_gone(rec->pid, 5000)) how = "killed (QMP did not answer)";
        }
    }
    if (how.empty())
        return report_error(
            ctx, Error{"QEMU (PID " + std::to_string(rec->pid) + ") does not exit", dir, {}, 0});
    if (auto s = give_devices_back(ctx, rec->devices, o.state_dir); !s)
        return report_error(ctx, s.error());
    vm::remove_run_dir(dir);
    if (ctx.json)
        print_json(ctx, {{"name", o.name}, {"stopped", how}, {"given_back", rec->devices}});
    else {
        ctx.out << "VM " << o.name << " " << how << "\n";
        for (const auto& d : rec->devices)
            ctx.out << "  given back: " << d << "\n";
    }
    return exit_ok;
}

struct VmView {
    vm::VmRecord rec;
    bool alive = false;
    std::string status;
    std::vector<vm::GuestPciDevice> pci;
    std::vector<std::string> missing; // passed-through IDs not on the guest's bus
    std::string error;
    bool damaged = false; // a record that exists but cannot be read
};

VmView view_vm(Context& ctx, const std::string& base, const std::string& name,
               const std::string& state_dir) {
    VmView v;
    const std::string dir = vm::run_dir(base, name);
    auto rec = vm::read_record(dir);
    if (!rec) {
        v.error = rec.error().describe();
        std::error_code ec;
        v.damaged = fs::exists(dir + "/vm.json", ec);
        return v;
    }
    v.rec = *rec;
    v.alive = vm::process_alive(rec->pid);
    if (!v.alive) {
        v.status = "stale";
        if (rec->devices.empty()) {
            warn(ctx, "VM '" + name + "': QEMU (PID " + std::to_string(rec->pid) +
                          ") is gone; stale run directory removed");
            vm::remove_run_dir(dir);
            v.status = "stale (cleaned)";
        } else {
            v.error = "QEMU is gone; 'vfioctl vm stop " + name + "' gives its devices back";
        }
        (void)state_dir;
        return v;
    }
    auto qmp = vm::QmpClient::connect(rec->qmp_socket, 2000);
    if (!qmp) {
        v.status = "unknown";
        v.error = qmp.error().describe();
        return v;
    }
    if (auto st = qmp->query_status()) v.status = *st;
    // Devices behind root ports show once the guest's firmware has given
    // the ports bus numbers: a VM started a moment ago gets a few seconds.
    for (int tries = 0; tries < 50; ++tries) {
        if (auto pci = qmp->query_pci()) v.pci = *pci;
        v.missing.clear();
        for (const auto& id : rec->device_ids) {
            auto pid = pci::PciId::parse(id);
            bool found = false;
            for (const auto& d : v.pci)
                found |= pid && d.vendor == pid->vendor && d.device == pid->device;
            if (!found) v.missing.push_back(id);
        }
        if (v.missing.empty() || v.status != "running") break;
        usleep(100000);
    }
    return v;
}

std::string uptime_text(int64_t started) {
    int64_t s = std::max<int64_t>(0, static_cast<int64_t>(std::time(nullptr)) - started);
    return s >= 3600 ? fmt::format("{}h{:02}m", s / 3600, s / 60 % 60)
                     : fmt::format("{}m{:02}s", s / 60, s % 60);
}

int run_status(Context& ctx, const std::string& name, const std::string& base,
               const std::string& state_dir, bool brief) {
    std::vector<std::string> names;
    if (!name.empty()) {
        if (auto s = vm::check_vm_name(name); !s) return report_error(ctx, s.error(), exit_usage);
        names = {name};
    } else
        names = vm::list_vms(base);
    json arr = json::array();
    int rc = exit_ok;
    for (const auto& n : names) {
        VmView v = view_vm(ctx, base, n, state_dir);
        if (v.rec.name.empty()) {
            if (!name.empty())
                return report_error(
                    ctx,
                    v.damaged
                        ? Error{v.error, {}, "remove the directory once no QEMU of this VM runs", 0}
                        : Error{"no VM '" + n + "'", vm::run_dir(base, n),
                                "'vfioctl vm list' shows the VMs", 0});
            if (v.damaged) warn(ctx, v.error);
            continue;
        }
        if (!v.alive && !name.empty()) {
            rc = exit_failure;
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
            ctx.out << fmt::format("{:<16} {:<10} pid {:<8} up {:<8} {}\n", n, v.status, v.rec.pid,
                                   v.alive ? uptime_text(v.rec.started) : "-",
                                   v.rec.devices.empty() ? "no GPU"
                                                         : util::join(v.rec.devices, ","));
            continue;
        }
        ctx.out << "VM " << n << ": " << v.status << "\n  PID " << v.rec.pid;
        if (v.alive) ctx.out << ", up " << uptime_text(v.rec.started);
        ctx.out << ", " << v.rec.accel << "\n";
        if (v.rec.ssh_port) ctx.out << "  ssh: port " << *v.rec.ssh_port << " -> guest 22\n";
        ctx.out << "  console log: " << v.rec.console_log << "\n  QMP: " << v.rec.qmp_socket
                << "\n";
        for (size_t i = 0; i < v.rec.devices.size() && i < v.rec.device_ids.size(); ++i) {
            bool miss = std::find(v.missing.begin(), v.missing.end(), v.rec.device_ids[i]) !=
                        v.missing.end();
            ctx.out << "  passed through: " << v.rec.devices[i] << " [" << v.rec.device_ids[i]
                    << "] "
                    << (v.alive ? (miss ? "NOT on the guest's bus" : "on the guest's bus") : "")
                    << "\n";
        }
        if (!v.error.empty()) ctx.out << "  " << v.error << "\n";
    }
    if (ctx.json)
        print_json(ctx,
                   name.empty() ? json{{"vms", arr}} : (arr.empty() ? json::object() : arr[0]));
    else if (names.empty())
        ctx.out << "No VMs are running\n";
    return rc;
}

// How long 'vm console' with piped input waits for more output after the
// input ended.
constexpr int k_console_quiet_ms = 1000;

int run_console(Context& ctx, const std::string& name, const std::string& base) {
    if (auto s = vm::check_vm_name(name); !s) return report_error(ctx, s.error(), exit_usage);
    auto rec = vm::read_record(vm::run_dir(base, name));
    if (!rec || !vm::process_alive(rec->pid))
        return report_error(
            ctx,
            Error{"no VM '" + name + "' is running", {}, "'vfioctl vm list' shows the VMs", 0});
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", rec->console_socket.c_str());
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        return report_error(ctx,
                            system_error("cannot connect to the console", rec->console_socket));
    const bool tty = ::isatty(0);
    termios saved{};
    if (tty) {
        ::tcgetattr(0, &saved);
        termios raw = saved;
        ::cfmakeraw(&raw);
        ::tcsetattr(0, TCSANOW, &raw);
        // Raw mode wants "\r\n", which the printable error stream would escape.
        const std::string banner = "console of " + name + "; Ctrl-] quits\r\n";
        ctx.err.flush();
        const ssize_t written = ::write(2, banner.data(), banner.size());
        (void)written;
    }
    ctx.out.flush();
    char buf[4096];
    bool open_in = true;
    for (;;) {
        pollfd p[2] = {{fd, POLLIN, 0}, {open_in ? 0 : -1, POLLIN, 0}}; // -1: poll skips it
        // Input from a pipe or file has ended: relay the guest's answer
        // until the console has been quiet for a second.
        const int wait_ms = open_in || tty ? -1 : k_console_quiet_ms;
        int pr = ::poll(p, 2, wait_ms);
        if (pr < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (pr == 0) break;
        if (p[0].revents) {
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) break;
            if (::write(1, buf, static_cast<size_t>(n)) < 0) break;
        }
        if (p[1].revents) {
            ssize_t n = ::read(0, buf, sizeof buf);
            if (n <= 0) {
                open_in = false;
                continue;
            }
            if (tty && std::memchr(buf, 0x1d, static_cast<size_t>(n))) break;
            if (::write(fd, buf, static_cast<size_t>(n)) < 0) break;
        }
    }
    if (tty) ::tcsetattr(0, TCSANOW, &saved);
    ::close(fd);
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
    if (auto s = check_boot(ctx.host, p); !s) return report_error(ctx, s.error());
    auto qemu = find_qemu(ctx.host);
    if (!qemu) return report_error(ctx, qemu.error());
    auto accel = vm::choose_accel(p.accel, vm::read_kvm_state(ctx.host));
    if (accel.error) return report_error(ctx, *accel.error);
    if (!accel.warning.empty()) warn(ctx, accel.warning);

    vm::RunRequest req;
    req.t0 = t0;
    req.command = o.command;
    std::error_code ec;
    req.cwd = o.cwd.empty() ? fs::current_path(ec).string() : o.cwd;
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
    req.run_dir = o.run_base + "/run." + std::to_string(::getpid());
    if (auto s = vm::make_run_dir(req.run_dir); !s) return report_error(ctx, s.error());
    req.console_log = p.console_log.empty() ? req.run_dir + "/console.log" : p.console_log;
    req.profile = p;

    Passthrough pass;
    if (!p.gpus.empty()) {
        int code = exit_failure;
        auto taken = take_devices(ctx, p.gpus, o.state_dir, &code);
        if (!taken) {
            vm::remove_run_dir(req.run_dir);
            return report_error(ctx, taken.error(), code);
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

Command vm_command() {
    return {
        "vm", "QEMU VMs with or without a GPU: start, stop, status, list, console, run",
        [](CLI::App& sub) {
            sub.require_subcommand(1);
            auto base = std::make_shared<std::string>(vm::default_run_base());
            auto state_dir = std::make_shared<std::string>("/var/lib/vfioctl");
            auto common = [base, state_dir](CLI::App* c) {
                c->add_option("--run-dir", *base,
                              "where VMs keep their sockets, pidfile and record")
                    ->capture_default_str();
                c->add_option("--state-dir", *state_dir, "where the bind journal lives")
                    ->capture_default_str()
                    ->check(state_dir_check());
            };

            auto so = std::make_shared<StartOptions>();
            CLI::App* start =
                sub.add_subcommand("start", "start VM NAME from its profile (and flags), detached");
            start
                ->add_option("name", so->name,
                             "profile name (/etc/vfioctl/vms/NAME.toml) or a .toml file")
                ->required();
            add_profile_flags(*start, so->flags, false);
            start->add_option("--wait", so->wait_s, "seconds to wait for QEMU to run")
                ->capture_default_str()
                ->check(seconds_value());
            common(start);

            auto sto = std::make_shared<StopOptions>();
            CLI::App* stop =
                sub.add_subcommand("stop", "ACPI power-down (then quit), and give the GPU back");
            stop->add_option("name", sto->name, "VM name")->required();
            stop->add_flag("--force", sto->force, "kill QEMU at once");
            stop->add_option("--timeout", sto->timeout_s,
                             "seconds to wait for the guest to power off")
                ->capture_default_str()
                ->check(seconds_value());
            common(stop);

            auto st_name = std::make_shared<std::string>();
            CLI::App* status = sub.add_subcommand(
                "status", "state from QMP, PID, uptime, devices on the guest's bus");
            status->add_option("name", *st_name, "VM name (all when omitted)");
            common(status);
            CLI::App* list = sub.add_subcommand("list", "the VMs vfioctl started");
            common(list);

            auto con_name = std::make_shared<std::string>();
            CLI::App* console = sub.add_subcommand(
                "console", "attach to the serial console (Ctrl-] quits; piped input: sent, then "
                           "the output until a second of quiet)");
            console->add_option("name", *con_name, "VM name")->required();
            common(console);

            auto ro = std::make_shared<RunOptions>();
            CLI::App* run = sub.add_subcommand("run", "boot a kernel with / shared read-only, run "
                                                      "one command inside, return its exit code");
            add_profile_flags(*run, ro->flags, true);
            run->add_option("command", ro->run.command, "the command and its arguments (after --)");
            run->add_option("--modules", ro->run.modules_dir,
                            "the kernel's modules directory (with modules.dep)");
            run->add_option("--busybox", ro->run.busybox, "static busybox for the guest's init");
            run->add_option("--cwd", ro->run.cwd,
                            "directory to run the command in (default: the current one)");
            run->add_option("--timeout", ro->run.timeout_s,
                            "seconds the whole run may take (0: no limit)")
                ->capture_default_str()
                ->check(seconds_value());
            run->add_option("--boot-timeout", ro->run.boot_timeout_s,
                            "seconds from QEMU start to the command")
                ->capture_default_str()
                ->check(seconds_value());
            run->add_option(
                   "--unpack", ro->run.unpack,
                   "boot a bzImage's uncompressed kernel through PVH, cached (auto: under TCG, "
                   "where decompressing costs most of the boot)")
                ->check(CLI::IsMember({"auto", "yes", "no"}))
                ->capture_default_str();
            common(run);

            return [=](Context& ctx) {
                so->run_base = sto->run_base = ro->run.run_base = *base;
                so->state_dir = sto->state_dir = ro->run.state_dir = *state_dir;
                if (start->parsed()) return run_start(ctx, *so);
                if (stop->parsed()) return run_stop(ctx, *sto);
                if (status->parsed()) return run_status(ctx, *st_name, *base, *state_dir, false);
                if (list->parsed()) return run_status(ctx, "", *base, *state_dir, true);
                if (console->parsed()) return run_console(ctx, *con_name, *base);
                if (run->parsed()) return run_run(ctx, *ro);
                return static_cast<int>(exit_usage);
            };
        }};
}

} // namespace vfioctl::cli
