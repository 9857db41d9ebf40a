// NUMA facts (host/numa.cpp), VM placement (vm/placement.cpp) and their
// views in 'status' and the QEMU argv, on the DGX fixture: 8 H100s, four on
// node 0 and four on node 1; node 1 has 8192 free 2 MiB pages and 4 of 8
// 1 GiB pages free; node 0 none.

#include "cli_run.hpp"
#include "fake_kernel.hpp"
#include "fixture/fixture.hpp"
#include "host/numa.hpp"
#include "host/snapshot.hpp"
#include "support.hpp"
#include "vm/argv.hpp"
#include "vm/pinning.hpp"
#include "vm/placement.hpp"
#include "vm/profile.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

using namespace vfioctl;
using fixture::HostTree;
using nlohmann::json;

namespace {

constexpr const char* k_gpu_node0 = "0000:18:00.0";
constexpr const char* k_gpu_node1 = "0000:9a:00.0";

const std::string node1_cpus = "56-111,168-223";

vm::PlacementFacts facts_for(const HostTree& t, const std::vector<std::string>& gpus) {
    host::Tree tree(t.root());
    vm::PlacementFacts f;
    f.numa = host::read_numa(tree);
    for (const auto& g : gpus)
        f.devices.push_back(host::read_device_numa(tree, g));
    return f;
}

vm::PlacementPlan plan_ok(uint64_t mib, const vm::PlacementFacts& f,
                          vm::HugePagesWish huge = vm::HugePagesWish::automatic,
                          vm::NumaWish numa = {}, vm::PinWish pin = std::nullopt) {
    auto p = vm::plan_placement(mib, numa, huge, pin, f);
    EXPECT_TRUE(p.ok()) << p.error().describe();
    return p ? *p : vm::PlacementPlan{};
}

bool has(const std::string& text, const std::string& needle) {
    return text.find(needle) != std::string::npos;
}

} // namespace

