// Which network interfaces keep their device from a bind.

#include "fixture/fixture.hpp"
#include "host/system.hpp"

#include <gtest/gtest.h>

using namespace vfioctl;

namespace {

// An interface counts as in use only when it is up (IFF_UP) and carries an
// address: up with nothing configured, or down with an address, does not.
TEST(NetworkInUse, UpWithAnAddressOnly) {
    fixture::HostTree t = fixture::seed_after();
    host::Host h(t.root());
    const std::string eno2 = "0000:02:00.1";
    auto uses = [&] {
        std::vector<std::string> out;
        for (const auto& u : host::read_system(h, true).in_use)
            if (u.addr.str() == eno2) out.push_back(u.what());
        return out;
    };
    EXPECT_TRUE(uses().empty()); // down, no address
    t.write("/sys/class/net/eno2/flags", "0x1003\n");
    EXPECT_TRUE(uses().empty()) << "up with no address";
    t.set_addresses("eno2", {"2001:db8::5"});
    auto u = uses();
    ASSERT_EQ(u.size(), 1u);
    EXPECT_EQ(u[0], "interface eno2 is up with address 2001:db8::5");
    t.write("/sys/class/net/eno2/flags", "0x1002\n");
    EXPECT_TRUE(uses().empty()) << "down with an address";
    // The default-route NIC (up, 192.0.2.x) is in use as well as critical.
    bool eno1 = false;
    for (const auto& x : host::read_system(h, true).in_use)
        if (x.addr.str() == fixture::k_host_nic)
            eno1 = x.what().find("eno1 is up with address 192.0.2.") != std::string::npos;
    EXPECT_TRUE(eno1);
}

} // namespace

// The parser the fuzzer runs is the one bind's guard uses: its answer and
// its problem for real tables, an empty one, and tables that are not.
TEST(DefaultRoutes, ParserIsTheGuardsParser) {
    const std::string head =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";
    const std::string v4 = head + "eno1\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
                           "eno2\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n";
    const std::string v6_default =
        std::string(32, '0') + " 00 " + std::string(32, '0') +
        " 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eno3\n";
    auto r = host::parse_default_routes(v4, v6_default);
    EXPECT_FALSE(r.problem) << *r.problem;
    EXPECT_EQ(r.ifaces, (std::vector<std::string>{"eno1", "eno3"}));

    auto empty = host::parse_default_routes("", "");
    EXPECT_FALSE(empty.problem) << "an empty table is a kernel with no IPv4 routes";
    EXPECT_TRUE(empty.ifaces.empty());

    for (const std::string& bad :
         {std::string("\x7f"
                      "ELF garbage\n"),
          head + "eno1\tnot a route\n", head + "eno1\t0000000G\t0\t0003\t0\t0\t100\t00000000\n"}) {
        auto b = host::parse_default_routes(bad, v6_default);
        EXPECT_TRUE(b.problem) << "unknown, not 'no default route': " << bad;
    }
    auto b6 = host::parse_default_routes(v4, "garbage line\n");
    ASSERT_TRUE(b6.problem);
    EXPECT_EQ(*b6.problem, "line 1 of /proc/net/ipv6_route is not a route");
}
