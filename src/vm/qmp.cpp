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

// A number field of an object, or fallback when it is missing or not an integer.
template <class T> T num(const nlohmann::json& o, const char* key, T fallback) {
    if (!o.is_object()) return fallback;
    auto it = o.find(key);
    if (it == o.end() || !it->is_number_integer()) return fallback;
    return it->get<T>();
}

// Bridges nest no deeper than this in any machine QEMU builds (256 buses).
constexpr int k_max_bridge_depth = 256;

// Bus numbers are 0 until the guest's firmware enumerates (a QEMU started
// with -S), so devices also record the bridge they sit behind. An Error
// when the reply is not shaped like query-pci's.
Status collect(const nlohmann::json& bus, int busnr, const std::string& parent, int depth,
               std::vector<GuestPciDevice>& out) {
    if (depth > k_max_bridge_depth)
        return Error{"QMP query-pci: bridges nested too deep", {}, {}, 0};
    if (!bus.is_object()) return Error{"QMP query-pci: a bus is not an object", {}, {}, 0};
    auto devs = bus.find("devices");
    if (devs == bus.end()) return {};
    if (!devs->is_array()) return Error{"QMP query-pci: 'devices' is not a list", {}, {}, 0};
    for (const auto& d : *devs) {
        if (!d.is_object()) return Error{"QMP query-pci: a device is not an object", {}, {}, 0};
        GuestPciDevice g;
        g.bus = num(d, "bus", busnr);
        g.slot = num(d, "slot", 0);
        g.function = num(d, "function", 0);
        if (auto id = d.find("id"); id != d.end()) {
            g.vendor = num<uint16_t>(*id, "vendor", 0);
            g.device = num<uint16_t>(*id, "device", 0);
        }
        if (auto ci = d.find("class_info"); ci != d.end())
            g.class_code = num<uint16_t>(*ci, "class", 0);
        if (auto q = d.find("qdev_id"); q != d.end() && q->is_string())
            g.qdev_id = q->get<std::string>();
        g.parent = parent;
        if (auto rs = d.find("regions"); rs != d.end() && rs->is_array())
            for (const auto& r : *rs)
                g.bar_sizes.push_back(num(r, "size", uint64_t{0}));
        out.push_back(g);
        auto br = d.find("pci_bridge");
        if (br != d.end() && br->is_object() && br->contains("devices")) {
            int secondary = 0;
            if (auto b = br->find("bus"); b != br->end()) secondary = num(*b, "secondary", 0);
            if (auto st = collect(*br, secondary, g.qdev_id, depth + 1, out); !st) return st;
        }
    }
    return {};
}

} // namespace

Result<std::vector<GuestPciDevice>> parse_query_pci(const nlohmann::json& reply) {
    std::vector<GuestPciDevice> out;
    if (!reply.is_array())
        return Error{"QMP query-pci: the reply is not a list of buses", {}, {}, 0};
    for (const auto& bus : reply)
        if (auto st = collect(bus, num(bus, "bus", 0), "", 0, out); !st) return st.error();
    return out;
}

Result<nlohmann::json> parse_qmp_message(std::string_view line) {
    // Parsed without exceptions: anything that is not JSON (invalid UTF-8,
    // a NUL, a cut-off object) is an Error.
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded())
        return Error{
            "QMP sent something that is not JSON", std::string(line.substr(0, 200)), {}, 0};
    return j;
}

QmpReply classify_qmp(const nlohmann::json& m) {
    QmpReply r;
    if (!m.is_object()) return r;
    if (m.contains("event")) {
        r.kind = QmpReply::event;
    } else if (auto ret = m.find("return"); ret != m.end()) {
        r.kind = QmpReply::ret;
        r.value = *ret;
    } else if (auto err = m.find("error"); err != m.end()) {
        r.kind = QmpReply::error;
        r.desc = "error";
        if (err->is_object())
            if (auto d = err->find("desc"); d != err->end() && d->is_string())
                r.desc = d->get<std::string>();
    }
    return r;
}

Result<QmpClient> QmpClient::connect(const std::string& socket, int timeout_ms) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (socket.size() >= sizeof sa.sun_path)
        return Error{"QMP socket path too long", socket, {}, 0};
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
            return parse_qmp_message(line);
        }
        pollfd pfd{m_fd, POLLIN, 0};
        int left = ms_left(deadline);
        int r = ::poll(&pfd, 1, left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return system_error("QMP poll failed", "");
        if (r == 0)
            return Error{"QMP did not answer within " + std::to_string(timeout_ms) + " ms",
                         {},
                         {},
                         ETIMEDOUT};
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
        QmpReply r = classify_qmp(*m);
        if (r.kind == QmpReply::ret) return std::move(r.value);
        if (r.kind == QmpReply::error) return Error{"QMP " + command + ": " + r.desc, {}, {}, 0};
    }
}

Result<std::string> QmpClient::query_status() {
    auto r = execute("query-status");
    if (!r) return r.error();
    if (r->is_object())
        if (auto st = r->find("status"); st != r->end() && st->is_string())
            return st->get<std::string>();
    return std::string("unknown");
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
