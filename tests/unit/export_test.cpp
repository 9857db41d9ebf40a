// 'vfioctl export': the formats of fleet tools (fleet/export.hpp) on the
// seed's host before and after the reboot, with its GPU bound by the fake
// kernel, and on the DGX-class host with every GPU and NVSwitch on vfio-pci.

#include "cli_run.hpp"
#include "fake_kernel.hpp"
#include "fleet/export.hpp"

#include <gtest/gtest.h>
#include <regex>
#include <sstream>
#include <sys/stat.h>

using namespace vfioctl;
using fake::FakeKernel;
using fixture::HostTree;
using test::contains;
using test::run_cli;
namespace fs = std::filesystem;

namespace {

struct Export : ::testing::Test {
    fixture::TempDir run_base;
    services::Paths paths = test::test_paths(run_base);
};

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        out.push_back(l);
    return out;
}

// The NFD file's labels: name -> value; every non-comment line must be
// NAME=VALUE with a valid label name and value.
std::map<std::string, std::string> nfd_labels(const std::string& text) {
    std::map<std::string, std::string> labels;
    for (const auto& l : lines_of(text)) {
        if (l.empty() || l[0] == '#') continue;
        const auto eq = l.find('=');
        EXPECT_NE(eq, std::string::npos) << l;
        if (eq == std::string::npos) continue;
        const std::string name = l.substr(0, eq), value = l.substr(eq + 1);
        EXPECT_TRUE(fleet::valid_label_name(name)) << name;
        EXPECT_TRUE(fleet::valid_label_value(value)) << l;
        labels[name] = value;
    }
    return labels;
}

std::string label(const std::string& name) {
    return std::string(fleet::k_nfd_prefix) + name;
}

int count_of(const std::string& text, const std::string& needle) {
    int n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++n;
    return n;
}

fleet::Facts one_gpu(std::optional<std::string> model) {
    fleet::Facts f;
    f.version = "0.1.0";
    f.now = 1796090000;
    f.iommu_enabled = true;
    f.iommu_groups = 3;
    f.verdict = "will_work";
    f.passthrough_ready = true;
    fleet::Function g;
    g.address = "0000:8a:00.0";
    g.vendor = 0x10de;
    g.device = 0x2336;
    g.model = std::move(model);
    g.driver = "vfio-pci";
    g.iommu_group = 2;
    g.display = true;
    g.verdict = "will_work";
    f.gpus.push_back(g);
    f.on_vfio.push_back(g);
    return f;
}

} // namespace

TEST(LabelRules, NamesAndValuesAsKubernetesChecksThem) {
    for (const char* ok :
         {"a", "vfioctl.feature.node.kubernetes.io/gpus.10de-2330", "A_b-c.9", "example.com/x"})
        EXPECT_TRUE(fleet::valid_label_name(ok)) << ok;
    const std::string long_name(64, 'a');
    for (const std::string& bad :
         {std::string(""), std::string("-a"), std::string("a-"), std::string("a b"),
          std::string("Example.com/x"), std::string("/x"), std::string("a..b/x"), long_name,
          std::string("x/y/z"), std::string("é")})
        EXPECT_FALSE(fleet::valid_label_name(bad)) << bad;
    EXPECT_TRUE(fleet::valid_label_value(""));
    EXPECT_TRUE(fleet::valid_label_value("will_work_after"));
    EXPECT_FALSE(fleet::valid_label_value("a/b"));
    EXPECT_FALSE(fleet::valid_label_value(std::string(64, '1')));
}

TEST(KubevirtResource, TheNamesNvidiasDevicePluginGives) {
    EXPECT_EQ(fleet::kubevirt_resource("GH100 [H100 PCIe]", 0x2331), "nvidia.com/GH100_H100_PCIE");
    EXPECT_EQ(fleet::kubevirt_resource("TU104GL [Tesla T4]", 0x1eb8),
              "nvidia.com/TU104GL_TESLA_T4");
    // pci.ids writes some without the space: the bracket is dropped, not replaced.
    EXPECT_EQ(fleet::kubevirt_resource("GH100[H100 SXM5 80GB]", 0x2330),
              "nvidia.com/GH100H100_SXM5_80GB");
    EXPECT_EQ(fleet::kubevirt_resource("  GA100 [A100 SXM4/PCIe 40GB] v1.0 ", 0x20b0),
              "nvidia.com/GA100_A100_SXM4_PCIE_40GB_V1_0");
    // Runs of white space become one '_'.
    EXPECT_EQ(fleet::kubevirt_resource("AD102GL  \t[L40S]", 0x26b9), "nvidia.com/AD102GL_L40S");
    // Unknown to pci.ids, or nothing left of the name: the device ID.
    EXPECT_EQ(fleet::kubevirt_resource(std::nullopt, 0x2336), "nvidia.com/2336");
    EXPECT_EQ(fleet::kubevirt_resource("[]", 0x2336), "nvidia.com/2336");
}

