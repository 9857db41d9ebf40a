#pragma once
// A VM started by 'vm start': its run directory (record, pidfile, QMP and
// console sockets), its QEMU process and QMP client; start, stop with the
// escalation, status. Giving devices back is the caller's (services::Devices).

#include "host/host.hpp"
#include "host/users.hpp"
#include "vm/machine.hpp"
#include "vm/profile.hpp"
#include "vm/qmp.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace vfioctl::services {

// Tells the user one line (a warning or a step).
using Notify = std::function<void(const std::string&)>;

// Who runs QEMU when not root ('vm start --owner'), and the locked-memory
// limit it gets: VFIO pins all guest RAM.
struct RunAs {
    host::User user;
    uint64_t memlock_bytes = 0;
};

// p made absolute against the current directory and normalized; "" stays "".
std::string absolute_path(const std::string& p);
// The current directory; "" when it cannot be read.
std::string current_dir();

// Boot files (kernel, initrd, disk) must exist before anything changes:
// an Error names the missing one, or says there is nothing to boot. Paths
// become absolute (a daemonized QEMU runs in /), the console log too.
Status check_boot(const host::Host& host, vm::Profile& p);
// qemu-system-x86_64's host path; an Error when it is not installed.
Result<std::string> find_qemu(const host::Host& host);
// A run directory of its own for one 'vm run' under run_base.
std::string scratch_run_dir(const std::string& run_base);

// What 'vm status' shows of one VM.
struct MachineView {
    vm::VmRecord rec;
    bool alive = false;
    std::string status;
    std::vector<vm::GuestPciDevice> pci;
    std::vector<std::string> missing; // passed-through IDs not on the guest's bus
    std::string error;
    bool damaged = false; // a record that exists but cannot be read
};

// One named VM under a run base.
class Machine {
  public:
    Machine(const std::string& run_base, std::string name);
    const std::string& name() const { return m_name; }
    const std::string& dir() const { return m_dir; }

    // The record in the run directory; an Error when missing or unreadable.
    Result<vm::VmRecord> record() const;
    // Before a start: an Error when a QEMU of this VM runs. A record whose
    // QEMU is gone comes back for its devices to be given back (then
    // remove()); a stale pidfile without a record is removed here, with
    // warn told. nullopt when the name is free.
    Result<std::optional<vm::VmRecord>> check_free(const Notify& warn) const;
    // Creates the run directory (0700).
    Status make_dir() const;
    // Removes the run directory and all in it.
    void remove() const;
    // Fills rec's sockets, pidfile and console log (log when "") for this
    // run directory.
    void place(vm::VmRecord& rec, const std::string& log) const;

    // Runs rec.argv (a daemonizing QEMU) with sockets private (umask 077),
    // records its PID, and waits at most wait_ms for QMP to say "running".
    // The record is written first, so that a QEMU that dies half-way is
    // found. An Error when QEMU fails to start (run directory removed),
    // writes no pidfile, or does not reach running (killed, removed).
    // With run_as, QEMU runs as that user from its first instruction
    // (prlimit raises its locked-memory limit to memlock_bytes, setpriv
    // drops root), and the run directory is the user's.
    Result<std::string> launch(const host::Host& host, vm::VmRecord& rec, const std::string& qemu,
                               int wait_ms, const Notify& progress,
                               const std::optional<RunAs>& run_as = std::nullopt) const;

    // Stops rec's QEMU: at once with force (SIGKILL); else the ACPI power
    // button (powered_down called once it is pressed) and timeout_ms for
    // the guest, then QMP quit,
    // then SIGKILL. How it ended ("powered off", "killed", ...), or an
    // Error when it does not exit.
    Result<std::string> stop(const vm::VmRecord& rec, bool force, int timeout_ms,
                             const std::function<void()>& powered_down) const;

    // What runs: the record, liveness, the QMP state and the guest's PCI
    // devices (a few seconds for devices behind root ports to show). A
    // stale record without devices is removed (warn told).
    MachineView view(const Notify& warn) const;

  private:
    std::string m_name;
    std::string m_dir;
};

// Names of the VMs with a run directory under run_base, sorted.
std::vector<std::string> list_machines(const std::string& run_base);

} // namespace vfioctl::services
