#pragma once
// Taking devices for vfio-pci and giving them back: the one implementation
// of the preflight and the refusals that 'bind', 'vm start', 'vm run' and
// 'verify' share.

#include "host/host.hpp"
#include "services/host_model.hpp"
#include "vfio/bind.hpp"
#include "vm/argv.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vfioctl::services {

// Why devices were not taken. Nothing was changed unless the kernel
// refused half-way (the bind rolls back what it did).
struct Refusal {
    Error error;
    // The host cannot pass the device through (the 'status' verdict, no
    // IOMMU group): 'vfioctl' exits 3 for it rather than 1.
    bool wont_work = false;
};

// A value or a Refusal.
template <typename T> class [[nodiscard]] Taken {
  public:
    Taken(T value) : m_value(std::move(value)) {}
    Taken(Refusal r) : m_refusal(std::move(r)) {}
    Taken(Error e) : m_refusal(Refusal{std::move(e), false}) {}
    bool ok() const { return m_value.has_value(); }
    explicit operator bool() const { return ok(); }
    T& value() & { return *m_value; }
    T&& value() && { return std::move(*m_value); }
    T& operator*() & { return *m_value; }
    T* operator->() { return &*m_value; }
    const Refusal& refusal() const { return m_refusal; }

  private:
    std::optional<T> m_value;
    Refusal m_refusal;
};

// Who asks for devices: 'bind' may be forced past a blocker; a guest's
// devices are never forced (the hint says 'vfioctl bind --force').
enum class Requester { bind, guest };

// The refusal a plan makes: any never-overridable obstacle, else any
// blocker unless force. nullopt when the plan may run.
std::optional<Error> plan_refusal(const vfio::BindPlan& plan, bool force, Requester who);

// Devices taken for a guest.
struct Passthrough {
    std::vector<vm::PassSlot> slots;
    std::vector<std::string> addresses; // every function passed, "0000:8a:00.0"
    std::vector<std::string> ids;       // their vendor:device, same order
};

// What Devices::take would pass through for a guest, with the same
// refusals, but nothing bound: for 'vm export', whose VM libvirt starts.
Taken<Passthrough> resolve_passthrough(const HostModel& m, const std::vector<std::string>& targets);

// Changes devices between their drivers and vfio-pci on one host, with the
// bind journal and lock in one state dir. progress gets a line per step.
class Devices {
  public:
    Devices(const host::Host& host, std::string state_dir,
            std::function<void(const std::string&)> progress, int unbind_timeout_ms = 10000);

    // What ChangeOptions the vfio layer gets: state dir, timeout, progress.
    vfio::ChangeOptions change_options() const;

    // Runs plan (which plan_refusal let through); the changes made, or an
    // Error when the kernel refused (what was done is rolled back).
    Result<std::vector<vfio::DeviceChange>> bind(const vfio::BindPlan& plan) const;

    // For a guest: resolves targets in m (BDF or vendor:device; a GPU
    // brings the other functions of its slot), checks each against the
    // diagnosis (a GPU's verdict must be will_work; any device needs an
    // IOMMU group), then binds their groups to vfio-pci.
    Taken<Passthrough> take(const HostModel& m, const std::vector<std::string>& targets) const;

    // Gives addresses back to their original drivers (the journal); busy
    // maps IOMMU groups held open to who holds them (refused unless force).
    // An Error when the kernel refuses.
    Result<std::vector<vfio::DeviceChange>> give_back(const std::vector<pci::PciAddress>& addresses,
                                                      const std::map<int, std::string>& busy = {},
                                                      bool force = false) const;
    // give_back of a guest's addresses ("0000:8a:00.0"; unparsable ones skipped).
    Status give_back(const std::vector<std::string>& addresses) const;

    // Entries of an earlier boot settled, then (full mode) every other
    // device in the journal back to its original driver.
    Result<vfio::Recovery> recover(vfio::RecoverMode mode = vfio::RecoverMode::full) const;

  private:
    const host::Host& m_host;
    std::string m_state_dir;
    std::function<void(const std::string&)> m_progress;
    int m_unbind_timeout_ms;
};

// The IOMMU groups a process holds open (/dev/vfio/N), each with who holds
// it ("pid 4242 (qemu)"), from the host's facts.
std::map<int, std::string> busy_groups(const host::SystemFacts& facts);

} // namespace vfioctl::services