TEST(Prometheus, HostTextInLabelsIsEscaped) {
    const auto text = fleet::prometheus(one_gpu(std::string("A \"B\" \\C\n\x1b[31m\xff")));
    EXPECT_TRUE(contains(text, "model=\"A \\\"B\\\" \\\\C\\\\x0a\\\\x1b[31m\\\\xff\"")) << text;
    for (const auto& l : lines_of(text))
        for (unsigned char c : l)
            EXPECT_GE(c, 0x20) << l;
    // Each family has HELP and TYPE once, before its samples.
    EXPECT_EQ(count_of(text, "# TYPE vfioctl_gpu_info gauge\n"), 1);
    EXPECT_TRUE(contains(text, "vfioctl_gpu_on_vfio{address=\"0000:8a:00.0\"} 1\n")) << text;
}

TEST(Prometheus, AnUnknownRebootIsNeverReportedAsNone) {
    auto f = one_gpu("GH100 [H100]");
    f.reboot_pending = std::nullopt;
    auto text = fleet::prometheus(f);
    EXPECT_TRUE(contains(text, "vfioctl_reboot_pending_known 0\n")) << text;
    EXPECT_FALSE(contains(text, "vfioctl_reboot_pending 0")) << text;
    EXPECT_EQ(fleet::nfd(f, std::nullopt).find(label("reboot-pending=unknown")) !=
                  std::string::npos,
              true);
    EXPECT_TRUE(fleet::ansible(f)["reboot_pending"].is_null());
    f.reboot_pending = true;
    text = fleet::prometheus(f);
    EXPECT_TRUE(contains(text, "vfioctl_reboot_pending_known 1\n")) << text;
    EXPECT_TRUE(contains(text, "# TYPE vfioctl_reboot_pending gauge\nvfioctl_reboot_pending 1\n"))
        << text;
}

TEST(Nfd, TheExpiryDirectiveComesFirstInRfc3339) {
    auto text = fleet::nfd(one_gpu("GH100 [H100]"), 1796093600);
    EXPECT_EQ(text.rfind("# +expiry-time=2026-12-01T02:53:20Z\n", 0), 0u) << text;
    // No other line may look like a directive: NFD rejects unknown ones.
    EXPECT_EQ(count_of(text, "# +"), 1);
}

TEST_F(Export, SeedBeforeTheRebootIsNotReady) {
    HostTree t = fixture::seed_before();
    FakeKernel k(t);
    auto r = run_cli(k, {"export", "--format", "nfd"}, paths);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto labels = nfd_labels(r.out);
    EXPECT_EQ(labels[label("iommu-enabled")], "false");
    EXPECT_EQ(labels[label("passthrough-ready")], "false");
    EXPECT_EQ(labels[label("verdict")], "will_work_after");
    EXPECT_EQ(labels[label("gpus")], "1");
    EXPECT_EQ(labels[label("vfio-gpus")], "0");
    EXPECT_EQ(labels[label("gpus.10de-2336")], "1");
    EXPECT_EQ(labels.count(label("vfio-gpus.10de-2336")), 0u);
    EXPECT_LT(r.out.size(), fleet::k_nfd_max_bytes);

    // Nothing is on vfio-pci: KubeVirt and Nova have nothing to offer.
    for (const char* f : {"kubevirt", "nova"}) {
        auto none = run_cli(k, {"export", "--format", f}, paths);
        EXPECT_EQ(none.exit_code, 1) << f;
        EXPECT_TRUE(contains(none.err, "vfioctl bind --all-gpus")) << none.err;
        EXPECT_EQ(none.out, "");
    }

    auto a = run_cli(k, {"export", "--format", "ansible"}, paths);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    auto j = a.json();
    EXPECT_EQ(j["iommu_enabled"], false);
    EXPECT_EQ(j["verdict"], "will_work_after");
    ASSERT_EQ(j["gpus"].size(), 1u);
    EXPECT_EQ(j["gpus"][0]["address"], fixture::k_seed_gpu);
    EXPECT_EQ(j["gpus"][0]["driver"], "nvidia");
    EXPECT_EQ(j["gpus"][0]["numa_node"], 1);
    EXPECT_EQ(j["reboot_pending"], false);
}

