// 'vfioctl export --format F': this host's facts in the formats of the
// engines that run many hosts (fleet/export.hpp), on stdout or written
// atomically where the consumer reads them.

#include "fleet/export.hpp"

#include "boot/setup.hpp"
#include "build_info.hpp"
#include "cli/commands.hpp"
#include "cli/model.hpp"
#include "host/files.hpp"
#include "host/numa.hpp"
#include "services/kernel_log.hpp"
#include "util/strings.hpp"

#include <ctime>
#include <fmt/format.h>

namespace vfioctl::cli {

namespace {

struct ExportOptions {
    std::string format;
    bool write = false;
    std::string output;
    std::optional<double> expiry;           // nfd: seconds until the labels expire
    std::optional<std::string> numa_policy; // nova: "legacy" when not given
    std::string state_dir;
};

fleet::Function function_of(const host::Tree& t, const pci::PciDevice& d) {
    fleet::Function f;
    f.address = d.addr.str();
    f.vendor = d.vendor;
    f.device = d.device;
    // libpci names an ID that pci.ids lacks "Device 2336".
    if (!d.device_name.empty() && d.device_name != fmt::format("Device {:04x}", d.device))
        f.model = d.device_name;
    f.driver = d.driver;
    f.iommu_group = d.iommu_group;
    const auto numa = host::read_device_numa(t, f.address);
    if (numa.affinity == host::NumaAffinity::node) f.numa_node = numa.node;
    if (numa.affinity == host::NumaAffinity::none) f.numa_node = -1;
    f.display = d.is_gpu();
    return f;
}

Result<fleet::Facts> read_facts(Context& ctx, const std::string& state_dir) {
    auto m = load_host(ctx, state_dir);
    if (!m) return m.error();
    const auto bs = boot::inspect_boot(ctx.host);
    const iommu::NextBoot nb = next_boot_of(bs);
    const auto dx = iommu::diagnose(m->facts, m->inv, m->groups, &nb);
    fleet::Facts f;
    f.version = VFIOCTL_VERSION;
    f.now = static_cast<int64_t>(std::time(nullptr));
    f.iommu_enabled = dx.iommu.enabled;
    f.iommu_groups = dx.iommu.group_count;
    f.verdict = iommu::verdict_id(dx.overall);
    f.passthrough_ready = dx.overall == iommu::Verdict::will_work;
    // Known only when both the running and the next command line are.
    if (bs.running_known && bs.next_cmdline) f.reboot_pending = bs.reboot_pending;
    f.journal_pending = static_cast<int>(m->journal.size());
    for (const auto& g : dx.gpus) {
        auto fn = function_of(ctx.host, *g.gpu);
        fn.verdict = iommu::verdict_id(g.verdict);
        f.gpus.push_back(std::move(fn));
    }
    for (const auto& d : m->inv.devices)
        if (d.driver == std::optional<std::string>("vfio-pci"))
            f.on_vfio.push_back(function_of(ctx.host, d));
    return f;
}

// The file's text and the mode a new file gets.
struct Rendered {
    std::string text;
    unsigned mode = 0644;
    nlohmann::json facts = nullptr; // ansible: the object itself, for --json
};

Result<Rendered> render_format(Context& ctx, fleet::Format format, const fleet::Facts& f,
                               const ExportOptions& o, const std::string& target) {
    switch (format) {
    case fleet::Format::nfd: {
        std::optional<int64_t> expiry;
        if (o.expiry) expiry = f.now + static_cast<int64_t>(*o.expiry);
        Rendered r{fleet::nfd(f, expiry)};
        if (r.text.size() > fleet::k_nfd_max_bytes)
            return Error{fmt::format("the feature file would be {} bytes: NFD ignores files over "
                                     "{}",
                                     r.text.size(), fleet::k_nfd_max_bytes),
                         {},
                         {},
                         0};
        return r;
    }
    case fleet::Format::kubevirt: {
        auto t = fleet::kubevirt(f);
        if (!t) return t.error();
        return Rendered{*t};
    }
    case fleet::Format::nova: {
        auto policy = fleet::parse_numa_policy(o.numa_policy.value_or("legacy"));
        if (!policy) return policy.error();
        auto t = fleet::nova(f, *policy);
        if (!t) return t.error();
        return Rendered{*t};
    }
    case fleet::Format::ansible: {
        auto facts = fleet::ansible(f);
        if (target.empty()) return Rendered{json_text(facts) + "\n", 0644, facts};
        // Written: the executable script that prints fresh facts at each run.
        auto self = services::self_binary();
        if (!self) return self.error();
        return Rendered{fleet::ansible_fact_script(*self, ctx.host.root().string()), 0755, facts};
    }
    case fleet::Format::prometheus:
        return Rendered{fleet::prometheus(f)};
    }
    return Error{"unknown export format", {}, {}, 0};
}

// Writes text as host path target (under --root): its directory made
// first, the file replaced atomically.
Status write_target(Context& ctx, const std::string& target, const Rendered& r) {
    const auto slash = target.rfind('/');
    if (slash != std::string::npos && slash > 0)
        if (auto s = host::make_directories(ctx.host, target.substr(0, slash)); !s) return s;
    return host::replace_file(ctx.host, target, r.text, "export.file", r.mode);
}

int run_export(Context& ctx, const ExportOptions& o) {
    auto format = fleet::parse_format(o.format);
    if (!format) return report_error(ctx, format.error(), exit_usage);
    if (*format != fleet::Format::nova && o.numa_policy)
        return report_error(ctx, Error{"--numa-policy is for --format nova", {}, {}, 0},
                            exit_usage);
    if (*format != fleet::Format::nfd && o.expiry)
        return report_error(ctx, Error{"--expiry is for --format nfd", {}, {}, 0}, exit_usage);
    if (o.numa_policy)
        if (auto p = fleet::parse_numa_policy(*o.numa_policy); !p)
            return report_error(ctx, p.error(), exit_usage);
    std::string target = o.output;
    if (o.write) {
        target = fleet::default_path(*format);
        if (target.empty())
            return report_error(
                ctx,
                Error{fmt::format("--format {} has no standard place to write to",
                                  fleet::format_id(*format)),
                      {},
                      "it is part of a larger configuration: print it and merge it by hand, or "
                      "give --output PATH",
                      0},
                exit_usage);
    }
    auto facts = read_facts(ctx, o.state_dir);
    if (!facts) return report_error(ctx, facts.error());
    auto r = render_format(ctx, *format, *facts, o, target);
    if (!r) return report_error(ctx, r.error());
    if (!target.empty())
        if (auto s = write_target(ctx, target, *r); !s) return report_error(ctx, s.error());
    if (ctx.json) {
        nlohmann::json j = {
            {"format", fleet::format_id(*format)},
            {"written", target.empty() ? nlohmann::json(nullptr) : nlohmann::json(target)},
            {"bytes", r->text.size()},
            {"content", r->text}};
        if (!r->facts.is_null()) j["facts"] = r->facts;
        print_json(ctx, j);
    } else if (target.empty()) {
        ctx.out << r->text;
    } else {
        ctx.out << "wrote " << util::printable(target) << " (" << r->text.size() << " bytes, "
                << fleet::format_id(*format) << ")\n";
    }
    return exit_ok;
}

} // namespace

Command export_command() {
    return {"export",
            "this host's IOMMU and GPU facts for fleet tools: NFD labels, KubeVirt, Nova, Ansible, "
            "Prometheus",
            [](CLI::App& sub, const services::Paths& paths) {
                auto o = std::make_shared<ExportOptions>();
                o->state_dir = paths.state_dir;
                sub.add_option("-f,--format", o->format,
                               "nfd | kubevirt | nova | ansible | prometheus")
                    ->required();
                auto* write = sub.add_flag(
                    "--write", o->write,
                    "write where the consumer reads it (under --root): nfd: "
                    "/etc/kubernetes/node-feature-discovery/features.d/vfioctl; prometheus: "
                    "/var/lib/prometheus/node-exporter/vfioctl.prom; ansible: an executable "
                    "/etc/ansible/facts.d/vfioctl.fact that runs this export");
                sub.add_option("-o,--output", o->output,
                               "write to this host path (under --root) instead, atomically")
                    ->check(host_path_value("--output"))
                    ->excludes(write);
                sub.add_option("--expiry", o->expiry,
                               "nfd: labels expire this many seconds after the export (NFD's "
                               "expiry-time)")
                    ->check(seconds_value());
                sub.add_option("--numa-policy", o->numa_policy,
                               "nova: the alias's numa_policy: legacy (Nova's default), preferred, "
                               "required, socket")
                    ->check(CLI::IsMember({"legacy", "preferred", "required", "socket"}));
                sub.add_option("--state-dir", o->state_dir,
                               "where the bind journal lives (under --root)")
                    ->capture_default_str()
                    ->check(state_dir_check());
                return [o](Context& ctx) { return run_export(ctx, *o); };
            }};
}

} // namespace vfioctl::cli
