// 'vfioctl verify': proof inside the guest that the passed-through GPU is
// there. Outside, it boots a kernel with the GPU ('vm run') and runs
// 'verify --in-guest' in it; --in-guest checks the machine it runs on.

#include "cli/commands.hpp"
#include "cli/model.hpp"
#include "cli/vm.hpp"
#include "pci/fabric.hpp"
#include "services/kernel_log.hpp"
#include "util/strings.hpp"
#include "vm/inguest.hpp"
#include "vm/machine.hpp"

#include <chrono>
#include <fmt/format.h>
#include <thread>

namespace vfioctl::cli {

namespace {

using nlohmann::json;

struct VerifyOptions {
    bool in_guest = false;
    bool load_driver = false;
    std::vector<std::string> expect; // vendor:device IDs or BDFs to find
    std::vector<std::string> gpus;
    std::string kernel, memory, accel, modules_dir;
    double timeout_s = 600;
    std::string state_dir;
};

Report run_in_guest_checks(Context& ctx, const VerifyOptions& o) {
    auto inv = pci::enumerate(ctx.host);
    if (!inv) return failed(inv.error());
    std::vector<const pci::PciDevice*> devs;
    json checks = json::array();
    bool ok = true;
    auto check = [&](const std::string& what, bool pass, const std::string& detail) {
        checks.push_back({{"check", what}, {"ok", pass}, {"detail", detail}});
        ok = ok && pass;
    };
    if (o.expect.empty()) {
        devs = inv->gpus();
        check("a GPU is on the bus", !devs.empty(),
              fmt::format("{} display-class devices", devs.size()));
    }
    for (const auto& e : o.expect) {
        auto found = match_devices(*inv, e);
        check(e + " is on the bus", found.ok(),
              found ? (*found)[0]->addr.str() : found.error().message);
        if (found) devs.insert(devs.end(), found->begin(), found->end());
    }
    json jdevs = json::array();
    for (const auto* d : devs) {
        std::string driver = d->driver.value_or("");
        const std::string sys = "/sys/bus/pci/devices/" + d->addr.str();
        if (driver.empty() && o.load_driver) {
            if (auto alias = ctx.host.attr(sys + "/modalias");
                alias && ctx.host.load_module(*alias).ok()) {
                for (int i = 0; i < 100 && driver.empty(); ++i) {
                    driver = ctx.host.link_name(sys + "/driver").value_or("");
                    if (driver.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
                }
            }
        }
        // What the guest's kernel assigned, from the resource file.
        json bars = json::array();
        int sized = 0;
        for (const auto& b :
             vm::parse_resource_file(ctx.host.read(sys + "/resource").value_or(""))) {
            bars.push_back({{"index", b.index}, {"size", b.size}, {"is_io", b.is_io}});
            if (!b.is_io && b.size > 0) ++sized;
        }
        check(d->addr.short_str() + " BARs sized", sized > 0, fmt::format("{} memory BARs", sized));
        jdevs.push_back({{"address", d->addr.str()},
                         {"id", d->id().str()},
                         {"name", d->name()},
                         {"driver", driver.empty() ? json(nullptr) : json(driver)},
                         {"bars", bars}});
    }
    json smi = nullptr;
    if (auto prog = ctx.host.find_program("nvidia-smi"); prog && ctx.host.is_live()) {
        auto r = ctx.host.run({*prog, "--query-gpu=name,memory.total,driver_version,pci.bus_id",
                               "--format=csv,noheader"},
                              30000);
        if (r && r->exit_code == 0) {
            smi = json::array();
            for (const auto& g : vm::parse_nvidia_smi(r->output))
                smi.push_back({{"name", g.name},
                               {"memory", g.memory},
                               {"driver_version", g.driver_version},
                               {"bus_id", g.bus_id}});
            check("nvidia-smi sees a GPU", !smi.empty(), fmt::format("{} GPUs", smi.size()));
        } else {
            check("nvidia-smi runs", false,
                  r ? std::string(util::trim(r->output)) : r.error().describe());
        }
    }
    // With NVSwitches in this guest (full passthrough), every GPU must be
    // registered with the fabric, or CUDA says "system not yet initialized".
    json fabric = nullptr;
    if (pci::nvlink_fabric(*inv)) {
        fabric = json::array();
        auto prog = ctx.host.find_program("nvidia-smi");
        auto q = prog && ctx.host.is_live() ? ctx.host.run({*prog, "-q"}, 60000)
                                            : Result<host::RunOutput>(Error{"not run", {}, "", 0});
        if (q && q->exit_code == 0) {
            int ready = 0;
            auto states = vm::parse_fabric_states(q->output);
            for (const auto& s : states) {
                fabric.push_back({{"bus_id", s.bus_id},
                                  {"state", s.state},
                                  {"status", s.status},
                                  {"ready", s.ready()}});
                ready += s.ready() ? 1 : 0;
            }
            check("NVLink fabric: every GPU registered (Fabric Manager ran)",
                  !states.empty() && ready == static_cast<int>(states.size()),
                  fmt::format("{} of {} GPUs Completed/Success; else start nvidia-fabricmanager "
                              "of the driver's version in this VM",
                              ready, states.size()));
        } else {
            check("NVLink fabric state readable (nvidia-smi -q)", false,
                  !prog                 ? std::string("NVSwitches are here, nvidia-smi is not")
                  : !ctx.host.is_live() ? std::string("not a live host")
                  : q                   ? std::string(util::trim(q->output))
                                        : q.error().describe());
        }
    }
    json findings = json::array();
    for (const auto& f : vm::scan_kernel_log(services::kernel_log(ctx.host)))
        findings.push_back({{"kind", f.kind}, {"line", f.line}});
    check("no Xid, AER or BAR errors in the kernel log", findings.empty(),
          fmt::format("{} findings", findings.size()));

    Report r;
    r.json = {{"ok", ok},         {"devices", jdevs},       {"nvidia_smi", smi},
              {"fabric", fabric}, {"kernel_log", findings}, {"checks", checks}};
    for (const auto& d : jdevs)
        r.text += d["address"].get<std::string>() + " [" + d["id"].get<std::string>() + "] " +
                  d["name"].get<std::string>() + ", driver " +
                  (d["driver"].is_null() ? std::string("none") : d["driver"].get<std::string>()) +
                  "\n";
    if (smi.is_array())
        for (const auto& g : smi)
            r.text += "nvidia-smi: " + g["name"].get<std::string>() + ", " +
                      g["memory"].get<std::string>() + ", driver " +
                      g["driver_version"].get<std::string>() + "\n";
    for (const auto& c : checks)
        r.text += (c["ok"].get<bool>() ? "  ok    " : "  FAIL  ") + c["check"].get<std::string>() +
                  " (" + c["detail"].get<std::string>() + ")\n";
    for (const auto& f : findings)
        r.text += "  kernel log: " + f["line"].get<std::string>() + "\n";
    r.text += ok ? "verify: OK\n" : "verify: FAILED\n";
    r.exit_code = ok ? exit_ok : exit_failure;
    return r;
}

int run_verify(Context& ctx, const VerifyOptions& o) {
    if (o.in_guest) return render(ctx, run_in_guest_checks(ctx, o));
    // The guest looks for the same vendor:device IDs.
    std::vector<std::string> ids;
    if (!o.gpus.empty()) {
        auto m = load_host(ctx, o.state_dir);
        if (!m) return report_error(ctx, m.error());
        for (const auto& t : o.gpus) {
            auto found = match_devices(m->inv, t);
            if (!found) return report_error(ctx, found.error());
            for (const auto* d : *found)
                if (std::find(ids.begin(), ids.end(), d->id().str()) == ids.end())
                    ids.push_back(d->id().str());
        }
    }
    auto self = services::self_binary();
    if (!self) return report_error(ctx, self.error());
    VmRunOptions r;
    r.command = {*self, "verify", "--in-guest", "--load-driver"};
    if (ctx.json) r.command.insert(r.command.begin() + 1, "--json");
    for (const auto& id : ids) {
        r.command.push_back("--expect");
        r.command.push_back(id);
    }
    r.overrides.gpus = o.gpus;
    if (!o.kernel.empty()) r.overrides.kernel = o.kernel;
    if (!o.memory.empty()) r.overrides.memory = o.memory;
    if (!o.accel.empty()) r.overrides.accel = o.accel;
    r.modules_dir = o.modules_dir;
    r.timeout_s = o.timeout_s;
    r.boot_timeout_s = o.timeout_s; // a nested or TCG guest may take minutes to boot
    r.state_dir = o.state_dir;
    r.run_base = ctx.paths.run_base;
    r.cwd = "/";
    return vm_run(ctx, r);
}

} // namespace

Command verify_command() {
    return {"verify",
            "prove inside a guest that the GPU is there: bus, BARs, driver, nvidia-smi, kernel log",
            [](CLI::App& sub, const services::Paths& paths) {
                auto o = std::make_shared<VerifyOptions>();
                o->state_dir = paths.state_dir;
                sub.add_flag("--in-guest", o->in_guest, "check this machine (run inside any VM)");
                sub.add_option("--expect", o->expect,
                               "vendor:device or BDF that must be on the bus (repeat)")
                    ->expected(1)
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
                    ->allow_extra_args(false);
                sub.add_flag("--load-driver", o->load_driver,
                             "load the driver for its modalias when none is bound");
                sub.add_option("--gpu", o->gpus,
                               "pass this device through (BDF or vendor:device; repeat)")
                    ->expected(1)
                    ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
                    ->allow_extra_args(false);
                sub.add_option("--kernel", o->kernel, "kernel to boot (default: the running one)");
                sub.add_option("--memory", o->memory, "guest RAM");
                sub.add_option("--accel", o->accel, "auto, kvm or tcg")
                    ->check(CLI::IsMember({"auto", "kvm", "tcg"}));
                sub.add_option("--modules", o->modules_dir, "the kernel's modules directory");
                sub.add_option("--timeout", o->timeout_s, "seconds for the whole check")
                    ->capture_default_str()
                    ->check(seconds_value());
                sub.add_option("--state-dir", o->state_dir, "where the bind journal lives")
                    ->capture_default_str()
                    ->check(state_dir_check());
                return [o](Context& ctx) { return run_verify(ctx, *o); };
            }};
}

} // namespace vfioctl::cli
