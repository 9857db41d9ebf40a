// services::Devices on FakeKernel: one refusal rule for 'bind' and for a
// guest's devices, taking a GPU for a guest and giving it back.

#include "fake_kernel.hpp"
#include "services/devices.hpp"
#include "services/paths.hpp"

#include <gtest/gtest.h>

using namespace vfioctl;
using fake::FakeKernel;
using fixture::HostTree;

namespace {

vfio::BindPlan plan_with(std::vector<vfio::Obstacle> refusals,
                         std::vector<vfio::Obstacle> blockers) {
    vfio::BindPlan p;
    p.refusals = std::move(refusals);
    p.blockers = std::move(blockers);
    return p;
}

vfio::Obstacle obstacle(const std::string& kind, const std::string& text) {
    vfio::Obstacle o;
    o.addr = *pci::PciAddress::parse(fixture::k_seed_gpu);
    o.kind = kind;
    o.text = text;
    return o;
}

} // namespace

TEST(PlanRefusal, RefusalsAreNeverForcedBlockersOnlyByBind) {
    auto refused = plan_with({obstacle("root_filesystem", "holds /")}, {});
    auto r = services::plan_refusal(refused, true, services::Requester::bind);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->message, "refusing to bind: holds /");
    EXPECT_EQ(r->hint,
              "nothing was changed; 'vfioctl groups' shows each group's members and roles");
    auto guest = services::plan_refusal(refused, false, services::Requester::guest);
    ASSERT_TRUE(guest.has_value());
    EXPECT_EQ(guest->hint, "nothing was changed; 'vfioctl groups' shows each group's members");

    auto blocked = plan_with({}, {obstacle("holder_process", "in use"), obstacle("x", "also")});
    auto b = services::plan_refusal(blocked, false, services::Requester::bind);
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->message, "refusing to bind: in use; also");
    EXPECT_EQ(b->hint, "nothing was changed; stop what uses the device, or pass --force to take "
                       "it anyway");
    EXPECT_FALSE(services::plan_refusal(blocked, true, services::Requester::bind).has_value());
    auto g = services::plan_refusal(blocked, false, services::Requester::guest);
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(g->hint,
              "nothing was changed; stop what uses the device, or 'vfioctl bind --force' it first");
    EXPECT_FALSE(
        services::plan_refusal(plan_with({}, {}), false, services::Requester::guest).has_value());
}

TEST(DevicesService, TakesAGpuForAGuestAndGivesItBack) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    std::vector<std::string> steps;
    services::Devices devices(k, services::k_default_state_dir,
                              [&steps](const std::string& s) { steps.push_back(s); });
    auto m = services::load_host(k, services::k_default_state_dir);
    ASSERT_TRUE(m.ok()) << m.error().describe();
    auto taken = devices.take(*m, {fixture::k_seed_gpu});
    ASSERT_TRUE(taken.ok()) << taken.refusal().error.describe();
    EXPECT_EQ(taken->addresses, std::vector<std::string>{fixture::k_seed_gpu});
    EXPECT_EQ(taken->ids.size(), 1u);
    ASSERT_EQ(taken->slots.size(), 1u);
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "vfio-pci");
    EXPECT_FALSE(steps.empty());

    auto back = devices.give_back(taken->addresses);
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");
}

TEST(DevicesService, AGpuWithoutAnIommuGroupWillNotWork) {
    HostTree t = fixture::seed_before();
    FakeKernel k(t);
    services::Devices devices(k, services::k_default_state_dir, {});
    auto m = services::load_host(k, services::k_default_state_dir);
    ASSERT_TRUE(m.ok());
    auto taken = devices.take(*m, {fixture::k_seed_gpu});
    ASSERT_FALSE(taken.ok());
    EXPECT_TRUE(taken.refusal().wont_work);
    EXPECT_EQ(taken.refusal().error.message.rfind("passthrough of 0000:8a:00.0 ", 0), 0u)
        << taken.refusal().error.message;
    EXPECT_EQ(k.driver_of(fixture::k_seed_gpu), "nvidia");

    auto unknown = devices.take(*m, {"ffff:ffff"});
    ASSERT_FALSE(unknown.ok());
    EXPECT_FALSE(unknown.refusal().wont_work);
    EXPECT_EQ(unknown.refusal().error.message, "no PCI device with ID ffff:ffff");
}
