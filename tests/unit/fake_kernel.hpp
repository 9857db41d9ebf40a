#pragma once
// FakeKernel: a Host over a fixture tree that does what the kernel does on
// writes to driver_override, drivers/X/unbind, drivers/X/bind and
// drivers_probe (moves the driver links, creates and removes /dev/vfio/N),
// and can be told to fail the way real drivers do.

#include "fixture/fixture.hpp"
#include "host/host.hpp"
#include "vfio/bind.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace vfioctl::fake {

class FakeKernel : public host::Host {
  public:
    // Takes the drivers bound now as each device's natural driver (what a
    // probe without override binds).
    explicit FakeKernel(const fixture::HostTree& tree);

    Status write(std::string_view p, std::string_view data) const override;
    Status write_bounded(std::string_view p, std::string_view data, int timeout_ms) const override;
    Status load_module(const std::string& name) const override;
    // Every kernel write asked of it in this process ("PATH <- DATA", and
    // "modprobe NAME"), in order, whether or not it succeeded.
    const std::vector<std::string>& writes() const { return m_writes; }
    // write() here is a kernel simulation: write_bounded runs it in a fork.
    bool plain_write() const override { return false; }

    // Failure injection, per device address ("0000:8a:00.0").
    void unbind_fails(const std::string& addr, int err = EBUSY) { m_unbind_errno[addr] = err; }
    void unbind_blocks(const std::string& addr, int ms) { m_unbind_block_ms[addr] = ms; }
    void probe_binds_nothing(const std::string& addr) { m_probe_to[addr] = ""; }
    void probe_binds(const std::string& addr, const std::string& driver) {
        m_probe_to[addr] = driver;
    }
    void vanish_on_probe(const std::string& addr) { m_vanish.insert(addr); }
    // Bound to a driver other than vfio-pci (given back), addr logs n
    // non-fatal AER errors (aer_dev_nonfatal), as a GPU a VM left in a bad
    // state does when its driver probes it.
    void errors_on_return(const std::string& addr, uint64_t n) { m_return_errors[addr] = n; }
    // Given back, addr falls off the bus: its config space reads all ones
    // from then on and its driver's probe binds nothing.
    void wedge_on_return(const std::string& addr) { m_wedge.insert(addr); }
    // vfio-pci is not loaded until load_module("vfio_pci").
    void unload_vfio();
    // The device's bound driver, "" when none.
    std::string driver_of(const std::string& addr) const;
    // The device's driver_override, "(null)" when unset.
    std::string override_of(const std::string& addr) const;

  private:
    std::string dev_dir(const std::string& addr) const;
    Status set_driver(const std::string& addr, const std::string& driver) const;
    void clear_driver(const std::string& addr) const;
    Status do_unbind(const std::string& driver, const std::string& addr) const;
    Status do_bind(const std::string& driver, const std::string& addr) const;
    Status do_probe(const std::string& addr) const;

    std::map<std::string, std::string> m_natural;
    std::map<std::string, int> m_unbind_errno;
    std::map<std::string, int> m_unbind_block_ms;
    std::map<std::string, std::string> m_probe_to;
    std::set<std::string> m_vanish;
    std::map<std::string, uint64_t> m_return_errors;
    std::set<std::string> m_wedge;
    mutable std::vector<std::string> m_writes;
};

// Change options with short waits: a FakeKernel answers at once, so a
// wait that runs out is a failure to see quickly.
inline vfio::ChangeOptions quick() {
    vfio::ChangeOptions o;
    o.unbind_timeout_ms = 2000;
    o.lock_timeout_ms = 200;
    o.node_timeout_ms = 200;
    return o;
}

} // namespace vfioctl::fake