TEST_F(Export, TheSeedGpuBoundIsOfferedToKubevirtAndNova) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    ASSERT_EQ(run_cli(k, {"bind", fixture::k_seed_gpu, "--timeout", "2"}, paths).exit_code, 0);

    auto kv = run_cli(k, {"export", "--format", "kubevirt"}, paths);
    ASSERT_EQ(kv.exit_code, 0) << kv.err;
    EXPECT_TRUE(contains(kv.out, "permittedHostDevices:\n  pciHostDevices:\n")) << kv.out;
    EXPECT_TRUE(contains(kv.out, "    - pciVendorSelector: \"10DE:2336\"\n"
                                 "      resourceName: \"nvidia.com/GH100_H100\"\n"
                                 "      externalResourceProvider: true\n"))
        << kv.out;

    auto nova = run_cli(k, {"export", "--format", "nova", "--numa-policy", "preferred"}, paths);
    ASSERT_EQ(nova.exit_code, 0) << nova.err;
    EXPECT_TRUE(contains(nova.out, "\n[pci]\n")) << nova.out;
    int specs = 0, aliases = 0;
    for (const auto& l : lines_of(nova.out)) {
        if (l.rfind("device_spec = ", 0) == 0) {
            ++specs;
            auto j = nlohmann::json::parse(l.substr(14));
            EXPECT_EQ(j["address"], fixture::k_seed_gpu);
            EXPECT_EQ(j["vendor_id"], "10de");
            EXPECT_EQ(j["product_id"], "2336");
        } else if (l.rfind("alias = ", 0) == 0) {
            ++aliases;
            auto j = nlohmann::json::parse(l.substr(8));
            EXPECT_EQ(j["numa_policy"], "preferred");
            EXPECT_EQ(j["device_type"], "type-PCI");
            EXPECT_EQ(j["name"], "gh100_h100");
        }
    }
    EXPECT_EQ(specs, 1);
    EXPECT_EQ(aliases, 1);

    auto prom = run_cli(k, {"export", "--format", "prometheus"}, paths);
    ASSERT_EQ(prom.exit_code, 0) << prom.err;
    EXPECT_TRUE(contains(prom.out, "vfioctl_gpu_on_vfio{address=\"0000:8a:00.0\"} 1\n"))
        << prom.out;
    // The bind is in the journal until it is given back.
    EXPECT_TRUE(contains(prom.out, "\nvfioctl_journal_pending 1\n")) << prom.out;
    auto labels = nfd_labels(run_cli(k, {"export", "--format", "nfd"}, paths).out);
    EXPECT_EQ(labels[label("vfio-gpus.10de-2336")], "1");
    EXPECT_EQ(labels[label("journal-pending")], "1");
}

TEST_F(Export, EveryGpuAndNvswitchOfTheDgxOnVfio) {
    HostTree t = fixture::dgx_host(true);
    FakeKernel k(t);
    auto kv = run_cli(k, {"export", "--format", "kubevirt"}, paths);
    ASSERT_EQ(kv.exit_code, 0) << kv.err;
    EXPECT_EQ(count_of(kv.out, "pciVendorSelector"), 2) << kv.out;
    EXPECT_TRUE(contains(kv.out, "    # 8 IOMMU group(s) on this host\n"
                                 "    - pciVendorSelector: \"10DE:2330\"\n"
                                 "      resourceName: \"nvidia.com/GH100H100_SXM5_80GB\"\n"))
        << kv.out;
    EXPECT_TRUE(contains(kv.out, "    # 4 IOMMU group(s) on this host\n"
                                 "    - pciVendorSelector: \"10DE:22A3\"\n"))
        << kv.out;

    auto nova = run_cli(k, {"export", "--format", "nova"}, paths);
    ASSERT_EQ(nova.exit_code, 0) << nova.err;
    // GPUs only: the NVSwitches are no display devices.
    EXPECT_EQ(count_of(nova.out, "device_spec = "), 8) << nova.out;
    EXPECT_EQ(count_of(nova.out, "alias = "), 1) << nova.out;
    EXPECT_TRUE(contains(nova.out, "\"numa_policy\":\"legacy\"")) << nova.out;

    auto prom = run_cli(k, {"export", "--format", "prometheus"}, paths);
    ASSERT_EQ(prom.exit_code, 0) << prom.err;
    EXPECT_EQ(count_of(prom.out, "\nvfioctl_gpu_info{"), 9) << prom.out; // and the BMC's VGA
    EXPECT_EQ(count_of(prom.out, "\nvfioctl_gpu_on_vfio{"), 9);
    EXPECT_EQ(count_of(prom.out, "} 1\n") - count_of(prom.out, "vfioctl_gpu_info{"),
              // info, passthrough_ready, 8 GPUs ready and 8 on vfio
              2 + 8 + 8)
        << prom.out;

    auto labels = nfd_labels(run_cli(k, {"export", "--format", "nfd"}, paths).out);
    EXPECT_EQ(labels[label("vfio-gpus")], "8");
    EXPECT_EQ(labels[label("gpus")], "9");
    EXPECT_EQ(labels[label("iommu-groups")], "316");
}