TEST(Numa, Cpulists) {
    EXPECT_EQ(host::parse_cpulist("0-3,8,10-11\n"), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
    EXPECT_EQ(host::parse_cpulist(""), std::vector<int>{});
    EXPECT_EQ(host::parse_cpulist("3-1"), std::nullopt);
    EXPECT_EQ(host::parse_cpulist("a"), std::nullopt);
    EXPECT_EQ(host::format_cpulist({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
}

TEST(Numa, ReadsTheDgxNodes) {
    const auto& t = test::shared_host("dgx");
    auto f = host::read_numa(host::Tree(t.root()));
    ASSERT_TRUE(f.nodes_known);
    ASSERT_EQ(f.nodes.size(), 2u);
    ASSERT_TRUE(f.nodes[1].cpus);
    EXPECT_EQ(host::format_cpulist(*f.nodes[1].cpus), node1_cpus);
    EXPECT_EQ(f.nodes[1].mem_free_kib, 1000000000u);
    ASSERT_EQ(f.nodes[1].hugepages.size(), 2u);
    EXPECT_EQ(f.nodes[1].hugepages[0].size_kib, 2048u);
    EXPECT_EQ(f.nodes[1].hugepages[0].free, 8192u);
    EXPECT_EQ(f.nodes[1].hugepages[1].size_kib, 1048576u);
    EXPECT_EQ(f.nodes[1].hugepages[1].free, 4u);
    ASSERT_EQ(f.hugetlb_mounts.size(), 2u);
    EXPECT_EQ(f.hugetlb_mounts[0].path, "/dev/hugepages");
    EXPECT_EQ(f.hugetlb_mounts[0].page_kib, 2048u);
    EXPECT_EQ(f.hugetlb_mounts[1].page_kib, 1048576u);
    EXPECT_TRUE(f.memlock.known);
    EXPECT_EQ(f.memlock.soft_bytes, 8u << 20);
    EXPECT_EQ(f.memlock.cap_ipc_lock, false);
    auto g = host::read_device_numa(host::Tree(t.root()), k_gpu_node1);
    EXPECT_EQ(g.affinity, host::NumaAffinity::node);
    EXPECT_EQ(g.node, 1);
    ASSERT_TRUE(g.local_cpus);
    EXPECT_EQ(host::format_cpulist(*g.local_cpus), node1_cpus);
}

// Missing facts are unknown, never "node 0" or "no NUMA".
TEST(Numa, MissingFactsAreUnknown) {
    HostTree t = fixture::seed_after();
    t.remove(t.device_path(fixture::k_seed_gpu) + "/numa_node");
    auto f = host::read_numa(host::Tree(t.root()));
    EXPECT_FALSE(f.nodes_known);
    EXPECT_FALSE(f.memlock.known);
    auto g = host::read_device_numa(host::Tree(t.root()), fixture::k_seed_gpu);
    EXPECT_EQ(g.affinity, host::NumaAffinity::unknown);
    EXPECT_FALSE(g.local_cpus);
}

TEST(Numa, StatusJsonShowsTheFacts) {
    const auto& o = test::shared_run("dgx", {"--json", "status"});
    const json j = test::json_of(o);
    ASSERT_TRUE(j.contains("numa")) << o.out;
    const json& n = j["numa"];
    EXPECT_EQ(n["nodes_known"], true);
    ASSERT_EQ(n["nodes"].size(), 2u);
    EXPECT_EQ(n["nodes"][1]["cpus"], node1_cpus);
    EXPECT_EQ(n["nodes"][1]["hugepages"][0]["size_kib"], 2048);
    EXPECT_EQ(n["nodes"][1]["hugepages"][0]["free"], 8192);
    EXPECT_EQ(n["nodes"][1]["hugepages"][1]["free"], 4);
    EXPECT_EQ(n["nodes"][0]["hugepages"][0]["total"], 0);
    bool seen = false;
    for (const auto& g : n["gpus"])
        if (g["address"] == k_gpu_node1) {
            seen = true;
            EXPECT_EQ(g["numa_node"], 1);
            EXPECT_EQ(g["affinity"], "node");
            EXPECT_EQ(g["local_cpus"], node1_cpus);
        }
    EXPECT_TRUE(seen) << n["gpus"].dump();
    EXPECT_GE(n["gpus"].size(), 8u); // the H100s and the BMC's VGA
    EXPECT_EQ(n["memlock"]["limit_bytes"], 8 << 20);
    EXPECT_EQ(n["memlock"]["verdict"], "too_low");
    EXPECT_TRUE(has(n["memlock"]["text"].get<std::string>(), "ulimit -l unlimited"));
    EXPECT_TRUE(has(n["memlock"]["text"].get<std::string>(), "CAP_IPC_LOCK"));

    const auto& text = test::shared_run("dgx", {"status"});
    EXPECT_TRUE(has(text.out, "\nNUMA\n")) << text.out;
    EXPECT_TRUE(has(text.out, "  node 1: CPUs " + node1_cpus)) << text.out;
    EXPECT_TRUE(has(text.out, "GPU 0000:9a:00.0: node 1, local CPUs " + node1_cpus)) << text.out;
    EXPECT_TRUE(has(text.out, "locked memory: TOO LOW")) << text.out;
}

// A host without node directories, numa_node or a memlock record: unknown.
TEST(Numa, StatusJsonSaysUnknown) {
    const json j = test::json_of(test::shared_run("seed_after", {"--json", "status"}));
    const json& n = j["numa"];
    EXPECT_EQ(n["nodes_known"], false);
    EXPECT_EQ(n["memlock"]["verdict"], "unknown");
    EXPECT_TRUE(n["memlock"]["limit_bytes"].is_null());
}

TEST(Numa, MemlockVerdicts) {
    host::MemlockLimit m;
    EXPECT_EQ(vm::judge_memlock(m, 2048).kind, vm::MemlockVerdict::unknown);
    m.known = true;
    EXPECT_EQ(vm::judge_memlock(m, 2048).kind, vm::MemlockVerdict::enough); // unlimited
    m.soft_bytes = 64u << 10;
    EXPECT_EQ(vm::judge_memlock(m, 2048).kind, vm::MemlockVerdict::too_low);
    m.cap_ipc_lock = true;
    EXPECT_EQ(vm::judge_memlock(m, 2048).kind, vm::MemlockVerdict::enough);
    m.cap_ipc_lock = false;
    m.soft_bytes = 4ull << 30;
    EXPECT_EQ(vm::judge_memlock(m, 2048).kind, vm::MemlockVerdict::enough);
}

// Every file the NUMA facts come from is in a snapshot, byte for byte.
TEST(Numa, SnapshotRecordsEveryFileRead) {
    const auto& t = test::shared_host("dgx");
    fixture::TempDir out;
    const auto snap = out.path / "snap";
    auto s = host::snapshot(host::Host(t.root()), snap);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    const host::Tree src(t.root()), copy(snap);
    auto files = host::numa_files(src);
    for (const char* gpu : {k_gpu_node0, k_gpu_node1})
        for (const char* a : {"/numa_node", "/local_cpulist"})
            files.push_back(*src.resolve(std::string("/sys/bus/pci/devices/") + gpu) + a);
    EXPECT_GT(files.size(), 15u);
    for (const auto& f : files) {
        SCOPED_TRACE(f);
        auto want = src.read(f);
        ASSERT_TRUE(want.ok());
        auto got = copy.read(f);
        ASSERT_TRUE(got.ok()) << got.error().describe();
        EXPECT_EQ(*got, *want);
    }
    auto a = host::read_numa(src);
    auto b = host::read_numa(copy);
    EXPECT_EQ(b.nodes.size(), a.nodes.size());
    EXPECT_EQ(b.hugetlb_mounts.size(), a.hugetlb_mounts.size());
    EXPECT_EQ(b.memlock.soft_bytes, a.memlock.soft_bytes);
}

// auto, GPU on node 1, 2 GiB: two of the four free 1 GiB pages on node 1,
// and the vCPUs on node 1's CPUs.
TEST(Placement, AutoBindsToTheGpusNodeOn1GPages) {
    auto f = facts_for(test::shared_host("dgx"), {k_gpu_node1});
    auto p = plan_ok(2048, f);
    ASSERT_EQ(p.node, 1);
    EXPECT_EQ(p.backend, vm::MemoryBackend::file);
    EXPECT_EQ(p.page_kib, 1048576u);
    EXPECT_EQ(p.mem_path, "/dev/hugepages1G");
    EXPECT_EQ(host::format_cpulist(p.pin_cpus), node1_cpus);
    EXPECT_TRUE(p.fallbacks.empty());
    EXPECT_EQ(p.summary(), "RAM bound to NUMA node 1 (1 GiB huge pages from /dev/hugepages1G), "
                           "vCPUs pinned to CPUs " +
                               node1_cpus);

    vm::Profile prof;
    vm::LaunchSpec spec;
    spec.placement = p;
    const auto argv = vm::qemu_argv(prof, spec);
    auto at = [&](const std::string& flag, const std::string& value) {
        for (size_t i = 0; i + 1 < argv.size(); ++i)
            if (argv[i] == flag && argv[i + 1] == value) return true;
        return false;
    };
    EXPECT_TRUE(at("-machine", "q35,memory-backend=mem"));
    EXPECT_TRUE(at("-object", "memory-backend-file,id=mem,size=2048M,mem-path=/dev/hugepages1G,"
                              "host-nodes=1,policy=bind,prealloc=on"));
}

// 8 GiB does not fit the four free 1 GiB pages: 2 MiB pages, no fallback.
TEST(Placement, AutoTakes2MWhen1GAreTooFew) {
    auto f = facts_for(test::shared_host("dgx"), {k_gpu_node1});
    auto p = plan_ok(8192, f);
    ASSERT_EQ(p.node, 1);
    EXPECT_EQ(p.page_kib, 2048u);
    EXPECT_EQ(p.mem_path, "/dev/hugepages");
    // A size that is no whole number of 1 GiB pages goes to 2 MiB too.
    EXPECT_EQ(plan_ok(1536, f).page_kib, 2048u);
    // Asked for: 2M even where 1G would do.
    EXPECT_EQ(plan_ok(2048, f, vm::HugePagesWish::size_2m).page_kib, 2048u);
}

TEST(Placement, RefusesTooFewPagesAskedFor) {
    auto f = facts_for(test::shared_host("dgx"), {k_gpu_node1});
    auto p = vm::plan_placement(8192, {}, vm::HugePagesWish::size_1g, std::nullopt, f);
    ASSERT_FALSE(p.ok());
    EXPECT_TRUE(has(p.error().message, "4 free 1 GiB huge pages on node 1, 8 needed"))
        << p.error().message;
    EXPECT_TRUE(has(p.error().hint, "/sys/devices/system/node/node1/hugepages/"
                                    "hugepages-1048576kB/nr_hugepages"))
        << p.error().hint;
    // Node 0 has none reserved.
    auto g = facts_for(test::shared_host("dgx"), {k_gpu_node0});
    EXPECT_FALSE(vm::plan_placement(2048, {}, vm::HugePagesWish::size_2m, std::nullopt, g).ok());
    // A node that does not exist, and pinning with no node.
    EXPECT_FALSE(vm::plan_placement(2048, {vm::NumaWish::fixed, 7}, vm::HugePagesWish::automatic,
                                    std::nullopt, f)
                     .ok());
    EXPECT_FALSE(
        vm::plan_placement(2048, {vm::NumaWish::off, 0}, vm::HugePagesWish::automatic, true, f)
            .ok());
}

// Too few huge pages on the node: auto falls back to 4 KiB pages, still
// on node 1, and says why; on node 0 (none reserved) the same.
TEST(Placement, AutoFallsBackWithReason) {
    auto f = facts_for(test::shared_host("dgx"), {k_gpu_node1});
    auto p = plan_ok(32768, f);
    EXPECT_EQ(p.node, 1);
    EXPECT_EQ(p.backend, vm::MemoryBackend::ram);
    ASSERT_EQ(p.fallbacks.size(), 1u);
    EXPECT_EQ(p.fallbacks[0],
              "4 KiB pages because 8192 free 2 MiB huge pages on node 1, 16384 needed");
    EXPECT_TRUE(has(p.summary(), "RAM bound to NUMA node 1 (4 KiB pages)")) << p.summary();

    auto g = facts_for(test::shared_host("dgx"), {k_gpu_node0});
    auto q = plan_ok(2048, g);
    EXPECT_EQ(q.node, 0);
    EXPECT_EQ(q.backend, vm::MemoryBackend::ram);
    EXPECT_EQ(q.pin_cpus.size(), 112u);

    // GPUs on both nodes: nothing bound, and why.
    auto both = facts_for(test::shared_host("dgx"), {k_gpu_node0, k_gpu_node1});
    auto r = plan_ok(2048, both);
    EXPECT_FALSE(r.node);
    EXPECT_EQ(r.backend, vm::MemoryBackend::plain);
    EXPECT_TRUE(r.pin_cpus.empty());
    EXPECT_TRUE(has(r.summary(), "different nodes (0 and 1)")) << r.summary();
}

// A GPU whose numa_node cannot be read: auto binds nothing and says so;
// asking for its node explicitly still works, and -1 is "no affinity".
TEST(Placement, UnknownNumaNode) {
    HostTree t = fixture::dgx_host();
    t.remove(t.device_path(k_gpu_node1) + "/numa_node");
    auto f = facts_for(t, {k_gpu_node1});
    EXPECT_EQ(f.devices[0].affinity, host::NumaAffinity::unknown);
    auto p = plan_ok(2048, f);
    EXPECT_FALSE(p.node);
    EXPECT_EQ(p.backend, vm::MemoryBackend::plain);
    EXPECT_TRUE(has(p.summary(), "0000:9a:00.0's NUMA node is unknown")) << p.summary();
    EXPECT_EQ(plan_ok(2048, f, vm::HugePagesWish::automatic, {vm::NumaWish::fixed, 1}).node, 1);

    t.write(t.device_path(k_gpu_node1) + "/numa_node", "-1\n");
    auto g = facts_for(t, {k_gpu_node1});
    EXPECT_EQ(g.devices[0].affinity, host::NumaAffinity::none);
    EXPECT_TRUE(has(plan_ok(2048, g).summary(), "no NUMA affinity")) << plan_ok(2048, g).summary();

    // Unknown free memory on the node: 4 KiB binding falls back, never guesses.
    t.remove("/sys/devices/system/node/node0/meminfo");
    auto h = facts_for(t, {k_gpu_node0});
    auto q = plan_ok(2048, h);
    EXPECT_FALSE(q.node);
    EXPECT_TRUE(has(q.summary(), "node 0's free memory is unknown")) << q.summary();
    EXPECT_FALSE(vm::plan_placement(2048, {vm::NumaWish::fixed, 0}, vm::HugePagesWish::automatic,
                                    std::nullopt, h)
                     .ok());
}

TEST(Placement, OffAndNoPinning) {
    auto f = facts_for(test::shared_host("dgx"), {k_gpu_node1});
    auto p = plan_ok(2048, f, vm::HugePagesWish::off, {vm::NumaWish::off, 0});
    EXPECT_EQ(p.backend, vm::MemoryBackend::plain);
    EXPECT_FALSE(p.node);
    vm::LaunchSpec spec;
    spec.placement = p;
    const auto argv = vm::qemu_argv(vm::Profile{}, spec);
    EXPECT_EQ(std::find(argv.begin(), argv.end(), "-object"), argv.end());
    EXPECT_TRUE(plan_ok(2048, f, vm::HugePagesWish::automatic, {}, false).pin_cpus.empty());
}

TEST(Placement, ProfileKeys) {
    auto p = vm::parse_profile("numa = 1\nhugepages = \"1G\"\npin_vcpus = false\n", "x.toml", "x");
    ASSERT_TRUE(p.ok()) << p.error().describe();
    EXPECT_EQ(p->numa.kind, vm::NumaWish::fixed);
    EXPECT_EQ(p->numa.node, 1);
    EXPECT_EQ(p->hugepages, vm::HugePagesWish::size_1g);
    EXPECT_EQ(p->pin_vcpus, false);
    auto q = vm::parse_profile("numa = \"off\"\nhugepages = \"2m\"\n", "x.toml", "x");
    ASSERT_TRUE(q.ok()) << q.error().describe();
    EXPECT_EQ(q->numa.kind, vm::NumaWish::off);
    EXPECT_EQ(q->hugepages, vm::HugePagesWish::size_2m);
    EXPECT_FALSE(q->pin_vcpus);
    EXPECT_FALSE(vm::parse_profile("numa = -1\n", "x.toml", "x").ok());
    EXPECT_FALSE(vm::parse_profile("hugepages = \"4K\"\n", "x.toml", "x").ok());
    EXPECT_FALSE(vm::parse_profile("pin_vcpus = \"yes\"\n", "x.toml", "x").ok());
    auto d = vm::parse_profile("", "x.toml", "x");
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->numa.kind, vm::NumaWish::automatic);
    EXPECT_EQ(d->hugepages, vm::HugePagesWish::automatic);
}

TEST(Placement, VcpuThreadsFromQmp) {
    auto r = vm::parse_vcpu_threads(json::parse(
        R"([{"cpu-index":1,"thread-id":502,"qom-path":"/machine/unattached/device[1]"},
            {"cpu-index":0,"thread-id":501}])"));
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(*r, (std::vector<int>{501, 502}));
    EXPECT_FALSE(vm::parse_vcpu_threads(json::parse(R"([{"cpu-index":0}])")).ok());
    EXPECT_FALSE(vm::parse_vcpu_threads(json::parse("{}")).ok());
}

// With virtiofs the backend stays a shared memfd, on huge pages and bound
// when planned so.
TEST(Placement, VirtiofsMemfdCarriesThePlacement) {
    auto f = facts_for(test::shared_host("dgx"), {k_gpu_node1});
    vm::Profile prof;
    prof.share_host_root = true;
    vm::LaunchSpec spec;
    spec.virtiofs_socket = "/run/vfs.sock";
    spec.placement = plan_ok(8192, f);
    prof.memory_mib = 8192;
    EXPECT_EQ(vm::memory_backend(prof, spec),
              "memory-backend-memfd,id=mem,size=8192M,share=on,hugetlb=on,hugetlbsize=2M,"
              "host-nodes=1,policy=bind,prealloc=on");
    spec.placement = {};
    EXPECT_EQ(vm::memory_backend(prof, spec), "memory-backend-memfd,id=mem,size=8192M,share=on");
}

// 'vm start' with a wish the host cannot meet refuses before QEMU starts,
// and gives back the GPU it bound for the VM.
TEST(Placement, VmStartRefusesAnUnmetWish) {
    HostTree t = fixture::dgx_host();
    t.write("/boot/vmlinuz-test", "kernel");
    fake::FakeKernel k(t);
    fixture::TempDir run_base, dir;
    const services::Paths paths = test::test_paths(run_base);
    const std::string profile = (dir.path / "big.toml").string();
    std::ofstream(profile) << "memory = \"8G\"\nhugepages = \"1G\"\ngpus = [\"" << k_gpu_node1
                           << "\"]\n[boot]\nkernel = \"/boot/vmlinuz-test\"\n";
    auto r = test::run_cli(k, {"vm", "start", profile}, paths);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_TRUE(has(r.err, "vfioctl: error: hugepages = \"1G\" cannot be met: 4 free 1 GiB huge "
                           "pages on node 1, 8 needed"))
        << r.err;
    EXPECT_EQ(k.driver_of(k_gpu_node1), "nvidia");
    EXPECT_FALSE(std::filesystem::exists(paths.run_base + "/big"));
}
