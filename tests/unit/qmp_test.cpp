// vm/qmp.cpp: the QMP client against a fake QEMU on a unix socket. The
// server's lines are what QEMU 7.2 (Debian 12) sent on
//   qemu-system-x86_64 -machine none -nodefaults -display none -qmp stdio
// (greeting, replies, events and errors, byte for byte), and the query-pci
// reply in tests/fixtures/qmp/ is from a q35 machine with a root port and a
// virtio-net device behind it, after the firmware numbered the buses.

#include "fixture/fixture.hpp"
#include "vm/qmp.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <gtest/gtest.h>
#include <optional>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

using namespace vfioctl;

namespace {

const char* const k_greeting =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}})"
    "\n";
const char* const k_ok = "{\"return\": {}}\n";

// One step of a fake QEMU: wait for a request naming command, then send
// reply (in two writes 50 ms apart when split is set, the first split bytes
// first); close the connection instead of answering when close is set.
struct Step {
    std::string command;
    std::string reply;
    bool close = false;
    size_t split = 0;
};

// A fake QEMU monitor on a unix socket in a temporary directory: sends
// greeting on accept, then plays steps in order and records the "execute"
// of every request. A request that does not name the step's command ends
// the script (the test then fails on requests()). After the last step it
// hangs up, or with hold_open waits for the client to. Never blocks a test
// for more than a few seconds: accept and reads poll with a deadline.
class FakeQmp {
  public:
    FakeQmp(std::string greeting, std::vector<Step> steps, bool hold_open = false)
        : m_greeting(std::move(greeting)), m_steps(std::move(steps)), m_hold_open(hold_open) {
        m_path = (m_dir.path / "qmp.sock").string();
        m_listen = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", m_path.c_str());
        if (::bind(m_listen, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
            ::listen(m_listen, 1) != 0)
            ADD_FAILURE() << "cannot listen on " << m_path << ": " << std::strerror(errno);
        m_thread = std::thread([this] { serve(); });
    }
    ~FakeQmp() {
        m_thread.join();
        ::close(m_listen);
    }
    FakeQmp(const FakeQmp&) = delete;
    FakeQmp& operator=(const FakeQmp&) = delete;

    const std::string& path() const { return m_path; }
    // The commands the client sent, in order; call after the client is done.
    std::vector<std::string> requests() {
        m_thread.join();
        m_thread = std::thread([] {});
        return m_requests;
    }

  private:
    // A line from fd within the deadline, or nullopt on EOF or timeout.
    std::optional<std::string> read_line(int fd) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        for (;;) {
            if (size_t nl = m_buf.find('\n'); nl != std::string::npos) {
                std::string line = m_buf.substr(0, nl);
                m_buf.erase(0, nl + 1);
                return line;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{fd, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                return std::nullopt;
            char b[4096];
            ssize_t n = ::read(fd, b, sizeof b);
            if (n <= 0) return std::nullopt;
            m_buf.append(b, static_cast<size_t>(n));
        }
    }

    void serve() {
        pollfd p{m_listen, POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) return; // the client never came
        int fd = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        send_all(fd, m_greeting);
        for (const auto& s : m_steps) {
            auto line = read_line(fd);
            if (!line) break;
            auto j = nlohmann::json::parse(*line, nullptr, false);
            std::string cmd = j.is_object() ? j.value("execute", "?") : "not JSON: " + *line;
            m_requests.push_back(cmd);
            if (cmd != s.command || s.close) {
                ::close(fd);
                return;
            }
            if (s.split > 0 && s.split < s.reply.size()) {
                send_all(fd, s.reply.substr(0, s.split));
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                send_all(fd, s.reply.substr(s.split));
            } else {
                send_all(fd, s.reply);
            }
        }
        if (m_hold_open)
            while (read_line(fd)) {
            }
        ::close(fd);
    }

    static void send_all(int fd, const std::string& text) {
        size_t off = 0;
        while (off < text.size()) {
            ssize_t n = ::send(fd, text.data() + off, text.size() - off, MSG_NOSIGNAL);
            if (n <= 0) return;
            off += static_cast<size_t>(n);
        }
    }

    fixture::TempDir m_dir;
    std::string m_path;
    std::string m_greeting;
    std::vector<Step> m_steps;
    bool m_hold_open = false;
    std::vector<std::string> m_requests;
    std::string m_buf;
    int m_listen = -1;
    std::thread m_thread;
};

std::string read_fixture(const std::string& name) {
    std::ifstream f(std::string(VFIOCTL_SOURCE_DIR) + "/tests/fixtures/qmp/" + name);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

} // namespace

TEST(Qmp, HandshakeThenQueryStatus) {
    FakeQmp q(k_greeting,
              {{"qmp_capabilities", k_ok},
               {"query-status",
                "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": "
                "true}}\n"}});
    auto c = vm::QmpClient::connect(q.path(), 2000);
    ASSERT_TRUE(c.ok()) << c.error().describe();
    auto s = c->query_status();
    ASSERT_TRUE(s.ok()) << s.error().describe();
    EXPECT_EQ(*s, "running");
    EXPECT_EQ(q.requests(), (std::vector<std::string>{"qmp_capabilities", "query-status"}));
}

// QEMU sends STOP before the return of "stop", and POWERDOWN before the
// return of system_powerdown: events are skipped, not taken for replies.
TEST(Qmp, EventsBetweenRepliesAreSkipped) {
    FakeQmp q(
        k_greeting,
        {{"qmp_capabilities", k_ok},
         {"stop", "{\"timestamp\": {\"seconds\": 1796048020, \"microseconds\": 256003}, "
                  "\"event\": \"STOP\"}\n{\"return\": {}}\n"},
         {"query-status",
          "{\"return\": {\"status\": \"paused\", \"singlestep\": false, \"running\": false}}\n"},
         {"system_powerdown", "{\"timestamp\": {\"seconds\": 1796048020, \"microseconds\": "
                              "256166}, \"event\": \"POWERDOWN\"}\n{\"return\": {}}\n"}});
    auto c = vm::QmpClient::connect(q.path(), 2000);
    ASSERT_TRUE(c.ok()) << c.error().describe();
    auto stop = c->execute("stop");
    ASSERT_TRUE(stop.ok()) << stop.error().describe();
    EXPECT_EQ(*stop, nlohmann::json::object());
    auto s = c->query_status();
    ASSERT_TRUE(s.ok()) << s.error().describe();
    EXPECT_EQ(*s, "paused");
    EXPECT_TRUE(c->system_powerdown().ok());
    EXPECT_EQ(q.requests(), (std::vector<std::string>{"qmp_capabilities", "stop", "query-status",
                                                      "system_powerdown"}));
}

TEST(Qmp, ErrorRepliesCarryQemusDescription) {
    FakeQmp q(k_greeting,
              {{"qmp_capabilities", k_ok},
               {"nope", "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command nope "
                        "has not been found\"}}\n"},
               {"qmp_capabilities",
                "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Capabilities "
                "negotiation is already complete, command ignored\"}}\n"}});
    auto c = vm::QmpClient::connect(q.path(), 2000);
    ASSERT_TRUE(c.ok()) << c.error().describe();
    auto e = c->execute("nope");
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().message, "QMP nope: The command nope has not been found");
    auto again = c->execute("qmp_capabilities");
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().message, "QMP qmp_capabilities: Capabilities negotiation is already "
                                     "complete, command ignored");
}

