#include "boot/plan.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>

namespace vfioctl::boot {

namespace {

// What a conflicting parameter becomes: when it decides the outcome (the
// last of its key on the command line) and when it does not. "" removes it.
struct Rewrite {
    std::string winner;
    std::string loser;
};

// The key as written ("intel_iommu", "intel-iommu") and the option list.
std::pair<std::string, std::vector<std::string>> key_and_options(const Param& p) {
    size_t eq = p.text.find('=');
    std::string key = p.text.substr(0, eq);
    std::vector<std::string> opts;
    if (p.token.value)
        for (const auto& o : util::split(*p.token.value, ','))
            if (!o.empty()) opts.push_back(o);
    return {key, opts};
}

// "key=a,b", or "" (removed) without options.
std::string render(const std::string& key, const std::vector<std::string>& opts) {
    if (opts.empty()) return "";
    return key + "=" + util::join(opts, ",");
}

// opts with every option in from replaced by to ("" drops it), once.
std::vector<std::string> swap_option(const std::vector<std::string>& opts,
                                     const std::vector<std::string>& from, const std::string& to) {
    std::vector<std::string> out;
    bool placed = false;
    for (const auto& o : opts) {
        if (std::find(from.begin(), from.end(), o) == from.end()) {
            out.push_back(o);
            continue;
        }
        if (!to.empty() && !placed && std::find(opts.begin(), opts.end(), to) == opts.end()) {
            out.push_back(to);
            placed = true;
        }
    }
    return out;
}

// Whether v holds s.
bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

// What p must become for goal, or nullopt when it does not work against it.
std::optional<Rewrite> conflict(const Param& p, const Goal& g) {
    const std::string& k = p.token.key;
    auto [key, opts] = key_and_options(p);
    if (g.action == Action::enable) {
        if (k == "intel_iommu" && has(opts, "off"))
            return Rewrite{
                render(key, swap_option(opts, {"off"}, g.platform == Platform::intel ? "on" : "")),
                render(key, swap_option(opts, {"off"}, ""))};
        if (k == "amd_iommu" && has(opts, "off")) {
            std::string r = render(key, swap_option(opts, {"off"}, ""));
            return Rewrite{r, r};
        }
        if (k == "iommu" && (has(opts, "off") || (g.passthrough && has(opts, "nopt")))) {
            std::vector<std::string> bad = {"off"};
            if (g.passthrough) bad.emplace_back("nopt");
            return Rewrite{render(key, swap_option(opts, bad, g.passthrough ? "pt" : "")),
                           render(key, swap_option(opts, bad, ""))};
        }
        if (k == "iommu.passthrough" && g.passthrough && p.token.value &&
            parse_kernel_bool(*p.token.value) == false)
            return Rewrite{key + "=1", ""};
        return std::nullopt;
    }
    if (g.platform == Platform::intel && k == "intel_iommu" && has(opts, "on"))
        return Rewrite{render(key, swap_option(opts, {"on"}, "off")),
                       render(key, swap_option(opts, {"on"}, ""))};
    return std::nullopt;
}

// A parameter the goal wants and the test that says it is already there.
struct Wanted {
    std::string text;
    std::function<bool(const IommuCmdline&)> present;
};

// The parameters goal adds when the command line lacks their effect.
std::vector<Wanted> wanted(const Goal& g) {
    std::vector<Wanted> w;
    if (g.action == Action::enable) {
        if (g.platform == Platform::intel)
            w.push_back(
                {"intel_iommu=on", [](const IommuCmdline& c) { return c.intel == Switch::on; }});
        if (g.passthrough)
            w.push_back({"iommu=pt", [](const IommuCmdline& c) { return c.passthrough == true; }});
    } else if (g.platform == Platform::intel) {
        w.push_back({"intel_iommu=off",
                     [](const IommuCmdline& c) { return c.intel == Switch::off || c.iommu_off; }});
    } else {
        w.push_back({"amd_iommu=off",
                     [](const IommuCmdline& c) { return c.amd == Switch::off || c.iommu_off; }});
    }
    return w;
}

// Keys whose parameters belong together on a command line.
bool iommu_key(const std::string& k) {
    return k == "intel_iommu" || k == "amd_iommu" || k == "iommu" || k == "iommu.passthrough" ||
           k == "iommu.strict" || k == "intremap";
}

// interpret() of parameters.
IommuCmdline interpret_params(const std::vector<Param>& ps) {
    std::vector<Token> toks;
    for (const auto& p : ps)
        toks.push_back(p.token);
    return interpret(toks);
}

// Appends s unless empty or already there.
void add_once(std::vector<std::string>& v, const std::string& s) {
    if (!s.empty() && !has(v, s)) v.push_back(s);
}

// The place of the last effective parameter with this text.
std::optional<Param> find_effective(const CmdlineView& v, const std::string& text) {
    std::optional<Param> found;
    for (const auto& p : v.effective)
        if (p.text == text && p.editable) found = p;
    return found;
}

const std::string& path_of(const ParamSet& s, const Param& p) {
    return s.files().at(p.file).path;
}

// Meets goal in one set, recording each change.
Status meet_goal(ParamSet& set, const Goal& goal, Plan& plan) {
    auto first = set.view();
    if (!first.uncertain.empty())
        return Error{
            "cannot tell for sure what " + set.label() +
                " gives the kernel: " + first.uncertain.front(),
            set.files().front().path,
            "vfioctl edits only configurations it can read exactly; make the change by hand", 0};
    for (int iter = 0; iter < 64; ++iter) {
        auto v = set.view();
        // The conflicting parameter that decides the outcome, per key: the last effective one.
        std::map<std::string, const Param*> winner;
        for (const auto& p : v.effective)
            if (conflict(p, goal)) winner[p.token.key] = &p;
        bool edited = false;
        // Losers go first, so that only one parameter per key is rewritten in place.
        for (bool winners : {false, true}) {
            for (const auto& p : v.written) {
                auto rw = conflict(p, goal);
                if (!rw) continue;
                const Param* w = winner.count(p.token.key) ? winner[p.token.key] : nullptr;
                bool wins = w && w->file == p.file && w->slot == p.slot && w->begin == p.begin &&
                            p.effective;
                if (wins != winners) continue;
                if (!p.editable) {
                    if (p.effective)
                        return Error{p.text +
                                         " is written inside an expression vfioctl does not edit",
                                     path_of(set, p), "edit " + p.where + " by hand", 0};
                    if (std::find(plan.notes.begin(), plan.notes.end(),
                                  p.where + ": " + p.text +
                                      " is not used at boot; left as written") == plan.notes.end())
                        plan.notes.push_back(p.where + ": " + p.text +
                                             " is not used at boot; left as written");
                    continue;
                }
                std::string to = wins ? rw->winner : rw->loser;
                // A replacement the command line already has elsewhere is not written twice.
                if (!to.empty() && std::any_of(v.effective.begin(), v.effective.end(),
                                               [&](const Param& q) { return q.text == to; }))
                    to.clear();
                Status st = to.empty() ? set.remove(p) : set.replace(p, to);
                if (!st) return st.error();
                plan.changes.push_back({path_of(set, p), p.variable, p.text, to});
                edited = true;
                break;
            }
            if (edited) break;
        }
        // Effective conflicts that the written list does not hold (from an expansion).
        if (!edited)
            for (const auto& p : v.effective)
                if (conflict(p, goal) && !p.editable)
                    return Error{p.text + " comes from " + p.where +
                                     ", which vfioctl does not edit",
                                 set.files().front().path, "remove it by hand", 0};
        if (edited) continue;
        IommuCmdline c = interpret_params(v.effective);
        for (const auto& w : wanted(goal)) {
            if (w.present(c)) continue;
            std::optional<Param> near;
            for (const auto& p : v.effective)
                if (p.editable && iommu_key(p.token.key)) near = p;
            Status st = set.append(w.text, near);
            if (!st) return st.error();
            auto after = set.view();
            auto placed = find_effective(after, w.text);
            if (!placed)
                return Error{"added " + w.text + " but the boot would not get it",
                             set.files().front().path, "make the change by hand", 0};
            plan.changes.push_back({path_of(set, *placed), placed->variable, "", w.text});
            edited = true;
            break;
        }
        if (!edited) {
            if (!meets(c, goal))
                return Error{"could not make " + set.label() + " " +
                                 (goal.action == Action::enable ? "turn the IOMMU on"
                                                                : "turn the IOMMU off"),
                             set.files().front().path, "make the change by hand", 0};
            return {};
        }
    }
    return Error{
        "gave up editing " + set.label() + " after 64 changes", set.files().front().path, {}, 0};
}

// The plan's file edits and command lines from the sets before and after.
Plan finish(const std::vector<ParamSet>& before, const std::vector<ParamSet>& after, Plan plan) {
    for (size_t s = 0; s < before.size(); ++s) {
        const auto& fb = before[s].files();
        const auto& fa = after[s].files();
        for (size_t f = 0; f < fb.size(); ++f)
            if (fb[f].text != fa[f].text)
                plan.edits.push_back({fb[f].path, fb[f].format, fb[f].text, fa[f].text});
        std::string cb = before[s].view().cmdline, ca = after[s].view().cmdline;
        plan.cmdlines.push_back({before[s].label(), cb, ca});
    }
    for (const auto& c : plan.changes) {
        add_once(plan.added, c.added);
        add_once(plan.removed, c.removed);
    }
    return plan;
}

} // namespace

const char* action_id(Action a) {
    return a == Action::enable ? "enable" : "disable";
}
const char* platform_id(Platform p) {
    return p == Platform::intel ? "intel" : "amd";
}

std::vector<std::string> goal_params(const Goal& g) {
    std::vector<std::string> out;
    for (const auto& w : wanted(g))
        out.push_back(w.text);
    return out;
}

bool meets(const IommuCmdline& c, const Goal& g) {
    if (g.action == Action::disable)
        return c.iommu_off ||
               (g.platform == Platform::intel ? c.intel == Switch::off : c.amd == Switch::off);
    if (c.iommu_off) return false;
    if (g.platform == Platform::intel && c.intel != Switch::on) return false;
    if (g.platform == Platform::amd && c.amd == Switch::off) return false;
    if (g.passthrough && c.passthrough != true) return false;
    return true;
}

std::vector<std::string> conflicting_params(std::string_view cmdline, const Goal& goal) {
    std::vector<std::string> out;
    for (const auto& t : tokenize(cmdline)) {
        Param p;
        p.text = t.text;
        p.token = t;
        if (conflict(p, goal)) out.push_back(t.text);
    }
    return out;
}

Result<Plan> plan_goal(std::vector<ParamSet> sets, const Goal& goal) {
    const std::vector<ParamSet> before = sets;
    Plan plan;
    for (auto& s : sets) {
        Status st = meet_goal(s, goal, plan);
        if (!st) return st.error();
    }
    return finish(before, sets, std::move(plan));
}

Result<Plan> plan_inverse(std::vector<ParamSet> sets, const std::vector<ParamChange>& changes) {
    const std::vector<ParamSet> before = sets;
    Plan plan;
    for (auto it = changes.rbegin(); it != changes.rend(); ++it) {
        const ParamChange& ch = *it;
        ParamSet* set = nullptr;
        size_t file = 0;
        for (auto& s : sets)
            for (size_t f = 0; f < s.files().size(); ++f)
                if (s.files()[f].path == ch.path) set = &s, file = f;
        if (!set) {
            plan.notes.push_back(ch.path +
                                 " is no longer part of the boot configuration; left alone");
            continue;
        }
        auto v = set->view();
        std::optional<Param> mine;
        if (!ch.added.empty())
            for (const auto& p : v.written)
                if (p.file == file && p.text == ch.added && p.editable &&
                    (ch.variable.empty() || p.variable == ch.variable))
                    mine = p;
        if (mine) {
            Status st = ch.removed.empty() ? set->remove(*mine) : set->replace(*mine, ch.removed);
            if (!st) return st.error();
            plan.changes.push_back({ch.path, ch.variable, ch.added, ch.removed});
            continue;
        }
        if (!ch.added.empty())
            plan.notes.push_back(ch.path + ": " + ch.added +
                                 " is no longer there; nothing to take out");
        if (ch.removed.empty()) continue;
        bool present = std::any_of(v.written.begin(), v.written.end(), [&](const Param& p) {
            return p.file == file && p.text == ch.removed;
        });
        if (present) continue;
        Status st = set->append_to(file, ch.variable, ch.removed);
        if (!st) return st.error();
        plan.changes.push_back({ch.path, ch.variable, "", ch.removed});
    }
    return finish(before, sets, std::move(plan));
}

} // namespace vfioctl::boot
