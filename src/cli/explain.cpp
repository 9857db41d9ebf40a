// 'vfioctl explain TEXT': what an error message means on this host.

#include "iommu/explain.hpp"

#include "boot/cmdline.hpp"
#include "cli/commands.hpp"
#include "cli/model.hpp"
#include "util/strings.hpp"

#include <iterator>

namespace vfioctl::cli {

namespace {

struct Options {
    std::vector<std::string> text;
};

int run_explain(Context& ctx, const Options& opt) {
    std::string text = util::join(opt.text, " ");
    if (text == "-" || text.empty()) {
        if (text.empty() && ctx.terminal)
            return report_error(
                ctx,
                Error{"nothing to explain",
                      {},
                      "vfioctl explain \"<error text>\", or pipe a log: dmesg | vfioctl explain -",
                      0},
                exit_usage);
        text.assign(std::istreambuf_iterator<char>(ctx.in), std::istreambuf_iterator<char>());
    }
    auto m = load_host(ctx, ctx.paths.state_dir);
    if (!m) return report_error(ctx, m.error());
    auto cmd = boot::interpret(boot::tokenize(m->facts.cmdline));
    auto state = iommu::iommu_state(m->facts, cmd, m->groups);
    iommu::ExplainContext ec{m->facts, m->inv, m->groups, state, cmd};
    auto found = iommu::explain(text, ec);
    if (ctx.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& e : found) {
            nlohmann::json j = {{"id", e.id},
                                {"matched", e.matched},
                                {"meaning", e.meaning},
                                {"on_this_host", e.on_this_host},
                                {"remedy", e.remedy}};
            j["device"] = e.device ? nlohmann::json(e.device->str()) : nlohmann::json(nullptr);
            j["group"] = e.group ? nlohmann::json(*e.group) : nlohmann::json(nullptr);
            arr.push_back(j);
        }
        print_json(ctx, {{"recognised", !found.empty()}, {"explanations", arr}});
    } else {
        for (size_t i = 0; i < found.size(); ++i) {
            const auto& e = found[i];
            if (i) ctx.out << "\n";
            ctx.out << "Message:  " << util::printable(e.matched) << "\n";
            ctx.out << "Meaning:  " << e.meaning << "\n";
            for (const auto& h : e.on_this_host)
                ctx.out << "Here:     " << h << "\n";
            for (size_t k = 0; k < e.remedy.size(); ++k)
                ctx.out << (k ? "          " : "Remedy:   ") << k + 1 << ". " << e.remedy[k]
                        << "\n";
        }
    }
    if (found.empty()) {
        // On stderr with --json too: exit 1 always says why there.
        ctx.err
            << "vfioctl: no known QEMU, VFIO or NVIDIA message in the text\n"
            << "hint: paste the exact error line (or pipe the whole log with 'vfioctl explain -'); "
               "'vfioctl status' diagnoses the host as a whole\n";
        return exit_failure;
    }
    return exit_ok;
}

} // namespace

Command explain_command() {
    return {"explain",
            "say what a QEMU, VFIO or NVIDIA error message means on this host, and what to do",
            [](CLI::App& sub, const services::Paths&) {
                auto opt = std::make_shared<Options>();
                sub.add_option("text", opt->text, "the message or log; '-' reads standard input")
                    ->expected(0, -1);
                return [opt](Context& ctx) { return run_explain(ctx, *opt); };
            }};
}

} // namespace vfioctl::cli
