#include "boot/apply.hpp"

#include "host/files.hpp"
#include "util/fault.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

#include <algorithm>

namespace vfioctl::boot {

namespace {

// The last n characters of s.
std::string tail(const std::string& s, size_t n) {
    return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

// Puts back edits [0, upto): their text, a created file removed, a removed
// one written again; returns what could not be put back.
std::vector<std::string> restore(const host::Host& h, const Plan& plan, size_t upto,
                                 const std::vector<AppliedFile>& backups) {
    std::vector<std::string> failed;
    for (size_t i = 0; i < upto && i < plan.edits.size(); ++i) {
        const FileEdit& e = plan.edits[i];
        Status st = e.created ? h.remove(e.path)
                              : host::replace_file(h, e.path, e.before, "boot.restore", e.mode);
        if (!st)
            failed.push_back(e.path + " (" + st.error().describe() + "; its backup is " +
                             (i < backups.size() && !backups[i].backup.empty()
                                  ? backups[i].backup
                                  : std::string("missing")) +
                             ")");
    }
    return failed;
}

// Whether the file at e.path is what the plan expects to find: absent for
// a created file, e.before otherwise. An Error when it is not.
Status expect_before(const host::Host& h, const FileEdit& e, const std::string& hint) {
    if (e.created) {
        auto st = host::stat_file(h, e.path);
        if (!st) return st.error();
        if (st->exists)
            return Error{"the file vfioctl would create is there already", e.path, hint, 0};
        return {};
    }
    auto now = h.read(e.path);
    if (!now) return now.error();
    if (*now != e.before)
        return Error{"the file changed while vfioctl was planning", e.path, hint, 0};
    return {};
}

// Makes one edit: writes, creates or removes the file.
Status make_edit(const host::Host& h, const FileEdit& e) {
    if (e.removed) return h.remove(e.path);
    if (e.created) {
        auto dir = e.path.substr(0, e.path.rfind('/'));
        if (!dir.empty())
            if (Status st = host::make_directories(h, dir); !st) return st;
    }
    return host::replace_file(h, e.path, e.after, "boot.file", e.mode);
}

// Marks op id with state and saves; a failure becomes a warning.
void mark(const host::Host& h, const std::string& state_dir, Journal& j, const std::string& id,
          const std::string& state, std::vector<std::string>& warnings) {
    if (Operation* o = j.find(id)) o->state = state;
    if (Status st = save_journal(h, state_dir, j); !st)
        warnings.push_back("could not record '" + state +
                           "' in the journal: " + st.error().describe());
}

} // namespace

Result<host::RunOutput> HostRunner::run(const std::vector<std::string>& argv) {
    return m_host.run(argv, m_timeout_ms);
}

std::string now_stamp() {
    return util::utc_now("%Y%m%d-%H%M%S");
}

Result<ApplyResult> apply_plan(const host::Host& h, const BootSetup& setup, const Plan& plan,
                               const std::string& action, const ApplyOptions& opt,
                               const std::string& reverts) {
    ApplyResult res;
    const std::string stamp = opt.stamp.empty() ? now_stamp() : opt.stamp;
    auto regen =
        opt.regenerate ? regenerate_command(h, setup, plan.added, plan.removed) : Regenerate{};
    res.regenerate = regen.argv;
    if (opt.runner && !regen.argv.empty() && !regen.found)
        return Error{"cannot regenerate the boot loader's configuration: " + regen.missing +
                         " is not installed",
                     {},
                     "install it and retry; nothing was changed",
                     0};

    // Everything is checked before anything is changed.
    for (const auto& e : plan.edits) {
        if (Status st = expect_before(h, e, "run the command again"); !st) return st.error();
        if (e.created) continue;
        auto st = host::stat_file(h, e.path);
        if (!st) return st.error();
        if ((st->mode & 0222) == 0) {
            char m[16];
            (void)std::snprintf(m, sizeof m, "%04o", st->mode);
            return Error{std::string("the file is read-only (mode ") + m + ")", e.path,
                         "make it writable (chmod u+w " + e.path +
                             ") if it should change; nothing was changed",
                         0};
        }
    }
    if (Status st = host::make_directories(h, opt.state_dir); !st) {
        Error e = st.error();
        e.hint = (e.hint.empty() ? "" : e.hint + "; ") + "nothing was changed";
        return e;
    }
    auto lock = host::FileLock::acquire(h, opt.state_dir + "/boot.lock", 5000);
    if (!lock) return lock.error();
    // Again under the lock: another vfioctl may have changed the file
    // between the check above and the lock (two enables at once: the second
    // backed up the first one's result as "before" and wrote a journal entry
    // that revert could not use).
    for (const auto& e : plan.edits)
        if (Status st = expect_before(h, e,
                                      "another vfioctl at work? run the command again; nothing "
                                      "was changed");
            !st)
            return st.error();
    auto journal = load_journal(h, opt.state_dir);
    if (!journal) return journal.error();
    std::string id = stamp;
    for (int n = 2; journal->find(id); ++n)
        id = stamp + "-" + std::to_string(n);
    res.id = id;

    // 1. Backups.
    for (const auto& e : plan.edits) {
        // A created file has nothing to back up; a removed file vfioctl
        // owns whole goes into the journal itself (no backup beside it).
        if (e.created || (e.removed && e.format == Format::whole_file)) {
            res.files.push_back({e.path, ""});
            continue;
        }
        auto b = host::backup_file(h, e.path, id);
        if (!b) {
            Error err = b.error();
            err.hint = (err.hint.empty() ? "" : err.hint + "; ") + "nothing was changed";
            for (const auto& done : res.files)
                if (!done.backup.empty()) (void)h.remove(done.backup);
            return err;
        }
        res.files.push_back({e.path, *b});
    }
    util::fault_point("boot.backups.done");

    // 2. The journal entry, before any file changes.
    Operation op;
    op.id = id;
    op.action = action;
    op.time = util::utc_now();
    op.loader = loader_id(setup.loader);
    op.state = "pending";
    op.reverts = reverts;
    op.regenerate = regen.argv;
    op.added = plan.added;
    op.removed = plan.removed;
    op.changes = plan.changes;
    op.trial = opt.trial;
    for (size_t i = 0; i < plan.edits.size(); ++i) {
        const FileEdit& e = plan.edits[i];
        JournalFile jf{e.path, e.format, res.files[i].backup, fingerprint(e.before),
                       fingerprint(e.after)};
        jf.created = e.created;
        jf.removed = e.removed;
        jf.mode = e.mode;
        if (e.removed && e.format == Format::whole_file) jf.content = e.before;
        op.files.push_back(std::move(jf));
    }
    journal->operations.push_back(op);
    if (Status st = save_journal(h, opt.state_dir, *journal); !st) {
        Error err = st.error();
        std::vector<std::string> b;
        for (const auto& f : res.files)
            b.push_back(f.backup);
        err.hint = (err.hint.empty() ? "" : err.hint + "; ") +
                   "nothing was changed (backups left: " + util::join(b, ", ") + ")";
        return err;
    }
    util::fault_point("boot.journal.pending");

    // 3. The files.
    for (size_t i = 0; i < plan.edits.size(); ++i) {
        Status st = make_edit(h, plan.edits[i]);
        if (!st) {
            auto failed = restore(h, plan, i, res.files);
            mark(h, opt.state_dir, *journal, id, failed.empty() ? "rolled_back" : "pending",
                 res.warnings);
            Error err = st.error();
            std::string what = failed.empty() ? "every file is as it was"
                                              : "could not put back: " + util::join(failed, "; ");
            err.hint = (err.hint.empty() ? "" : err.hint + "; ") + what;
            return err;
        }
        util::fault_point("boot.file.done");
    }

    // 4. The boot loader's own files.
    if (opt.regenerate && opt.runner && !regen.argv.empty() && !plan.edits.empty()) {
        util::fault_point("boot.regenerate");
        auto out = opt.runner->run(regen.argv);
        res.regenerate_ran = true;
        if (out) res.regenerate_output = *out;
        if (!out || out->exit_code != 0) {
            auto failed = restore(h, plan, plan.edits.size(), res.files);
            mark(h, opt.state_dir, *journal, id, failed.empty() ? "rolled_back" : "pending",
                 res.warnings);
            std::string cmd = util::join(regen.argv, " ");
            Error err{out ? "'" + cmd + "' failed with exit code " + std::to_string(out->exit_code)
                          : "'" + cmd + "' could not run: " + out.error().describe(),
                      {},
                      {},
                      0};
            std::string said = out ? std::string(util::trim(tail(out->output, 4000))) : "";
            err.hint = (said.empty() ? std::string() : "it said:\n" + said + "\n") +
                       (failed.empty()
                            ? "the configuration files were put back as they were (backups kept)"
                            : "could not put back: " + util::join(failed, "; "));
            return err;
        }
    }

    // 5. Done.
    if (Operation* o = journal->find(id)) o->state = "done";
    if (!reverts.empty())
        if (Operation* o = journal->find(reverts)) {
            o->state = "reverted";
            o->reverted_by = id;
        }
    if (Status st = save_journal(h, opt.state_dir, *journal); !st)
        res.warnings.push_back("the change is made, but the journal still says 'pending': " +
                               st.error().describe());
    util::fault_point("boot.done");
    return res;
}

namespace {

// Plans undoing a file op created or removed: a created file that is as
// vfioctl wrote it goes, a removed one comes back from its backup. One
// changed since, or there again, is left as it is, with a note.
Status revert_whole(const host::Host& h, const Operation& op, const JournalFile& f,
                    RevertPlan& rp) {
    auto st = host::stat_file(h, f.path);
    if (!st) return st.error();
    if (f.created) {
        if (!st->exists) {
            rp.untouched.push_back(f.path);
            return {};
        }
        auto now = h.read(f.path);
        if (!now) return now.error();
        if (fingerprint(*now) != f.after) {
            rp.untouched.push_back(f.path);
            rp.plan.notes.push_back(f.path + " changed since '" + op.action +
                                    "' created it; left as it is (remove it by hand if it "
                                    "should go)");
            return {};
        }
        FileEdit e{f.path, f.format, *now, ""};
        e.removed = true;
        e.mode = st->mode;
        rp.plan.edits.push_back(std::move(e));
        rp.exact.push_back(f.path);
        return {};
    }
    if (st->exists) {
        rp.untouched.push_back(f.path);
        rp.plan.notes.push_back(f.path + " is there again since '" + op.action +
                                "' removed it; left as it is");
        return {};
    }
    // Kept in the journal (a file vfioctl owns whole), or as a backup.
    Result<std::string> b = f.content;
    if (!f.backup.empty()) b = h.read(f.backup);
    if (!b) {
        Error e = b.error();
        e.hint = "the backup taken before " + op.action + " is missing; nothing was changed";
        return e;
    }
    if (fingerprint(*b) != f.before)
        return Error{"the backup no longer holds what the file held before " + op.action,
                     f.backup.empty() ? std::string("the journal") : f.backup,
                     "restore it by hand; nothing was changed", 0};
    FileEdit e{f.path, f.format, "", *b};
    e.created = true;
    e.mode = f.mode;
    rp.plan.edits.push_back(std::move(e));
    rp.exact.push_back(f.path);
    return {};
}

} // namespace

Result<RevertPlan> plan_revert(const host::Host& h, std::string_view state_dir) {
    auto journal = load_journal(h, state_dir);
    if (!journal) return journal.error();
    const Operation* op = journal->last_undoable();
    if (!op)
        return Error{"nothing to revert: the journal records no change by 'vfioctl iommu' that is "
                     "still in place",
                     journal_path(state_dir), "'vfioctl iommu show' shows the boot configuration",
                     0};
    RevertPlan rp;
    rp.undoes = *op;
    std::vector<ParamSet> merged_sets;
    std::vector<ParamChange> merged_changes;
    for (const auto& f : op->files) {
        if (f.created || f.removed) {
            auto r = revert_whole(h, *op, f, rp);
            if (!r) return r.error();
            continue;
        }
        auto now = h.read(f.path);
        if (!now) {
            Error e = now.error();
            e.hint = "the file vfioctl changed is gone; its backup is " + f.backup;
            return e;
        }
        Fingerprint fp = fingerprint(*now);
        if (fp == f.before) {
            rp.untouched.push_back(f.path);
            continue;
        }
        if (fp == f.after) {
            auto b = h.read(f.backup);
            if (!b) {
                Error e = b.error();
                e.hint =
                    "the backup taken before " + op->action + " is missing; nothing was changed";
                return e;
            }
            if (fingerprint(*b) != f.before)
                return Error{"the backup no longer holds what the file held before " + op->action,
                             f.backup,
                             "restore it by hand or edit " + f.path + "; nothing was changed", 0};
            rp.plan.edits.push_back({f.path, f.format, *now, *b});
            rp.exact.push_back(f.path);
            continue;
        }
        if (f.format == Format::whole_file) {
            rp.untouched.push_back(f.path);
            rp.plan.notes.push_back(f.path + " changed since '" + op->action + "'; left as it is");
            continue;
        }
        // Changed since: undo only vfioctl's own parameters.
        rp.merged.push_back(f.path);
        merged_sets.emplace_back(f.path, std::vector<ConfigFile>{{f.path, f.format, *now}});
        for (const auto& c : op->changes)
            if (c.path == f.path) merged_changes.push_back(c);
    }
    if (!merged_sets.empty()) {
        auto inv = plan_inverse(merged_sets, merged_changes);
        if (!inv) return inv.error();
        for (auto& e : inv->edits)
            rp.plan.edits.push_back(std::move(e));
        for (auto& n : inv->notes)
            rp.plan.notes.push_back(std::move(n));
        rp.plan.changes = inv->changes;
    }
    // The regenerate command undoes what the operation did.
    rp.plan.added = op->removed;
    rp.plan.removed = op->added;
    for (const auto& c : op->changes)
        if (std::find(rp.merged.begin(), rp.merged.end(), c.path) == rp.merged.end())
            rp.plan.changes.push_back({c.path, c.variable, c.added, c.removed});
    return rp;
}

} // namespace vfioctl::boot
