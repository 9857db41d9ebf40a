#include "vm/qmp.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace vfioctl::vm {

namespace {

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return d < 0 ? 0 : static_cast<int>(d);
}

// Bus numbers are 0 until the guest's firmware enumerates (a QEMU started
// with -S), so devices also record the bridge they sit behind.
void collect(const nlohmann::json& bus, const std::string& parent, std::vector<GuestPciDevice>& out) {
    if (!bus.contains("devices")) return;
    const int busnr = bus.value("bus", 0);
    for (const auto& d : bus["devices"]) {
        GuestPciDevice g;
        g.bus = d.value("bus", busnr);
        g.slot = d.value("slot", 0);
        g.function = d.value("function", 0);
        if (d.contains("id")) {
            g.vendor = static_cast<uint16_t>(d["id"].value("vendor", 0));
            g.device = static_cast<uint16_t>(d["id"].value("device", 0));
        }
        if (d.contains("class_info")) g.class_code = static_cast<uint16_t>(d["class_info"].value("class", 0));
        g.qdev_id = d.value("qdev_id", "");
        g.parent = parent;
        if (d.contains("regions"))
            for (const auto& r : d["regions"]) g.bar_sizes.push_back(r.value("size", uint64_t{0}));
        out.push_back(g);
        if (d.contains("pci_bridge") && d["pci_bridge"].contains("devices")) {
            nlohmann::json sub = d["pci_bridge"];
            sub["bus"] = d["pci_bridge"].contains("bus") ? d["pci_bridge"]["bus"].value("secondary", 0) : 0;
            collect(sub, g.qdev_id, out);
        }
    }
}

} // namespace

std::vector<GuestPciDevice> parse_query_pci(const nlohmann::json& reply) {
    std::vector<GuestPciDevice> out;
    if (reply.is_array())
        for (const auto& bus : reply) collect(bus, "", out);
    return out;
}

Result<QmpClient> QmpClient::connect(const std::string& socket, int timeout_ms) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (socket.size() >= sizeof sa.sun_path) return Error{"QMP socket path too long", socket, {}, 0};
    std::memcpy(sa.sun_path, socket.c_str(), socket.size() + 1);
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    int last_errno = 0;
    for (;;) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return system_error("cannot create a socket", socket);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
            QmpClient c(fd);
            auto greeting = c.read_message(ms_left(deadline) + 1000);
            if (!greeting) return greeting.error();
            if (!greeting->contains("QMP"))
                return Error{"the peer is not QMP (no greeting)", socket, {}, 0};
            auto caps = c.execute("qmp_capabilities", nullptr, ms_left(deadline) + 1000);
            if (!caps) return caps.error();
            return c;
        }
        last_errno = errno;
        ::close(fd);
        if (ms_left(deadline) == 0 || (last_errno != ENOENT && last_errno != ECONNREFUSED))
            return system_error("cannot connect to QMP", socket, last_errno);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

QmpClient::~QmpClient() {
    if (m_fd >= 0) ::close(m_fd);
}

Result<nlohmann::json> QmpClient::read_message(int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        size_t nl = m_buf.find('\n');
        if (nl != std::string::npos) {
            std::string line = m_buf.substr(0, nl);
            m_buf.erase(0, nl + 1);
            if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
            try {
                return nlohmann::json::parse(line);
            } catch (const nlohmann::json::exception& e) {
                return Error{std::string("QMP sent something that is not JSON: ") + e.what(), {}, {}, 0};
            }
        }
        pollfd pfd{m_fd, POLLIN, 0};
        int left = ms_left(deadline);
        int r = ::poll(&pfd, 1, left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return system_error("QMP poll failed", "");
        if (r == 0) return Error{"QMP did not answer within " + std::to_string(timeout_ms) + " ms", {}, {}, ETIMEDOUT};
        char buf[65536];
        ssize_t n = ::read(m_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return system_error("QMP read failed", "");
        if (n == 0) return Error{"QMP closed the connection", {}, {}, EPIPE};
        m_buf.append(buf, static_cast<size_t>(n));
    }
}

Result<nlohmann::json> QmpClient::execute(const std::string& command, const nlohmann::json& args,
                                          int timeout_ms) {
    nlohmann::json req = {{"execute", command}};
    if (!args.is_null()) req["arguments"] = args;
    std::string text = req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::send(m_fd, text.data() + off, text.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return system_error("QMP write failed (" + command + ")", "");
        off += static_cast<size_t>(n);
    }
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        auto m = read_message(ms_left(deadline));
        if (!m) return m.error();
        if (m->contains("event")) continue;
        if (m->contains("return")) return (*m)["return"];
        if (m->contains("error"))
            return Error{"QMP " + command + ": " + (*m)["error"].value("desc", std::string("error")), {}, {}, 0};
    }
}

Result<std::string> QmpClient::query_status() {
    auto r = execute("query-status");
    if (!r) return r.error();
    return r->value("status", std::string("unknown"));
}

Result<std::vector<GuestPciDevice>> QmpClient::query_pci() {
    auto r = execute("query-pci");
    if (!r) return r.error();
    return parse_query_pci(*r);
}

Status QmpClient::system_powerdown() {
    auto r = execute("system_powerdown");
    if (!r) return r.error();
    return {};
}

Status QmpClient::quit() {
    auto r = execute("quit", nullptr, 5000);
    if (!r && r.error().errnum != EPIPE && r.error().errnum != ECONNRESET) return r.error();
    return {};
}

} // namespace vfioctl::vm
