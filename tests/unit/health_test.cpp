// pci/health.cpp and cli/health_view.cpp: reset methods, PCIe link, BAR
// fit, ACS on the bridges above a device, AER counters and power state, on
// the DGX fixture (one degraded link, one GPU with AER errors), and what is
// unknown when the files are missing or config space is cut at 256 bytes.

#include "cli/health_view.hpp"
#include "cli_run.hpp"
#include "fake_kernel.hpp"
#include "fixture/fixture.hpp"
#include "host/host.hpp"
#include "host/snapshot.hpp"
#include "host/system.hpp"
#include "pci/health.hpp"
#include "support.hpp"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <gtest/gtest.h>

using namespace vfioctl;
using fixture::DeviceSpec;
using fixture::HostTree;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t GiB = 1ull << 30;
constexpr uint64_t MiB = 1ull << 20;

// The model health_view needs: the inventory and the CPU of the tree at root.
services::HostModel model_of(const fs::path& root) {
    services::HostModel m;
    host::Host h(root);
    auto inv = pci::enumerate(h);
    EXPECT_TRUE(inv.ok()) << inv.error().describe();
    if (inv) m.inv = std::move(inv).value();
    if (auto c = h.read("/proc/cpuinfo")) m.facts.cpu = host::parse_cpuinfo(*c);
    return m;
}

pci::DeviceHealth health_of(const fs::path& root, const char* addr) {
    host::Host h(root);
    auto m = model_of(root);
    const auto* d = m.inv.find(pci::PciAddress::parse(addr).value());
    EXPECT_NE(d, nullptr) << addr;
    return d ? pci::read_health(h, m.inv, *d) : pci::DeviceHealth{};
}

// A root port and an H100 behind it, with the health files the caller sets.
HostTree small_host(const std::function<void(DeviceSpec& port, DeviceSpec& gpu)>& adjust,
                    int phys_bits = 46) {
    HostTree t;
    t.set_kernel("6.8.0-45-generic");
    fixture::CpuSpec cpu;
    cpu.phys_bits = phys_bits;
    t.set_cpu(cpu);
    DeviceSpec port;
    port.addr = "0000:00:01.0";
    port.vendor = 0x8086;
    port.device = 0x2030;
    port.class_code = 0x060400;
    port.port = fixture::PortType::root_port;
    port.secondary_bus = 0x01;
    port.subordinate_bus = 0x01;
    port.ext_caps = {fixture::ExtCap::aer, fixture::ExtCap::acs};
    port.driver = "pcieport";
    DeviceSpec gpu;
    gpu.addr = "0000:01:00.0";
    gpu.parent = port.addr;
    gpu.vendor = 0x10de;
    gpu.device = 0x2336;
    gpu.class_code = 0x030200;
    gpu.bars = {{0, 16 * MiB, false, false, false},
                {1, 128 * GiB, true, true, false},
                {3, 32 * MiB, true, true, false}};
    gpu.msix_vectors = 9;
    gpu.ext_caps = {fixture::ExtCap::aer, fixture::ExtCap::dsn};
    gpu.driver = "nvidia";
    adjust(port, gpu);
    t.add_device(port);
    t.add_device(gpu);
    return t;
}

} // namespace

TEST(HealthParse, LinkSpeedsAndAerCounters) {
    EXPECT_EQ(pci::parse_link_speed("32.0 GT/s PCIe"), 32000u);
    EXPECT_EQ(pci::parse_link_speed("2.5 GT/s PCIe"), 2500u);
    EXPECT_EQ(pci::parse_link_speed("8 GT/s"), 8000u);
    EXPECT_EQ(pci::parse_link_speed("Unknown"), std::nullopt);
    EXPECT_EQ(pci::parse_link_speed("Unknown speed"), std::nullopt);
    EXPECT_EQ(pci::parse_link_speed(""), std::nullopt);

    auto c = pci::parse_aer("RxErr 12\nBadTLP 0\nBadDLLP 3\nTOTAL_ERR_COR 15\n");
    EXPECT_EQ(c.total, 15u);
    ASSERT_EQ(c.nonzero.size(), 2u);
    EXPECT_EQ(c.nonzero[0].name, "RxErr");
    EXPECT_EQ(c.nonzero[1].count, 3u);
    EXPECT_EQ(pci::parse_aer("garbage\n").total, std::nullopt);
    EXPECT_EQ(pci::parse_aer("").total, std::nullopt);
}