TEST_F(Export, WriteReplacesTheFileWhereTheConsumerReadsIt) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    auto r =
        run_cli(k, {"--json", "export", "--format", "nfd", "--write", "--expiry", "3600"}, paths);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string path = fleet::default_path(fleet::Format::nfd);
    EXPECT_EQ(r.json()["written"], path);
    const std::string text = t.read(path);
    EXPECT_EQ(text, r.json()["content"]);
    EXPECT_EQ(text.rfind("# +expiry-time=", 0), 0u) << text;
    // No temporary file is left beside it.
    int files = 0;
    for (const auto& e :
         fs::directory_iterator(t.root() / "etc/kubernetes/node-feature-discovery/features.d")) {
        (void)e;
        ++files;
    }
    EXPECT_EQ(files, 1);

    auto a = run_cli(k, {"export", "--format", "ansible", "--write"}, paths);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_TRUE(contains(a.out, "wrote /etc/ansible/facts.d/vfioctl.fact")) << a.out;
    const std::string script = t.read("/etc/ansible/facts.d/vfioctl.fact");
    EXPECT_EQ(script.rfind("#!/bin/sh\n", 0), 0u) << script;
    EXPECT_TRUE(contains(script, "--root '" + t.root().string() + "' export --format ansible\n"))
        << script;
    struct stat st {};
    ASSERT_EQ(::stat((t.root() / "etc/ansible/facts.d/vfioctl.fact").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0755u);

    auto out =
        run_cli(k, {"export", "--format", "prometheus", "--output", "/srv/metrics/v.prom"}, paths);
    ASSERT_EQ(out.exit_code, 0) << out.err;
    EXPECT_TRUE(contains(t.read("/srv/metrics/v.prom"), "vfioctl_iommu_enabled 1\n"));
}

TEST_F(Export, BadInputIsAUsageErrorAndWritesNothing) {
    HostTree t = fixture::seed_after();
    FakeKernel k(t);
    const std::vector<std::vector<std::string>> bad = {
        {"export", "--format", "yaml"},
        {"export"},
        {"export", "--format", "kubevirt", "--write"},
        {"export", "--format", "nfd", "--numa-policy", "required"},
        {"export", "--format", "nova", "--numa-policy", "strict"},
        {"export", "--format", "prometheus", "--expiry", "60"},
        {"export", "--format", "nfd", "--expiry", "-1"},
        {"export", "--format", "nfd", "--output", "relative/file"},
        {"export", "--format", "nfd", "--output", "/etc/../x"},
        {"export", "--format", "nfd", "--write", "--output", "/x"},
    };
    for (const auto& args : bad) {
        auto r = run_cli(k, args, paths);
        std::string shown;
        for (const auto& a : args)
            shown += a + " ";
        EXPECT_EQ(r.exit_code, 2) << shown << r.err;
        EXPECT_TRUE(contains(r.err, "vfioctl: error: ")) << shown << r.err;
        EXPECT_EQ(r.out, "") << shown;
    }
    EXPECT_FALSE(fs::exists(t.root() / "etc/kubernetes"));
    EXPECT_FALSE(fs::exists(t.root() / "x"));
}