// quit: QEMU sends SHUTDOWN and the return, or exits before it answers;
// both are success.
TEST(Qmp, QuitSucceedsWhetherQemuAnswersOrHangsUp) {
    {
        FakeQmp q(k_greeting,
                  {{"qmp_capabilities", k_ok},
                   {"quit", "{\"timestamp\": {\"seconds\": 1796048020, \"microseconds\": 256227}, "
                            "\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, \"reason\": "
                            "\"host-qmp-quit\"}}\n{\"return\": {}}\n"}});
        auto c = vm::QmpClient::connect(q.path(), 2000);
        ASSERT_TRUE(c.ok()) << c.error().describe();
        auto st = c->quit();
        EXPECT_TRUE(st.ok()) << st.error().describe();
    }
    FakeQmp q(k_greeting, {{"qmp_capabilities", k_ok}, {"quit", "", true}});
    auto c = vm::QmpClient::connect(q.path(), 2000);
    ASSERT_TRUE(c.ok()) << c.error().describe();
    auto st = c->quit();
    EXPECT_TRUE(st.ok()) << st.error().describe();
    EXPECT_EQ(q.requests(), (std::vector<std::string>{"qmp_capabilities", "quit"}));
}

// Any other command the peer hangs up on is an error, not a success.
TEST(Qmp, ServerThatClosesEarly) {
    {
        // Right after the greeting, before the capabilities are negotiated.
        FakeQmp q(k_greeting, {{"qmp_capabilities", "", true}});
        auto c = vm::QmpClient::connect(q.path(), 2000);
        ASSERT_FALSE(c.ok());
        EXPECT_EQ(c.error().message, "QMP closed the connection");
        EXPECT_EQ(c.error().errnum, EPIPE);
    }
    {
        // Before the greeting.
        FakeQmp q("", {});
        auto c = vm::QmpClient::connect(q.path(), 2000);
        ASSERT_FALSE(c.ok());
        EXPECT_EQ(c.error().message, "QMP closed the connection");
    }
    FakeQmp q(k_greeting, {{"qmp_capabilities", k_ok}, {"query-status", "", true}});
    auto c = vm::QmpClient::connect(q.path(), 2000);
    ASSERT_TRUE(c.ok()) << c.error().describe();
    auto s = c->query_status();
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "QMP closed the connection");
}

