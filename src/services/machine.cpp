#include "services/machine.hpp"

#include "pci/address.hpp"
#include "util/strings.hpp"
#include "vm/process.hpp"

#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace vfioctl::services {

namespace fs = std::filesystem;

std::string absolute_path(const std::string& p) {
    if (p.empty()) return p;
    std::error_code ec;
    return fs::absolute(p, ec).lexically_normal().string();
}

std::string current_dir() {
    std::error_code ec;
    return fs::current_path(ec).string();
}

Status check_boot(const host::Host& host, vm::Profile& p) {
    for (std::string* f : {&p.boot.kernel, &p.boot.initrd, &p.boot.disk}) {
        if (f->empty()) continue;
        *f = absolute_path(*f);
        if (!host.exists(*f))
            return Error{f == &p.boot.kernel   ? "kernel not found"
                         : f == &p.boot.initrd ? "initrd not found"
                                               : "disk image not found",
                         *f, "check the path in the profile or on the command line", ENOENT};
    }
    if (p.boot.kernel.empty() && p.boot.disk.empty())
        return Error{"VM '" + p.name + "' has nothing to boot", p.source,
                     "set [boot] kernel or disk in the profile, or give --kernel or --disk", 0};
    if (!p.console_log.empty()) p.console_log = absolute_path(p.console_log);
    return {};
}

Result<std::string> find_qemu(const host::Host& host) {
    auto q = host.find_program("qemu-system-x86_64");
    if (!q)
        return Error{
            "QEMU is not installed (no qemu-system-x86_64)", {}, "install qemu-system-x86", ENOENT};
    return *q;
}

std::string scratch_run_dir(const std::string& run_base) {
    return run_base + "/run." + std::to_string(::getpid());
}

Machine::Machine(const std::string& run_base, std::string name)
    : m_name(std::move(name)), m_dir(vm::run_dir(run_base, m_name)) {}

Result<vm::VmRecord> Machine::record() const {
    return vm::read_record(m_dir);
}

Result<std::optional<vm::VmRecord>> Machine::check_free(const Notify& warn) const {
    if (auto rec = vm::read_record(m_dir)) {
        if (vm::process_alive(rec->pid))
            return Error{"VM '" + m_name + "' is already running (PID " + std::to_string(rec->pid) +
                             ")",
                         m_dir, "'vfioctl vm stop " + m_name + "' first, or pick another name", 0};
        return std::optional<vm::VmRecord>(*rec);
    }
    if (fs::exists(m_dir + "/qemu.pid")) {
        auto pid = vm::read_pidfile(m_dir + "/qemu.pid");
        if (pid && vm::process_alive(*pid))
            return Error{"VM '" + m_name + "' is starting or running (PID " + std::to_string(*pid) +
                             ")",
                         m_dir, "'vfioctl vm stop " + m_name + "' first", 0};
        warn("removing the stale run directory " + m_dir);
        vm::remove_run_dir(m_dir);
    }
    return std::optional<vm::VmRecord>();
}

Status Machine::make_dir() const {
    return vm::make_run_dir(m_dir);
}

void Machine::remove() const {
    vm::remove_run_dir(m_dir);
}

void Machine::place(vm::VmRecord& rec, const std::string& log) const {
    rec.qmp_socket = m_dir + "/qmp.sock";
    rec.console_socket = m_dir + "/console.sock";
    rec.console_log = log.empty() ? m_dir + "/console.log" : log;
    rec.pidfile = m_dir + "/qemu.pid";
}