TEST(HealthParse, LinkBelowItsMaximumIsDegradedUnlessThePortLimitsIt) {
    pci::PcieLink l;
    l.speed_mts = 16000;
    l.max_speed_mts = 32000;
    l.width = 16;
    l.max_width = 16;
    pci::assess_link(l);
    EXPECT_EQ(l.state, pci::LinkState::degraded);
    EXPECT_TRUE(l.speed_below);
    EXPECT_FALSE(l.width_below);
    // A Gen5 device in a Gen4 slot runs at the slot's best.
    l.port_max_speed_mts = 16000;
    pci::assess_link(l);
    EXPECT_EQ(l.state, pci::LinkState::full);
    l.width.reset();
    pci::assess_link(l);
    EXPECT_EQ(l.state, pci::LinkState::unknown);
}

TEST(Health, DgxGpusTypedFacts) {
    const auto& t = test::shared_host("dgx");
    const auto bad = health_of(t.root(), fixture::k_dgx_degraded_gpu);
    EXPECT_EQ(bad.link.state, pci::LinkState::degraded);
    EXPECT_TRUE(bad.link.width_below);
    EXPECT_FALSE(bad.link.speed_below);
    EXPECT_EQ(bad.link.width, 8u);
    EXPECT_EQ(bad.link.max_width, 16u);
    ASSERT_TRUE(bad.reset.methods);
    EXPECT_EQ(*bad.reset.methods, (std::vector<std::string>{"flr", "bus"}));
    EXPECT_FALSE(bad.reset.none());
    EXPECT_EQ(bad.bar64_prefetchable_bytes, 128 * GiB + 32 * MiB);
    EXPECT_EQ(bad.aer.total(), 0u);
    EXPECT_EQ(bad.d3cold_allowed, true);
    EXPECT_EQ(bad.power, pci::PowerState::d0);
    // Downstream port, upstream port, root port; ACS on the two that need it.
    EXPECT_TRUE(bad.path_complete);
    ASSERT_EQ(bad.bridges.size(), 3u);
    EXPECT_EQ(bad.bridges[0].role, pci::PortRole::downstream_port);
    EXPECT_EQ(bad.bridges[0].presence, pci::AcsPresence::present);
    EXPECT_TRUE(bad.bridges[0].isolates());
    EXPECT_TRUE(bad.bridges[0].redirects_p2p());
    EXPECT_TRUE(bad.bridges[0].capable.upstream_forwarding);
    EXPECT_EQ(bad.bridges[1].role, pci::PortRole::upstream_port);
    EXPECT_EQ(bad.bridges[1].presence, pci::AcsPresence::absent);
    EXPECT_FALSE(bad.bridges[1].needs_acs());
    EXPECT_EQ(bad.bridges[2].role, pci::PortRole::root_port);
    EXPECT_TRUE(bad.bridges[2].isolates());

    const auto aer = health_of(t.root(), fixture::k_dgx_aer_gpu);
    EXPECT_EQ(aer.link.state, pci::LinkState::full);
    EXPECT_EQ(aer.aer.correctable.total, 15u);
    EXPECT_EQ(aer.aer.nonfatal.total, 1u);
    EXPECT_EQ(aer.aer.fatal.total, 0u);
    EXPECT_EQ(aer.aer.total(), 16u);
    ASSERT_EQ(aer.aer.correctable.nonzero.size(), 2u);
    EXPECT_EQ(aer.aer.correctable.nonzero[0].name, "RxErr");
    EXPECT_EQ(aer.aer.correctable.nonzero[0].count, 12u);
}