TEST(Qmp, ServerThatSendsGarbage) {
    {
        // Not JSON where the greeting belongs.
        FakeQmp q("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", {});
        auto c = vm::QmpClient::connect(q.path(), 2000);
        ASSERT_FALSE(c.ok());
        EXPECT_EQ(c.error().message, "QMP sent something that is not JSON");
        EXPECT_EQ(c.error().path, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r");
    }
    {
        // JSON, but no greeting: the peer is something else.
        FakeQmp q(k_ok, {});
        auto c = vm::QmpClient::connect(q.path(), 2000);
        ASSERT_FALSE(c.ok());
        EXPECT_EQ(c.error().message, "the peer is not QMP (no greeting)");
        EXPECT_EQ(c.error().path, q.path());
    }
    // A cut-off reply, then binary noise.
    std::string cut = "{\"return\": {\"status\": \"runn\n";
    cut += std::string("\x01\xff\0\n", 4);
    FakeQmp q(k_greeting, {{"qmp_capabilities", k_ok}, {"query-status", cut}});
    auto c = vm::QmpClient::connect(q.path(), 2000);
    ASSERT_TRUE(c.ok()) << c.error().describe();
    auto s = c->query_status();
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().message, "QMP sent something that is not JSON");
    EXPECT_EQ(s.error().path, "{\"return\": {\"status\": \"runn");
}

// Lines may arrive in pieces and several in one read; blank lines and
// CRLF endings are skipped.
TEST(Qmp, LinesSplitAcrossReadsAndBlankLines) {
    const std::string stop = "{\"timestamp\": {\"seconds\": 1796048020, \"microseconds\": 256003}, "
                             "\"event\": \"STOP\"}\r\n\n{\"return\": {\"status\": \"paused\", "
                             "\"singlestep\": false, \"running\": false}}\r\n";
    FakeQmp q(std::string("\r\n") + k_greeting + "\n",
              {{"qmp_capabilities", k_ok, false, 5}, {"query-status", stop, false, 40}});
    auto c = vm::QmpClient::connect(q.path(), 2000);
    ASSERT_TRUE(c.ok()) << c.error().describe();
    auto s = c->query_status();
    ASSERT_TRUE(s.ok()) << s.error().describe();
    EXPECT_EQ(*s, "paused");
}

