// NVLink fabrics (HGX/DGX NVSwitches): what status, groups, bind, explain and
// verify --in-guest make of them, on the DGX-class fixture.

#include "fixture/fixture.hpp"
#include "host/host.hpp"
#include "pci/fabric.hpp"
#include "support.hpp"
#include "vm/inguest.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>

using namespace vfioctl;
using json = nlohmann::json;

namespace {

fixture::Outcome run_on(const fixture::HostTree& t, std::vector<std::string> args) {
    std::vector<std::string> argv = {VFIOCTL_BINARY, "--root", t.root().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return fixture::run_program(argv);
}

} // namespace

TEST(Fabric, TheDgxHasFourNvswitchesAndEightGpusAndNotItsBmcVga) {
    const auto& t = test::shared_host("dgx");
    host::Host h(t.root().string());
    auto inv = pci::enumerate(h);
    ASSERT_TRUE(inv.ok()) << inv.error().describe();
    auto f = pci::nvlink_fabric(*inv);
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->nvswitches.size(), 4u);
    ASSERT_EQ(f->gpus.size(), 8u);
    for (const auto* g : f->gpus)
        EXPECT_EQ(g->id().str(), "10de:2330") << g->addr.str();
    EXPECT_NE(f->generation.find("third-generation"), std::string::npos) << f->generation;
    std::vector<std::string> ids;
    for (const auto& m : pci::fabric_models(*f))
        ids.push_back(m.id);
    EXPECT_EQ(ids, (std::vector<std::string>{"full_passthrough", "shared_nvswitch", "single_gpu"}));

    host::Host seed(test::shared_host("seed_after").root().string());
    auto sinv = pci::enumerate(seed);
    ASSERT_TRUE(sinv.ok());
    EXPECT_FALSE(pci::nvlink_fabric(*sinv).has_value());
}

TEST(Fabric, StatusAndGroupsShowWhichGpusShareIt) {
    const auto& t = test::shared_host("dgx");
    auto st = run_on(t, {"--json", "status"});
    json j = json::parse(st.out);
    ASSERT_TRUE(j["fabric"].is_object()) << st.out.substr(0, 400);
    EXPECT_EQ(j["fabric"]["nvswitches"].size(), 4u);
    EXPECT_EQ(j["fabric"]["gpus"].size(), 8u);
    EXPECT_EQ(j["fabric"]["nvswitches"][0]["driver"], "nvidia-nvswitch");
    EXPECT_EQ(j["fabric"]["models"][0]["id"], "full_passthrough");
    auto text = run_on(t, {"status"});
    EXPECT_NE(text.out.find("NVLink fabric"), std::string::npos);
    auto gr = run_on(t, {"--json", "groups"});
    json g = json::parse(gr.out);
    EXPECT_EQ(g["fabric"]["gpus"], j["fabric"]["gpus"]);
    auto gt = run_on(t, {"groups"});
    EXPECT_NE(gt.out.find("single_gpu: one GPU alone"), std::string::npos) << gt.out;

    auto seed = run_on(test::shared_host("seed_after"), {"--json", "status"});
    EXPECT_TRUE(json::parse(seed.out)["fabric"].is_null());
}

TEST(Fabric, AllGpusWithNvswitchesNamesTheWholeFabricInAddressOrder) {
    const auto& t = test::shared_host("dgx");
    auto r = run_on(t, {"--json", "bind", "--all-gpus", "--with-nvswitches", "--dry-run"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out);
    const auto& a = j["selection"]["addresses"];
    ASSERT_EQ(a.size(), 12u);
    EXPECT_EQ(a[0], "0000:18:00.0");
    EXPECT_EQ(a[8], "0000:da:00.0");
    EXPECT_TRUE(j["selection"]["left_out"].empty());
    EXPECT_EQ(j["changed"], false);
    std::set<std::string> planned;
    for (const auto& it : j["plan"])
        planned.insert(it["address"].get<std::string>());
    for (const auto& x : a)
        EXPECT_TRUE(planned.count(x.get<std::string>())) << x;
}

TEST(Fabric, AllGpusLeavesOutAHeldGpuAndSaysWhy) {
    fixture::HostTree t = fixture::dgx_host();
    t.add_process(fixture::k_holder_pid, fixture::k_holder_comm, {"/dev/nvidia0"});
    auto r = run_on(t, {"--json", "bind", "--all-gpus", "--dry-run"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out);
    EXPECT_EQ(j["selection"]["addresses"].size(), 7u);
    ASSERT_EQ(j["selection"]["left_out"].size(), 1u);
    const std::string why = j["selection"]["left_out"][0];
    EXPECT_NE(why.find("nvidia-persistenced"), std::string::npos) << why;
}

TEST(Fabric, SelectionsThatNameNothingAreErrorsAndChangeNothing) {
    auto none = run_on(test::shared_host("seed_after"), {"bind", "--with-nvswitches"});
    EXPECT_EQ(none.exit_code, 1);
    EXPECT_NE(none.err.find("no NVSwitch"), std::string::npos) << none.err;
    // IOMMU off: no GPU can go; the cause is named.
    auto off = run_on(test::shared_host("seed_before"), {"bind", "--all-gpus"});
    EXPECT_EQ(off.exit_code, 1);
    EXPECT_NE(off.err.find("no NVIDIA GPU can go"), std::string::npos) << off.err;
    EXPECT_NE(off.err.find("intel_iommu=off"), std::string::npos) << off.err;
}

TEST(Fabric, NvidiaSmiFabricSectionsAreRead) {
    const std::string q = "==============NVSMI LOG==============\r\n"
                          "\r\n"
                          "Attached GPUs                             : 3\r\n"
                          "GPU 00000000:18:00.0\r\n"
                          "    Product Name                          : NVIDIA H100 80GB HBM3\r\n"
                          "    Fabric\r\n"
                          "        State                             : Completed\r\n"
                          "        Status                            : Success\r\n"
                          "    Serial Number                         : 1650123456789\r\n"
                          "    State                                 : not the fabric's\r\n"
                          "GPU 00000000:19:00.0\r\n"
                          "    Fabric\r\n"
                          "        State                             : In Progress\r\n"
                          "        Status                            : N/A\r\n"
                          "GPU 00000000:3A:00.0\r\n"
                          "    Product Name                          : NVIDIA H100 PCIe\r\n";
    auto s = vm::parse_fabric_states(q);
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0].bus_id, "00000000:18:00.0");
    EXPECT_EQ(s[0].state, "Completed");
    EXPECT_EQ(s[0].status, "Success");
    EXPECT_TRUE(s[0].ready());
    EXPECT_EQ(s[1].state, "In Progress");
    EXPECT_FALSE(s[1].ready());
    EXPECT_TRUE(vm::parse_fabric_states("").empty());
}

TEST(Fabric, ExplainTiesCudaError802ToTheFabricHere) {
    auto r = run_on(test::shared_host("dgx"),
                    {"--json", "explain", "RuntimeError: CUDA error: system not yet initialized"});
    json j = json::parse(r.out);
    ASSERT_FALSE(j["explanations"].empty()) << r.out;
    const json& e = j["explanations"][0];
    EXPECT_EQ(e["id"], "cuda_system_not_ready");
    EXPECT_NE(e.dump().find("4 NVSwitches"), std::string::npos) << e.dump();
    EXPECT_NE(e.dump().find("--all-gpus --with-nvswitches"), std::string::npos) << e.dump();
}
