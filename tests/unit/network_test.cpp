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
        if (x.addr.str() == fixture::k_host_nic) eno1 = x.what().find("eno1 is up with address 192.0.2.") != std::string::npos;
    EXPECT_TRUE(eno1);
}

} // namespace
