#include "boot/trial.hpp"

#include "util/strings.hpp"
#include "vfio/boot_id.hpp"

#include <algorithm>

namespace vfioctl::boot {

namespace {

// systemd-boot's vendor GUID for its EFI variables.
const char* const k_loader_oneshot_var =
    "/sys/firmware/efi/efivars/LoaderEntryOneShot-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

// The directory of a host path ("/boot/grub" for "/boot/grub/grub.cfg").
std::string dir_of(const std::string& p) {
    auto at = p.rfind('/');
    return at == std::string::npos || at == 0 ? std::string("/") : p.substr(0, at);
}

// grubenv next to the grub.cfg the setup boots from (BLS: /boot/grub2's).
std::string grubenv_path(const BootSetup& s) {
    if (s.loader == Loader::grub_bls) return "/boot/grub2/grubenv";
    return dir_of(s.generated_path.empty() ? std::string("/boot/grub/grub.cfg")
                                           : s.generated_path) +
           "/grubenv";
}

// cmdline with every param=... of name taken out and name=value appended.
std::string set_param(const std::string& cmdline, const std::string& name,
                      const std::string& value) {
    std::vector<std::string> out;
    for (const auto& w : util::split_ws(cmdline))
        if (w != name && !util::starts_with(w, name + "=")) out.push_back(w);
    out.push_back(name + "=" + value);
    return util::join(out, " ");
}

// cmdline made to meet goal, as plan_goal edits a command-line file.
Result<std::string> meet_goal(const std::string& cmdline, const Goal& goal) {
    std::vector<ParamSet> sets;
    sets.emplace_back("the trial entry",
                      std::vector<ConfigFile>{{"(trial entry)", Format::cmdline_file, cmdline}});
    auto plan = plan_goal(std::move(sets), goal);
    if (!plan) return plan.error();
    if (plan->edits.empty()) return cmdline;
    return std::string(util::trim(plan->edits.front().after));
}

// The trial command line: goal met, panic=N, the marker.
Result<std::string> trial_cmdline(const std::string& from, const Goal& goal,
                                  const std::string& marker, int panic_s) {
    auto c = meet_goal(from, goal);
    if (!c) return c.error();
    std::string out = set_param(*c, "panic", std::to_string(panic_s));
    return set_param(out, k_trial_param, marker);
}

// The first top-level menuentry of a grub.cfg: its body lines, and the
// index of its linux line in them.
struct GrubEntry {
    std::string title;
    std::vector<std::string> body;
    size_t linux_line = 0;
};

// The title of 'menuentry 'TITLE' ...'.
std::string entry_title(std::string_view line) {
    auto q = line.find('\'');
    if (q == std::string_view::npos) return {};
    auto e = line.find('\'', q + 1);
    if (e == std::string_view::npos) return {};
    return std::string(line.substr(q + 1, e - q - 1));
}

std::optional<GrubEntry> first_grub_entry(std::string_view cfg) {
    int depth = 0;
    std::optional<GrubEntry> cur;
    bool have_linux = false;
    for (const auto& raw : util::split(cfg, '\n')) {
        std::string line = raw;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::string_view t = util::trim(line);
        bool opens = !t.empty() && t.back() == '{';
        bool closes = t == "}";
        if (cur) {
            if (closes && depth == 1) {
                if (have_linux) return cur;
                return std::nullopt; // the first entry boots no kernel line we know
            }
            auto w = util::split_ws(t);
            if (!w.empty() && (w[0] == "linux" || w[0] == "linux16" || w[0] == "linuxefi") &&
                w.size() >= 2 && !have_linux) {
                cur->linux_line = cur->body.size();
                have_linux = true;
            }
            cur->body.push_back(line);
            if (opens) ++depth;
            if (closes) --depth;
            continue;
        }
        if (depth == 0 && util::starts_with(t, "menuentry ") && opens) {
            cur = GrubEntry{entry_title(t), {}, 0};
            depth = 1;
            continue;
        }
        if (opens) ++depth;
        if (closes && depth > 0) --depth;
    }
    return std::nullopt;
}

// The linux line with args in place of its arguments, indentation and
// image kept.
std::string with_args(const std::string& line, const std::string& args) {
    size_t i = 0;
    auto skip_space = [&] {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
            ++i;
    };
    auto skip_word = [&] {
        while (i < line.size() && line[i] != ' ' && line[i] != '\t')
            ++i;
    };
    skip_space();
    skip_word(); // linux
    skip_space();
    skip_word(); // the image
    return line.substr(0, i) + " " + args;
}

Result<TrialPlan> plan_grub(const host::Host& h, const BootSetup& s, const Goal& goal,
                            const std::string& marker, int panic_s) {
    if (s.generated_path.empty())
        return Error{"no grub.cfg to copy the default entry from",
                     {},
                     "run update-grub, or use --permanent",
                     0};
    auto cfg = h.read(s.generated_path);
    if (!cfg) return cfg.error();
    auto entry = first_grub_entry(*cfg);
    if (!entry)
        return Error{"cannot find the first menu entry with a linux line", s.generated_path,
                     "use --permanent to change the default entry without a trial", 0};
    auto w = util::split_ws(entry->body[entry->linux_line]);
    std::string from = util::join(std::vector<std::string>(w.begin() + 2, w.end()), " ");
    auto cmd = trial_cmdline(from, goal, marker, panic_s);
    if (!cmd) return cmd.error();
    if (cmd->find('\'') != std::string::npos || cmd->find('\n') != std::string::npos)
        return Error{"the command line holds a quote or a newline vfioctl will not copy",
                     s.generated_path, "use --permanent", 0};
    TrialPlan tp;
    tp.cmdline = *cmd;
    tp.marker = marker;
    tp.source = "the first entry of " + s.generated_path + " ('" + entry->title + "')";
    std::string text =
        "#!/bin/sh\n"
        "# Written by 'vfioctl iommu enable': a one-shot trial of the IOMMU command line.\n"
        "# GRUB boots it once (grub-reboot " +
        std::string(k_trial_entry_id) +
        "), never by default; a panic reboots\n"
        "# into the default entry after " +
        std::to_string(panic_s) +
        " s. 'vfioctl iommu confirm' (in the trial boot) makes\n"
        "# the command line permanent and removes this file; 'vfioctl iommu revert' removes it.\n"
        "cat <<'VFIOCTL_TRIAL_ENTRY'\n"
        "menuentry 'vfioctl trial: " +
        util::join(goal_params(goal), " ") + "' --id " + k_trial_entry_id + " {\n";
    for (size_t i = 0; i < entry->body.size(); ++i) {
        if (entry->body[i] == "VFIOCTL_TRIAL_ENTRY")
            return Error{"the menu entry holds a line vfioctl uses itself", s.generated_path,
                         "use --permanent", 0};
        text += (i == entry->linux_line ? with_args(entry->body[i], *cmd) : entry->body[i]) + "\n";
    }
    text += "}\nVFIOCTL_TRIAL_ENTRY\n";
    FileEdit e{k_trial_grub_script, Format::whole_file, "", text};
    e.created = true;
    e.mode = 0755;
    tp.plan.edits.push_back(std::move(e));
    tp.plan.added = goal_params(goal);
    auto prog = h.find_program("grub-reboot");
    if (!prog) prog = h.find_program("grub2-reboot");
    tp.oneshot_found = prog.has_value();
    tp.oneshot_argv = {prog.value_or("grub-reboot"), k_trial_entry_id};
    return tp;
}

// A loader entry (systemd-boot's, or a BLS entry GRUB reads) copied from
// the default one as vfioctl-trial.conf.
Result<TrialPlan> plan_loader_entry(const host::Host& h, const BootSetup& s, const Goal& goal,
                                    const std::string& marker, int panic_s) {
    if (s.generated_path.empty() || !s.generated_cmdline)
        return Error{"no default loader entry to copy", {}, "use --permanent", 0};
    auto text = h.read(s.generated_path);
    if (!text) return text.error();
    auto cmd = trial_cmdline(*s.generated_cmdline, goal, marker, panic_s);
    if (!cmd) return cmd.error();
    TrialPlan tp;
    tp.cmdline = *cmd;
    tp.marker = marker;
    tp.source = s.generated_path;
    std::string out;
    bool options_written = false;
    for (const auto& raw : util::split(*text, '\n')) {
        std::string line = raw;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto w = util::split_ws(line);
        if (!w.empty() && w[0] == "title") {
            out += "title vfioctl trial: " + util::join(goal_params(goal), " ") + "\n";
            continue;
        }
        if (!w.empty() && w[0] == "options") {
            if (!options_written) out += "options " + *cmd + "\n";
            options_written = true;
            continue;
        }
        if (!line.empty()) out += line + "\n";
    }
    if (!options_written) out += "options " + *cmd + "\n";
    FileEdit e{dir_of(s.generated_path) + "/" + k_trial_loader_entry, Format::whole_file, "", out};
    e.created = true;
    e.mode = 0644;
    tp.plan.edits.push_back(std::move(e));
    // No added parameters: grubby, the BLS setup's regenerate command,
    // would put them on every entry.
    if (s.loader == Loader::grub_bls) {
        auto prog = h.find_program("grub2-reboot");
        if (!prog) prog = h.find_program("grub-reboot");
        tp.oneshot_found = prog.has_value();
        tp.oneshot_argv = {prog.value_or("grub2-reboot"), k_trial_entry_id};
        return tp;
    }
    auto prog = h.find_program("bootctl");
    tp.oneshot_found = prog.has_value();
    tp.oneshot_argv = {prog.value_or("bootctl"), "set-oneshot", k_trial_loader_entry};
    return tp;
}

// Whether the one-shot entry is still scheduled: nullopt when it cannot be read.
std::optional<bool> oneshot_scheduled(const host::Host& h, const BootSetup& s,
                                      const std::string& entry) {
    switch (oneshot_of(s)) {
    case OneShot::grub:
    case OneShot::grub_bls: {
        auto t = h.read(grubenv_path(s));
        if (!t) return std::nullopt;
        auto env = read_grubenv(*t);
        auto it = env.find("next_entry");
        return it != env.end() && it->second == entry;
    }
    case OneShot::systemd_boot: {
        if (!h.is_dir("/sys/firmware/efi/efivars")) return std::nullopt;
        if (!h.exists(k_loader_oneshot_var)) return false;
        auto t = h.read(k_loader_oneshot_var);
        if (!t || t->size() < 4) return std::nullopt;
        // 4 bytes of attributes, then UTF-16LE.
        std::string name;
        for (size_t i = 4; i + 1 < t->size(); i += 2) {
            char c = (*t)[i];
            if (c == 0 && (*t)[i + 1] == 0) break;
            name += c;
        }
        return name == k_trial_loader_entry;
    }
    case OneShot::none:
        break;
    }
    return std::nullopt;
}

} // namespace

OneShot oneshot_of(const BootSetup& s) {
    if (s.loader == Loader::grub) return OneShot::grub;
    if (s.loader == Loader::grub_bls) return OneShot::grub_bls;
    if (s.loader == Loader::systemd_boot) return OneShot::systemd_boot;
    return OneShot::none;
}

std::string no_oneshot_reason(const BootSetup& s) {
    switch (s.loader) {
    case Loader::grub:
    case Loader::grub_bls:
    case Loader::systemd_boot:
        return "";
    case Loader::kernelstub:
        return "kernelstub keeps one entry per kernel and has no one-shot boot";
    case Loader::proxmox:
        return "proxmox-boot-tool has no one-shot boot vfioctl can use";
    case Loader::nixos:
    case Loader::unknown:
        return "vfioctl does not edit this boot setup";
    }
    return "unknown boot loader";
}

Result<TrialPlan> plan_trial(const host::Host& h, const BootSetup& s, const Goal& goal,
                             const std::string& marker, int panic_s) {
    switch (oneshot_of(s)) {
    case OneShot::grub:
        return plan_grub(h, s, goal, marker, panic_s);
    case OneShot::grub_bls:
    case OneShot::systemd_boot:
        return plan_loader_entry(h, s, goal, marker, panic_s);
    case OneShot::none:
        break;
    }
    return Error{"no trial boot: " + no_oneshot_reason(s),
                 {},
                 "use --permanent to change the default entry at once",
                 0};
}

std::vector<std::string> cancel_oneshot_argv(const host::Host& h, const BootSetup& s) {
    const bool grub = oneshot_of(s) == OneShot::grub || oneshot_of(s) == OneShot::grub_bls;
    if (oneshot_scheduled(h, s, grub ? k_trial_entry_id : k_trial_loader_entry) != true) return {};
    if (grub) {
        auto p = h.find_program("grub-editenv");
        if (!p) p = h.find_program("grub2-editenv");
        return {p.value_or("grub-editenv"), grubenv_path(s), "unset", "next_entry"};
    }
    return {h.find_program("bootctl").value_or("bootctl"), "set-oneshot", ""};
}

const char* trial_state_id(TrialState s) {
    switch (s) {
    case TrialState::none:
        return "none";
    case TrialState::pending:
        return "pending";
    case TrialState::running:
        return "running";
    case TrialState::not_back:
        return "not_back";
    case TrialState::unknown:
        return "unknown";
    }
    return "unknown";
}

const Operation* open_trial(const Journal& j) {
    for (auto it = j.operations.rbegin(); it != j.operations.rend(); ++it)
        if (it->action == "trial" && it->trial && (it->state == "done" || it->state == "pending"))
            return &*it;
    return nullptr;
}

TrialView trial_view(const host::Host& h, const Journal& j, const BootSetup& s) {
    TrialView v;
    const Operation* op = open_trial(j);
    if (!op) return v;
    v.op = *op;
    const TrialInfo& t = *op->trial;
    const std::string what = "the trial boot (operation " + op->id + ", " + t.cmdline + ")";
    std::string running;
    bool running_known = false;
    if (auto r = h.read("/proc/cmdline")) {
        running = std::string(util::trim(*r));
        running_known = true;
    }
    const std::string mark = std::string(k_trial_param) + "=" + t.marker;
    auto words = util::split_ws(running);
    if (std::find(words.begin(), words.end(), mark) != words.end()) {
        v.state = TrialState::running;
        v.words = "this boot is " + what;
        v.next = "check it, then 'vfioctl iommu confirm' makes its command line the default; "
                 "'vfioctl iommu revert' drops it";
        return v;
    }
    auto now = vfio::current_boot(h);
    auto then = vfio::BootId::parse(t.boot_id).value_or(vfio::BootId{});
    auto scheduled = oneshot_scheduled(h, s, t.entry);
    const std::string oneshot_cmd = util::join(t.oneshot, " ");
    if (now.same_known(then) || scheduled == true) {
        v.state = TrialState::pending;
        v.words = what + " is the next boot";
        if (scheduled == false)
            v.words += ", but its one-shot is not set (" + oneshot_cmd + " was not run here)";
        v.next = "reboot to try it; 'vfioctl iommu revert' cancels it";
        return v;
    }
    if (!running_known || !now.known() || !then.known() || !scheduled) {
        v.state = TrialState::unknown;
        v.words = "cannot tell whether " + what + " ran: " +
                  (!running_known                  ? std::string("/proc/cmdline cannot be read")
                   : !now.known() || !then.known() ? std::string("the boot id is unknown")
                                                   : std::string("the one-shot cannot be read"));
        v.next = "'vfioctl iommu revert' drops the trial";
        return v;
    }
    v.state = TrialState::not_back;
    v.words = what + " did not come back: its one-shot was used and this boot runs the default "
                     "entry's command line again; nothing was made permanent";
    v.next = "find why it failed, then 'vfioctl iommu revert' removes the trial entry and "
             "'vfioctl iommu enable' schedules another";
    v.look_at = {"journalctl -k -b -1 (the kernel log of the boot before this one, when the "
                 "journal is kept on disk)",
                 "the serial console or the BMC's console log of that boot",
                 "/sys/fs/pstore or /var/lib/systemd/pstore (a panic's log, where the firmware "
                 "keeps one)"};
    if (t.panic_s > 0)
        v.look_at.push_back("a panic rebooted it after " + std::to_string(t.panic_s) +
                            " s (panic=" + std::to_string(t.panic_s) +
                            "); a hang needs a power cycle");
    return v;
}

} // namespace vfioctl::boot
