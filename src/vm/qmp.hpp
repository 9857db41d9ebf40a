#pragma once
// A small QMP client over a unix socket: the handshake, commands with
// timeouts, and the queries vfioctl uses (status, PCI devices, power-down,
// quit). Events that arrive between replies are kept, not mistaken for them.

#include "util/result.hpp"

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace vfioctl::vm {

// A device on the guest's PCI bus, from query-pci.
struct GuestPciDevice {
    int bus = 0;
    int slot = 0;
    int function = 0;
    uint16_t vendor = 0;
    uint16_t device = 0;
    uint16_t class_code = 0;
    std::string qdev_id;             // the -device id=, "" when none
    std::string parent;              // qdev_id of the bridge it sits behind, "" on the root bus
    std::vector<uint64_t> bar_sizes; // memory and I/O regions the guest sized
};

class QmpClient {
  public:
    // Connects (retrying while the socket is not there yet) within
    // timeout_ms, reads the greeting and negotiates capabilities. An Error
    // names the socket: missing, refused, or a peer that is not QMP.
    static Result<QmpClient> connect(const std::string& socket, int timeout_ms);
    QmpClient(QmpClient&& o) noexcept : m_fd(o.m_fd), m_buf(std::move(o.m_buf)) { o.m_fd = -1; }
    QmpClient& operator=(QmpClient&&) = delete;
    QmpClient(const QmpClient&) = delete;
    ~QmpClient();

    // Runs a command; its "return" value, or an Error with QMP's "desc",
    // or a timeout.
    Result<nlohmann::json> execute(const std::string& command, const nlohmann::json& args = nullptr,
                                   int timeout_ms = 5000);
    // "running", "paused", "prelaunch", "shutdown", ...
    Result<std::string> query_status();
    // Every device on every guest bus, bridges' buses included.
    Result<std::vector<GuestPciDevice>> query_pci();
    // Presses the ACPI power button.
    Status system_powerdown();
    // Ends QEMU now; a connection closed by the exit counts as success.
    Status quit();

  private:
    explicit QmpClient(int fd) : m_fd(fd) {}
    // The next JSON message, within timeout_ms.
    Result<nlohmann::json> read_message(int timeout_ms);
    int m_fd = -1;
    std::string m_buf;
};

// Pure: the devices in a query-pci reply; an Error when the reply is not
// shaped like one (never an exception).
Result<std::vector<GuestPciDevice>> parse_query_pci(const nlohmann::json& reply);

// Pure: one line QMP sent, as JSON; an Error when it is not JSON.
Result<nlohmann::json> parse_qmp_message(std::string_view line);

// What one QMP message is: an event, the return of a command, its error, or
// something else (skipped while waiting for the answer).
struct QmpReply {
    enum Kind { other, event, ret, error };
    Kind kind = other;
    nlohmann::json value; // the return value
    std::string desc;     // the error's description
};
QmpReply classify_qmp(const nlohmann::json& message);

} // namespace vfioctl::vm