TEST(Health, StatusAndGroupsJsonOnTheDgx) {
    const auto& o = test::shared_run("dgx", {"status", "--json"});
    json j = json::parse(o.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << o.err;
    int healthy = 0;
    for (const auto& g : j["gpus"]) {
        if (g["id"] != "10de:2330") continue;
        const json& h = g["health"];
        ASSERT_TRUE(h.is_object()) << g.dump();
        EXPECT_EQ(h["bars"]["fits"], true) << h["bars"].dump();
        EXPECT_EQ(h["bars"]["prefetchable_64bit_bytes"], 128 * GiB + 32 * MiB);
        EXPECT_EQ(h["bars"]["host_phys_bits"], 46);
        EXPECT_EQ(h["reset"]["methods"], json::array({"flr", "bus"}));
        EXPECT_EQ(h["power"]["state"], "D0");
        EXPECT_EQ(h["unknown"], json::array()) << h["unknown"].dump();
        for (const auto& b : h["acs"]["bridges"])
            if (b["needs_acs"] == true) {
                EXPECT_EQ(b["isolates"], true) << b.dump();
                EXPECT_EQ(b["p2p_redirected"], true) << b.dump();
            }
        if (g["address"] == fixture::k_dgx_degraded_gpu) {
            EXPECT_EQ(h["link"]["state"], "degraded");
            EXPECT_EQ(h["link"]["width"], 8);
            ASSERT_EQ(h["problems"].size(), 1u);
            EXPECT_NE(h["problems"][0].get<std::string>().find("degraded"), std::string::npos);
        } else if (g["address"] == fixture::k_dgx_aer_gpu) {
            EXPECT_EQ(h["aer"]["total"], 16);
            EXPECT_EQ(h["aer"]["correctable"]["nonzero"][0]["name"], "RxErr");
            ASSERT_EQ(h["problems"].size(), 1u);
            EXPECT_NE(h["problems"][0].get<std::string>().find("AER"), std::string::npos);
        } else {
            EXPECT_EQ(h["link"]["state"], "full");
            EXPECT_EQ(h["problems"], json::array()) << g["address"];
            ++healthy;
        }
    }
    EXPECT_EQ(healthy, 6);

    const auto& text = test::shared_run("dgx", {"status"});
    EXPECT_NE(text.out.find("x8 at 32.0 GT/s of x16 at 32.0 GT/s: DEGRADED"), std::string::npos)
        << text.out;
    EXPECT_NE(text.out.find("problem:      AER logged 15 correctable, 1 non-fatal"),
              std::string::npos);

    const auto& g =
        test::shared_run("dgx", {"groups", "--device", fixture::k_dgx_degraded_gpu, "--json"});
    json gj = json::parse(g.out, nullptr, false);
    ASSERT_EQ(gj["groups"].size(), 1u) << g.out;
    const json& dev = gj["groups"][0]["devices"][0];
    EXPECT_EQ(dev["health"]["link"]["state"], "degraded");
    // A NIC: BARs are not read for non-GPUs, so their fit is unknown.
    const auto& nic = test::shared_run("dgx", {"groups", "--device", "15b3:1021", "--json"});
    json nj = json::parse(nic.out, nullptr, false);
    ASSERT_FALSE(nj["groups"].empty()) << nic.out;
    const json& nh = nj["groups"][0]["devices"][0]["health"];
    EXPECT_EQ(nh["bars"]["prefetchable_64bit_bytes"], nullptr);
    EXPECT_NE(std::find(nh["unknown"].begin(), nh["unknown"].end(), "bar_fit"),
              nh["unknown"].end());
}

// Missing files are unknown, never the harmless value; config space cut at
// 256 bytes makes the bridge's ACS unknown, not absent.
TEST(Health, WhatCannotBeReadIsUnknown) {
    HostTree t = small_host([](DeviceSpec& port, DeviceSpec&) { port.config_bytes = 256; });
    const auto h = health_of(t.root(), "0000:01:00.0");
    EXPECT_FALSE(h.reset.methods);
    EXPECT_FALSE(h.reset.none());
    EXPECT_EQ(h.link.state, pci::LinkState::unknown);
    EXPECT_EQ(h.aer.total(), std::nullopt);
    EXPECT_EQ(h.d3cold_allowed, std::nullopt);
    EXPECT_EQ(h.power, pci::PowerState::unknown);
    ASSERT_EQ(h.bridges.size(), 1u);
    EXPECT_EQ(h.bridges[0].role, pci::PortRole::root_port);
    EXPECT_EQ(h.bridges[0].presence, pci::AcsPresence::unknown);
    EXPECT_FALSE(h.bridges[0].isolates());

    auto m = model_of(t.root());
    const auto* d = m.inv.find(pci::PciAddress::parse("0000:01:00.0").value());
    ASSERT_NE(d, nullptr);
    json j = cli::health_json(cli::health_view(host::Host(t.root()), m, *d));
    EXPECT_EQ(j["reset"]["methods"], nullptr);
    EXPECT_EQ(j["link"]["state"], "unknown");
    EXPECT_EQ(j["acs"]["bridges"][0]["acs"], "unknown");
    EXPECT_EQ(j["acs"]["bridges"][0]["isolates"], nullptr);
    EXPECT_EQ(j["aer"]["total"], nullptr);
    EXPECT_EQ(j["power"]["d3cold_allowed"], nullptr);
    EXPECT_EQ(j["problems"], json::array());
    for (const char* u : {"reset_method", "link", "acs", "aer", "d3cold_allowed", "power_state"})
        EXPECT_NE(std::find(j["unknown"].begin(), j["unknown"].end(), u), j["unknown"].end()) << u;
}

// An empty reset_method is "no reset method", a port without ACS is
// flagged, a speed below the maximum is degraded, and BARs beyond the host's
// address width do not fit.
TEST(Health, NoResetNoAcsSlowLinkAndBarsBeyondTheAddressWidth) {
    HostTree t = small_host(
        [](DeviceSpec& port, DeviceSpec& gpu) {
            port.ext_caps = {fixture::ExtCap::aer};
            port.link = fixture::LinkSpec{};
            gpu.reset_method = "";
            gpu.link = fixture::LinkSpec{};
            gpu.link->speed = "16.0 GT/s PCIe";
            gpu.power_state = "D3hot";
            gpu.d3cold_allowed = false;
        },
        39);
    auto m = model_of(t.root());
    const auto* d = m.inv.find(pci::PciAddress::parse("0000:01:00.0").value());
    ASSERT_NE(d, nullptr);
    const auto v = cli::health_view(host::Host(t.root()), m, *d);
    EXPECT_TRUE(v.facts.reset.none());
    EXPECT_EQ(v.facts.link.state, pci::LinkState::degraded);
    EXPECT_TRUE(v.facts.link.speed_below);
    EXPECT_EQ(v.facts.bridges.at(0).presence, pci::AcsPresence::absent);
    EXPECT_EQ(v.facts.power, pci::PowerState::d3hot);
    EXPECT_EQ(v.facts.d3cold_allowed, false);
    ASSERT_TRUE(v.fit);
    EXPECT_EQ(v.fit->fits, false);
    EXPECT_EQ(v.fit->host_phys_bits, 39);
    EXPECT_GT(v.fit->address_bits, 39);
    auto has = [&](const std::string& s) {
        for (const auto& p : v.problems)
            if (p.find(s) != std::string::npos) return true;
        return false;
    };
    EXPECT_TRUE(has("no reset method"));
    EXPECT_TRUE(has("low-power state"));
    EXPECT_TRUE(has("no ACS"));
    EXPECT_TRUE(has("cannot map them"));
    EXPECT_EQ(v.problems.size(), 4u);

    // Without "address sizes" in cpuinfo the fit is unknown.
    HostTree u = small_host([](DeviceSpec&, DeviceSpec&) {}, 0);
    auto mu = model_of(u.root());
    const auto* du = mu.inv.find(pci::PciAddress::parse("0000:01:00.0").value());
    ASSERT_NE(du, nullptr);
    const auto vu = cli::health_view(host::Host(u.root()), mu, *du);
    ASSERT_TRUE(vu.fit);
    EXPECT_EQ(vu.fit->fits, std::nullopt);
}

// A snapshot records every file health reads: the facts on the snapshot
// equal those on the host it was taken from.
TEST(Health, SnapshotReproducesTheFacts) {
    const auto& t = test::shared_host("dgx");
    fixture::TempDir out;
    auto s = host::snapshot(host::Host(t.root()), out.path / "snap");
    ASSERT_TRUE(s.ok()) << s.error().describe();
    const fs::path snap = out.path / "snap";
    for (const char* addr : {fixture::k_dgx_degraded_gpu, fixture::k_dgx_aer_gpu}) {
        SCOPED_TRACE(addr);
        auto mo = model_of(t.root());
        auto ms = model_of(snap);
        const auto a = pci::PciAddress::parse(addr).value();
        ASSERT_NE(mo.inv.find(a), nullptr);
        ASSERT_NE(ms.inv.find(a), nullptr);
        json want = cli::health_json(cli::health_view(host::Host(t.root()), mo, *mo.inv.find(a)));
        json got = cli::health_json(cli::health_view(host::Host(snap), ms, *ms.inv.find(a)));
        EXPECT_EQ(got, want);
        EXPECT_EQ(got["unknown"], json::array()) << got.dump();
        EXPECT_TRUE(fs::exists(snap / fs::path(t.device_path(addr)).relative_path() /
                               "aer_dev_correctable"));
    }
}

namespace {

// The seed's GPU with a reset method and zeroed AER counters.
void add_health_files(HostTree& t) {
    const std::string dev = t.device_path(fixture::k_seed_gpu);
    t.write(dev + "/reset_method", "flr bus\n");
    t.write(dev + "/aer_dev_correctable", "RxErr 0\nTOTAL_ERR_COR 0\n");
    t.write(dev + "/aer_dev_nonfatal", "CmpltTO 0\nTOTAL_ERR_NONFATAL 0\n");
    t.write(dev + "/aer_dev_fatal", "DLP 0\nTOTAL_ERR_FATAL 0\n");
}

} // namespace

// unbind checks each device it gave back: healthy, new AER errors, wedged,
// unknown.
TEST(HealthAfterUnbind, HealthyNewAerErrorsWedgedAndUnknown) {
    fixture::TempDir run_base;
    const auto paths = test::test_paths(run_base);
    HostTree t = fixture::seed_after();
    add_health_files(t);
    fake::FakeKernel k(t);
    ASSERT_EQ(test::run_cli(k, {"bind", fixture::k_seed_gpu}, paths).exit_code, 0);
    auto ok = test::run_cli(k, {"--json", "unbind", fixture::k_seed_gpu}, paths);
    ASSERT_EQ(ok.exit_code, 0) << ok.err;
    json j = ok.json();
    ASSERT_EQ(j["health_after"].size(), 1u) << ok.out;
    EXPECT_EQ(j["health_after"][0]["state"], "healthy") << ok.out;
    EXPECT_EQ(j["health_after"][0]["driver"], "nvidia");
    EXPECT_EQ(j["health_after"][0]["new_aer_errors"], 0);

    // The driver's probe on the way back logs AER errors.
    ASSERT_EQ(test::run_cli(k, {"bind", fixture::k_seed_gpu}, paths).exit_code, 0);
    k.errors_on_return(fixture::k_seed_gpu, 2);
    auto errs = test::run_cli(k, {"unbind", fixture::k_seed_gpu}, paths);
    ASSERT_EQ(errs.exit_code, 0) << errs.err;
    EXPECT_NE(errs.out.find("warning: 8a:00.0 did not come back healthy: 2 new AER error(s)"),
              std::string::npos)
        << errs.out;
    ASSERT_EQ(test::run_cli(k, {"bind", fixture::k_seed_gpu}, paths).exit_code, 0);
    auto again = test::run_cli(k, {"--json", "unbind", fixture::k_seed_gpu}, paths);
    json aj = again.json();
    ASSERT_EQ(aj["health_after"].size(), 1u) << again.out;
    // Counted from the reading before this unbind: the earlier errors are old.
    EXPECT_EQ(aj["health_after"][0]["new_aer_errors"], 0) << again.out;

    // Given back and fallen off the bus: wedged, reboot.
    ASSERT_EQ(test::run_cli(k, {"bind", fixture::k_seed_gpu}, paths).exit_code, 0);
    k.wedge_on_return(fixture::k_seed_gpu);
    auto wedged = test::run_cli(k, {"--json", "unbind", fixture::k_seed_gpu}, paths);
    EXPECT_EQ(wedged.exit_code, 1);
    json wj = wedged.json();
    ASSERT_FALSE(wj.is_null()) << wedged.out << wedged.err;
    ASSERT_EQ(wj["health_after"].size(), 1u) << wedged.out;
    EXPECT_EQ(wj["health_after"][0]["state"], "wedged") << wedged.out;
    EXPECT_EQ(wj["health_after"][0]["responds"], false);
    EXPECT_NE(wj.value("hint", std::string()).find("reboot the host"), std::string::npos)
        << wedged.out;
    auto wedged_text = test::run_cli(k, {"unbind", fixture::k_seed_gpu}, paths);
    EXPECT_NE(wedged_text.out.find("warning: 8a:00.0 looks wedged: its config space reads all "
                                   "ones; it did not come back from the VM and needs a host "
                                   "reboot"),
              std::string::npos)
        << wedged_text.out << wedged_text.err;

    // Without AER counters (an older kernel) health after is unknown, not healthy.
    HostTree plain = fixture::seed_after();
    fake::FakeKernel pk(plain);
    ASSERT_EQ(test::run_cli(pk, {"bind", fixture::k_seed_gpu}, paths).exit_code, 0);
    auto unknown = test::run_cli(pk, {"unbind", fixture::k_seed_gpu}, paths);
    EXPECT_NE(unknown.out.find("note: 8a:00.0: whether it came back healthy is unknown"),
              std::string::npos)
        << unknown.out;
}

// A GPU whose config space reads all ones fell off the bus: wedged, reboot.
TEST(HealthAfterUnbind, AllOnesConfigIsWedged) {
    HostTree t = small_host([](DeviceSpec&, DeviceSpec& gpu) {
        gpu.aer = fixture::AerSpec{};
        gpu.reset_method = "flr";
    });
    const auto a = pci::PciAddress::parse("0000:01:00.0").value();
    host::Host h(t.root());
    const auto before = pci::read_aer(h, a);
    EXPECT_EQ(pci::check_return(h, a, before, std::string("nvidia")).state,
              pci::ReturnState::healthy);
    EXPECT_EQ(pci::check_return(h, a, before, std::string("amdgpu")).state,
              pci::ReturnState::unhealthy);
    t.write(t.device_path("0000:01:00.0") + "/config", std::string(256, '\xff'));
    const auto r = pci::check_return(h, a, before, std::string("nvidia"));
    EXPECT_EQ(r.state, pci::ReturnState::wedged);
    EXPECT_EQ(r.responds, false);
    EXPECT_NE(cli::return_text(r).find("needs a host reboot"), std::string::npos);
    EXPECT_EQ(cli::return_json(r)["state"], "wedged");
}