TEST(Qmp, SilentServerTimesOutInBoundedTime) {
    FakeQmp q(k_greeting, {{"qmp_capabilities", k_ok}}, true);
    auto c = vm::QmpClient::connect(q.path(), 2000);
    ASSERT_TRUE(c.ok()) << c.error().describe();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = c->execute("query-status", nullptr, 200);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message.rfind("QMP did not answer within ", 0), 0u) << r.error().message;
    EXPECT_EQ(r.error().errnum, ETIMEDOUT);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST(Qmp, NoSocketIsAnErrorNamingIt) {
    fixture::TempDir dir;
    const std::string path = (dir.path / "absent.sock").string();
    const auto t0 = std::chrono::steady_clock::now();
    auto c = vm::QmpClient::connect(path, 100);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().errnum, ENOENT);
    EXPECT_EQ(c.error().path, path);
    EXPECT_NE(c.error().message.find("cannot connect to QMP"), std::string::npos);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
    EXPECT_FALSE(vm::QmpClient::connect(std::string(200, 'x'), 100).ok());
}

TEST(Qmp, QueryPciFromARealQ35Machine) {
    const std::string reply = read_fixture("query-pci-q35.json");
    ASSERT_FALSE(reply.empty());
    FakeQmp q(k_greeting, {{"qmp_capabilities", k_ok}, {"query-pci", reply}});
    auto c = vm::QmpClient::connect(q.path(), 2000);
    ASSERT_TRUE(c.ok()) << c.error().describe();
    auto devs = c->query_pci();
    ASSERT_TRUE(devs.ok()) << devs.error().describe();
    // Host bridge, root port rp1, net0 behind it, then the ICH9 functions.
    ASSERT_EQ(devs->size(), 6u);
    const auto& rp = (*devs)[1];
    EXPECT_EQ(rp.qdev_id, "rp1");
    EXPECT_EQ(rp.vendor, 0x1b36);
    EXPECT_EQ(rp.class_code, 0x0604);
    const auto& net = (*devs)[2];
    EXPECT_EQ(net.qdev_id, "net0");
    EXPECT_EQ(net.parent, "rp1");
    EXPECT_EQ(net.bus, 1);
    EXPECT_EQ(net.slot, 0);
    EXPECT_EQ(net.vendor, 0x1af4);
    EXPECT_EQ(net.device, 0x1041);
    EXPECT_EQ(net.class_code, 0x0200);
    EXPECT_EQ(net.bar_sizes, (std::vector<uint64_t>{4096, 16384, 262144}));
    EXPECT_EQ((*devs)[4].function, 2); // the SATA controller at 1f.2
    EXPECT_EQ((*devs)[4].class_code, 0x0106);
}

TEST(Qmp, ClassifyRealMessages) {
    auto cls = [](const char* line) {
        auto m = vm::parse_qmp_message(line);
        EXPECT_TRUE(m.ok()) << line;
        return vm::classify_qmp(m.ok() ? *m : nlohmann::json());
    };
    EXPECT_EQ(cls(k_greeting).kind, vm::QmpReply::other);
    EXPECT_EQ(
        cls(R"({"timestamp": {"seconds": 1796048020, "microseconds": 256003}, "event": "STOP"})")
            .kind,
        vm::QmpReply::event);
    auto r = cls(R"({"return": {"status": "running", "singlestep": false, "running": true}})");
    EXPECT_EQ(r.kind, vm::QmpReply::ret);
    EXPECT_EQ(r.value["status"], "running");
    auto e = cls(
        R"({"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}})");
    EXPECT_EQ(e.kind, vm::QmpReply::error);
    EXPECT_EQ(e.desc, "The command nope has not been found");
    EXPECT_EQ(cls(R"({"error": "no object"})").desc, "error");
    EXPECT_FALSE(vm::parse_qmp_message("{\"return\": ").ok());
}