namespace {

Result<std::vector<std::string>> run_as_argv(const host::Host& host, const RunAs& as,
                                             const std::vector<std::string>& argv) {
    auto prlimit = host.find_program("prlimit");
    auto setpriv = host.find_program("setpriv");
    if (!prlimit || !setpriv)
        return Error{"running QEMU as another user needs prlimit and setpriv",
                     {},
                     "install util-linux",
                     ENOENT};
    const std::string lim = std::to_string(as.memlock_bytes);
    std::vector<std::string> out = {*prlimit,
                                    "--memlock=" + lim + ":" + lim,
                                    *setpriv,
                                    "--reuid=" + std::to_string(as.user.uid),
                                    "--regid=" + std::to_string(as.user.gid),
                                    "--init-groups",
                                    "--"};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

} // namespace

Result<std::string> Machine::launch(const host::Host& host, vm::VmRecord& rec,
                                    const std::string& qemu, int wait_ms, const Notify& progress,
                                    const std::optional<RunAs>& run_as) const {
    rec.started = static_cast<int64_t>(std::time(nullptr));
    // Recorded first, so that a QEMU that dies half-way is found and cleaned.
    if (auto s = vm::write_record(m_dir, rec); !s) return s.error();

    std::vector<std::string> argv = rec.argv;
    if (run_as) {
        auto a = run_as_argv(host, *run_as, rec.argv);
        if (!a) {
            remove();
            return a.error();
        }
        argv = std::move(*a);
        // QEMU, as the user, writes its pidfile, sockets and log here.
        if (::chown(m_dir.c_str(), run_as->user.uid, run_as->user.gid) != 0) {
            auto e = system_error("cannot give the run directory to " + run_as->user.name, m_dir);
            remove();
            return e;
        }
    }
    progress("starting QEMU (" + rec.accel +
             (run_as ? ", as " + run_as->user.name : std::string()) + ")");
    const mode_t old_umask = ::umask(077); // QMP and console sockets: 0600
    auto out = host.run(argv, wait_ms + 30000);
    ::umask(old_umask);
    if (!out || out->exit_code != 0) {
        std::string why = out ? std::string(util::trim(out->output)) : out.error().describe();
        remove();
        return Error{"QEMU did not start: " + why, qemu,
                     run_as ? "QEMU ran as " + run_as->user.name +
                                  ": that user needs /dev/kvm (the kvm group), the VFIO "
                                  "groups ('vfioctl bind --owner') and the kernel and disk files"
                            : std::string("the full command is in --json output of a dry run"),
                     0};
    }
    auto pid = vm::read_pidfile(rec.pidfile);
    if (!pid) return Error{"QEMU started but wrote no pidfile", rec.pidfile, {}, 0};
    rec.pid = *pid;
    if (auto s = vm::write_record(m_dir, rec); !s) return s.error();
    ::chmod(rec.qmp_socket.c_str(), 0600);
    ::chmod(rec.console_socket.c_str(), 0600);

    auto qmp = vm::QmpClient::connect(rec.qmp_socket, wait_ms);
    std::string state = "unknown";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
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
        remove();
        return Error{"QEMU did not reach the running state (" +
                         (qmp ? state : qmp.error().describe()) + ")",
                     rec.console_log, "the console log may say why", 0};
    }
    return state;
}

Result<std::string> Machine::stop(const vm::VmRecord& rec, bool force, int timeout_ms,
                                  const std::function<void()>& powered_down) const {
    std::string how;
    if (!vm::process_alive(rec.pid)) {
        how = "was not running (stale pidfile cleaned)";
    } else if (force) {
        ::kill(rec.pid, SIGKILL);
        how = vm::wait_gone(rec.pid, 5000) ? "killed" : "";
    } else {
        auto qmp = vm::QmpClient::connect(rec.qmp_socket, 2000);
        if (qmp && qmp->system_powerdown()) {
            powered_down();
            if (vm::wait_gone(rec.pid, timeout_ms)) how = "powered off";
        }
        if (how.empty()) {
            if (qmp) (void)qmp->quit();
            if (vm::wait_gone(rec.pid, 5000)) how = "quit (the guest ignored the power button)";
        }
        if (how.empty()) {
            ::kill(rec.pid, SIGKILL);
            if (vm::wait_gone(rec.pid, 5000)) how = "killed (QMP did not answer)";
        }
    }
    if (how.empty())
        return Error{"QEMU (PID " + std::to_string(rec.pid) + ") does not exit", m_dir, {}, 0};
    return how;
}

MachineView Machine::view(const Notify& warn) const {
    MachineView v;
    auto rec = vm::read_record(m_dir);
    if (!rec) {
        v.error = rec.error().describe();
        std::error_code ec;
        v.damaged = fs::exists(m_dir + "/vm.json", ec);
        return v;
    }
    v.rec = *rec;
    v.alive = vm::process_alive(rec->pid);
    if (!v.alive) {
        v.status = "stale";
        if (rec->devices.empty()) {
            warn("VM '" + m_name + "': QEMU (PID " + std::to_string(rec->pid) +
                 ") is gone; stale run directory removed");
            remove();
            v.status = "stale (cleaned)";
        } else {
            v.error = "QEMU is gone; 'vfioctl vm stop " + m_name + "' gives its devices back";
        }
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

std::vector<std::string> list_machines(const std::string& run_base) {
    return vm::list_vms(run_base);
}

} // namespace vfioctl::services