TEST(Qmp, ParsesNestedBuses) {
    auto reply = nlohmann::json::parse(R"([{"bus":0,"devices":[
        {"bus":0,"slot":16,"function":0,"qdev_id":"rp0","id":{"vendor":6966,"device":12},
         "class_info":{"class":1540},"regions":[{"size":4096}],
         "pci_bridge":{"bus":{"number":1,"secondary":1,"subordinate":1},
           "devices":[{"bus":1,"slot":0,"function":0,"qdev_id":"hostdev0",
                       "id":{"vendor":32902,"device":4307},"class_info":{"class":512},"regions":[]}]}}]}])");
    auto parsed = vm::parse_query_pci(reply);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    const auto& d = *parsed;
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[1].bus, 1);
    EXPECT_EQ(d[1].parent, "rp0");
    EXPECT_EQ(d[1].vendor, 0x8086);
    EXPECT_EQ(d[1].device, 0x10d3);
    EXPECT_EQ(d[0].class_code, 0x0604);
}

// Issue #11: replies of the wrong shape were nlohmann exceptions; they are Errors.
TEST(Qmp, MalformedRepliesAreErrorsNotExceptions) {
    for (const char* text :
         {R"({"bus":0})", R"([1])", R"([{"devices":3}])", R"([{"devices":[7]}])", "null"}) {
        SCOPED_TRACE(text);
        auto r = vm::parse_query_pci(nlohmann::json::parse(text));
        ASSERT_FALSE(r.ok());
        EXPECT_NE(r.error().message.find("query-pci"), std::string::npos);
    }
    // Fields of the wrong type read as absent; a bridge without devices is skipped.
    auto r = vm::parse_query_pci(nlohmann::json::parse(
        R"([{"bus":"x","devices":[{"slot":"3","id":[],"class_info":5,"qdev_id":4,"regions":[1,{"size":-1}],
            "pci_bridge":{"bus":[]}}]}])"));
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0].slot, 0);
    EXPECT_EQ((*r)[0].bar_sizes.size(), 2u);
    // Bridges nested past any real machine: an Error, not a stack overflow.
    nlohmann::json deep = {{"devices", nlohmann::json::array()}};
    for (int i = 0; i < 300; ++i)
        deep = nlohmann::json{
            {"devices", nlohmann::json::array({nlohmann::json{{"pci_bridge", deep}}})}};
    auto d = vm::parse_query_pci(nlohmann::json::array({deep}));
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("too deep"), std::string::npos);

    EXPECT_FALSE(vm::parse_qmp_message(std::string("{\"return\": \"\xff\"}")).ok());
    EXPECT_FALSE(vm::parse_qmp_message(std::string("{\0}", 3)).ok());
    EXPECT_FALSE(vm::parse_qmp_message("{\"return\": ").ok());
    ASSERT_TRUE(vm::parse_qmp_message(R"({"return": {}})").ok());

    EXPECT_EQ(vm::classify_qmp(nlohmann::json::parse(R"({"error": 3})")).desc, "error");
    EXPECT_EQ(vm::classify_qmp(nlohmann::json::parse(R"({"error": {"desc": [1]}})")).kind,
              vm::QmpReply::error);
    EXPECT_EQ(vm::classify_qmp(nlohmann::json::parse(R"({"error": {"desc": "no"}})")).desc, "no");
    EXPECT_EQ(vm::classify_qmp(nlohmann::json::parse(R"([1, 2])")).kind, vm::QmpReply::other);
    EXPECT_EQ(vm::classify_qmp(nlohmann::json::parse(R"({"event": 1, "return": 2})")).kind,
              vm::QmpReply::event);
    auto ret = vm::classify_qmp(nlohmann::json::parse(R"({"return": [5]})"));
    EXPECT_EQ(ret.kind, vm::QmpReply::ret);
    EXPECT_EQ(ret.value, nlohmann::json::parse("[5]"));
}
