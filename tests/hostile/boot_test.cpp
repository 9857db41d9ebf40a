// Category 4: boot files. /etc/default/grub (lone CR, CRLF, open quotes,
// bytes that are not UTF-8, huge values, links out of the tree, a FIFO,
// command substitutions), BLS entries, systemd-boot's entries and
// /etc/kernel/cmdline, kernelstub's JSON, proxmox. 'iommu show' and
// 'status' answer without writing; 'iommu enable' either refuses and
// changes nothing (but its lock), or edits files inside the tree, keeps a
// backup of each with its old bytes, and 'iommu revert' puts them back.

#include "hostile.hpp"

#include <ctime>
#include <fstream>
#include <sys/stat.h>
#include <tuple>

namespace vfioctl::hostile {
namespace {

const std::string k_grub = "/etc/default/grub";

Mutation put(std::string path, std::string data) {
    return [path, data](Env& e) {
        e.tree.remove(path);
        e.tree.write(path, data);
    };
}
Mutation edit(std::string path, std::function<std::string(const std::string&)> f) {
    return [path, f](Env& e) { e.tree.write(path, f(e.tree.read(path))); };
}
std::string replace(std::string s, const std::string& from, const std::string& to) {
    const auto at = s.find(from);
    if (at == std::string::npos) throw std::runtime_error("no '" + from + "' to replace");
    return s.replace(at, from.size(), to);
}
Mutation then(Mutation a, Mutation b) {
    return [a, b](Env& e) {
        if (a) a(e);
        if (b) b(e);
    };
}
// The boot files of a case of tests/corpus/boot in place of the fixture's GRUB.
Mutation corpus(std::string name) {
    return [name](Env& e) {
        e.tree.remove(k_grub);
        const fs::path from = fs::path(VFIOCTL_SOURCE_DIR) / "tests/corpus/boot" / name;
        fs::copy(from, e.tree.root(),
                 fs::copy_options::recursive | fs::copy_options::copy_symlinks |
                     fs::copy_options::overwrite_existing);
    };
}
// A link at path: absolute into the sentinel, or climbing out of the tree.
Mutation link_out(std::string path, bool absolute) {
    return [path, absolute](Env& e) {
        e.tree.remove(path);
        e.tree.symlink(path, absolute ? e.in_sentinel("secret") : e.up_to_sentinel(path, "secret"));
    };
}

bool under(const std::string& rel, const std::string& dir) {
    return rel == dir || rel.rfind(dir + "/", 0) == 0;
}

// Runs 'iommu enable --yes' and checks what it did to the tree: a refusal
// changes nothing but the lock under /var/lib/vfioctl; a success changes
// only existing files under etc/ and boot/, each with a new backup holding
// its old bytes, and 'iommu revert' puts every one of them back.
void enable_and_revert(Env& e) {
    const TreeState before = tree_state(e.tree.root());
    const std::vector<std::string> args = {"iommu", "enable", "--permanent", "--yes"};
    const Outcome o = run(e, args);
    SCOPED_TRACE("vfioctl --root TREE iommu enable --yes");
    expect_sound(e, args, o, {0, 1});
    const TreeState after = tree_state(e.tree.root());
    std::vector<std::string> edited;
    for (const auto& [k, v] : before) {
        auto it = after.find(k);
        if (it == after.end()) {
            ADD_FAILURE() << "enable removed " << k;
            continue;
        }
        if (it->second == v) continue;
        if (under(k, "var/lib/vfioctl")) continue;
        EXPECT_EQ(o.exit_code, 0) << "a refused enable changed " << k << "\n" << o.err;
        EXPECT_TRUE(under(k, "etc") || under(k, "boot")) << "enable changed " << k;
        edited.push_back(k);
        // Its backup: a new file with the old bytes.
        bool backed_up = false;
        for (const auto& [b, bv] : after)
            if (!before.count(b) && bv == v) backed_up = true;
        EXPECT_TRUE(backed_up) << "no backup of " << k << " holds its old bytes";
    }
    for (const auto& [k, v] : after) {
        if (before.count(k) || under(k, "var")) continue;
        EXPECT_EQ(o.exit_code, 0) << "a refused enable made " << k;
        EXPECT_NE(k.find(".vfioctl-backup-"), std::string::npos)
            << "enable made " << k << " (no backup)";
    }
    if (o.exit_code != 0 || edited.empty()) return;
    const std::vector<std::string> rargs = {"iommu", "revert", "--yes"};
    const Outcome r = run(e, rargs);
    SCOPED_TRACE("vfioctl --root TREE iommu revert --yes");
    expect_sound(e, rargs, r, {0});
    const TreeState reverted = tree_state(e.tree.root());
    for (const auto& k : edited) {
        auto it = reverted.find(k);
        ASSERT_NE(it, reverted.end()) << k << " is gone after revert";
        EXPECT_TRUE(it->second == before.at(k)) << "revert did not restore " << k;
    }
}

// Runs 'iommu enable --yes' as a trial on a tree with a grub.cfg: a
// refusal changes nothing but the lock; a success changes no existing file
// (the default entry and its configuration stay) and creates only the
// trial entry inside the tree, which 'iommu revert' removes again.
void trial_and_revert(Env& e, int want_exit) {
    const TreeState before = tree_state(e.tree.root());
    const std::vector<std::string> args = {"iommu", "enable", "--yes"};
    const Outcome o = run(e, args);
    SCOPED_TRACE("vfioctl --root TREE iommu enable --yes (a trial)");
    expect_sound(e, args, o, {want_exit});
    const TreeState after = tree_state(e.tree.root());
    for (const auto& [k, v] : before) {
        auto it = after.find(k);
        if (it == after.end()) {
            ADD_FAILURE() << "the trial removed " << k;
            continue;
        }
        if (!under(k, "var/lib/vfioctl")) {
            EXPECT_TRUE(it->second == v) << "the trial changed " << k;
        }
    }
    const std::string script = "etc/grub.d/42_vfioctl_trial";
    for (const auto& [k, v] : after) {
        // The state directory and its parents; /etc/grub.d when the tree had none.
        if (before.count(k) || under(k, "var") || k == "etc/grub.d") continue;
        EXPECT_EQ(o.exit_code, 0) << "a refused trial made " << k;
        EXPECT_EQ(k, script) << "the trial made " << k;
    }
    if (o.exit_code != 0) return;
    EXPECT_TRUE(after.count(script)) << "a trial that succeeded made no " << script << "\n"
                                     << o.out;
    const std::vector<std::string> rargs = {"iommu", "revert", "--yes"};
    const Outcome r = run(e, rargs);
    SCOPED_TRACE("vfioctl --root TREE iommu revert --yes (the trial)");
    expect_sound(e, rargs, r, {0});
    const TreeState reverted = tree_state(e.tree.root());
    EXPECT_FALSE(reverted.count(script)) << "revert left " << script;
    for (const auto& [k, v] : before) {
        auto it = reverted.find(k);
        ASSERT_NE(it, reverted.end()) << k << " is gone after revert";
        if (!under(k, "var/lib/vfioctl")) {
            EXPECT_TRUE(it->second == v) << "revert changed " << k;
        }
    }
}

// Debian's grub.cfg (tests/corpus/boot/debian12) with the seed's parameters.
std::string debian_grub_cfg() {
    std::ifstream in(fs::path(VFIOCTL_SOURCE_DIR) / "tests/corpus/boot/debian12/boot/grub/grub.cfg",
                     std::ios::binary);
    std::string t((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return replace(t, "ro  quiet", "ro  quiet intel_iommu=off iommu=pt");
}

// grub.cfg and /etc/grub.d as a trial meets them on hostile hosts.
// Each with the exit code 'iommu enable' must give: 0 (a trial), 1 (refused).
std::vector<std::tuple<std::string, Mutation, int>> trial_mutations() {
    const std::string cfg = "/boot/grub/grub.cfg";
    auto with_cfg = [cfg](const std::function<std::string(const std::string&)>& f) -> Mutation {
        return [cfg, f](Env& e) {
            e.tree.remove(cfg);
            e.tree.write(cfg, f(debian_grub_cfg()));
        };
    };
    auto plain = with_cfg([](const std::string& t) { return t; });
    return {
        {"trial_plain", plain, 0},
        {"trial_grub_cfg_crlf", with_cfg([](const std::string& t) {
             std::string out;
             for (char c : t)
                 out += c == '\n' ? std::string("\r\n") : std::string(1, c);
             return out;
         }),
         0},
        {"trial_grub_cfg_not_utf8", with_cfg([](const std::string& t) {
             return replace(t, "ro  quiet", "ro \xff\xfe quiet");
         }),
         0},
        {"trial_grub_cfg_quote_in_cmdline",
         with_cfg([](const std::string& t) { return replace(t, "ro  quiet", "ro it's quiet"); }),
         1},
        {"trial_grub_cfg_heredoc_end_line", with_cfg([](const std::string& t) {
             return replace(t, "\tload_video\n", "\tload_video\nVFIOCTL_TRIAL_ENTRY\n");
         }),
         1},
        {"trial_grub_cfg_no_entry", with_cfg([](const std::string&) {
             return std::string("set default=0\nfunction f {\n}\n");
         }),
         1},
        {"trial_grub_cfg_unclosed_entry",
         with_cfg([](const std::string& t) { return t.substr(0, t.find("\tinitrd")); }), 1},
        {"trial_grub_cfg_link_out", then(plain, link_out(cfg, false)), 1},
        {"trial_grub_cfg_link_out_absolute", then(plain, link_out(cfg, true)), 1},
        {"trial_grub_d_link_out",
         then(plain,
              [](Env& e) {
                  e.tree.remove("/etc/grub.d");
                  e.tree.symlink("/etc/grub.d", e.up_to_sentinel("/etc/grub.d", "."));
              }),
         1},
        {"trial_script_there_already",
         then(plain, put("/etc/grub.d/42_vfioctl_trial", "#!/bin/sh\n# the user's\n")), 1},
    };
}

struct B {
    std::string name;
    Mutation mutate;
    bool status = false; // also 'status --json'
};

std::vector<B> boot_mutations() {
    return {
        // GRUB's shell file.
        {"grub_lone_cr_on_last_line",
         edit(k_grub, [](const std::string& t) { return t.substr(0, t.size() - 1) + "\r"; }), true},
        {"grub_crlf",
         edit(k_grub,
              [](const std::string& t) {
                  std::string out;
                  for (char c : t)
                      out += c == '\n' ? std::string("\r\n") : std::string(1, c);
                  return out;
              }),
         true},
        {"grub_unterminated_quote",
         edit(k_grub,
              [](const std::string& t) {
                  return replace(t, "\"intel_iommu=off iommu=pt\"", "\"intel_iommu=off iommu=pt");
              }),
         true},
        {"grub_not_utf8",
         edit(k_grub,
              [](const std::string& t) {
                  return replace(t, "intel_iommu=off iommu=pt",
                                 "intel_iommu=off \xff\xfe\xc0 iommu=pt");
              }),
         true},
        {"grub_escapes_in_value",
         edit(k_grub,
              [](const std::string& t) {
                  return replace(t, "intel_iommu=off iommu=pt",
                                 "intel_iommu=off " + k_osc + k_c1 + " iommu=pt");
              }),
         true},
        {"grub_megabyte_value",
         edit(k_grub,
              [](const std::string& t) {
                  return replace(t, "intel_iommu=off iommu=pt",
                                 "intel_iommu=off iommu=pt " + std::string(1 << 20, 'q'));
              }),
         true},
        {"grub_nul_bytes",
         edit(k_grub,
              [](const std::string& t) {
                  return replace(t, "GRUB_TIMEOUT=0", std::string("GRUB_TIMEOUT=0\0\0\0", 17));
              }),
         true},
        {"grub_defined_twice",
         edit(k_grub,
              [](const std::string& t) {
                  return t + "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=off\"\n";
              }),
         true},
        {"grub_command_substitution",
         [](Env& e) {
             const std::string marker = (e.scratch.path / "pwned").string();
             e.tree.write(k_grub, replace(e.tree.read(k_grub), "\"intel_iommu=off iommu=pt\"",
                                          "\"$(touch " + marker + ") `touch " + marker +
                                              "` intel_iommu=off iommu=pt\""));
         },
         true},
        {"grub_backslash_at_eof",
         edit(k_grub, [](const std::string& t) { return t + "GRUB_CMDLINE_LINUX=\"a \\"; }), true},
        {"grub_empty", put(k_grub, ""), true},
        {"grub_directory",
         [](Env& e) {
             e.tree.remove(k_grub);
             e.tree.mkdir(k_grub);
         },
         true},
        {"grub_fifo",
         [](Env& e) {
             e.tree.remove(k_grub);
             if (::mkfifo(e.tree.path(k_grub).c_str(), 0644) != 0)
                 throw std::runtime_error("mkfifo");
         },
         true},
        {"grub_link_out_absolute", link_out(k_grub, true), true},
        {"grub_link_out_relative", link_out(k_grub, false), true},
        {"grub_link_inside_the_tree",
         [](Env& e) {
             e.tree.write("/etc/grub.real", e.tree.read(k_grub));
             e.tree.remove(k_grub);
             e.tree.symlink(k_grub, "/etc/grub.real");
         }},
        {"grub_dir_link_out",
         [](Env& e) {
             // /etc/default itself leads into the sentinel's directory.
             e.tree.remove("/etc/default");
             e.tree.symlink("/etc/default", e.sentinel->dir.string());
         }},
        {"grub_dropin_garbage",
         [](Env& e) {
             e.tree.write("/etc/default/grub.d/50-evil.cfg",
                          "GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT " + k_osc +
                              "\n\xff\n");
             e.tree.write("/etc/debian_version", "12.5\n");
         }},
        {"grub_dropin_link_out",
         [](Env& e) {
             e.tree.symlink("/etc/default/grub.d/60-out.cfg", e.in_sentinel("secret"));
             e.tree.write("/etc/debian_version", "12.5\n");
         }},
        {"grub_backup_name_taken_by_links",
         [](Env& e) {
             // Every backup name of the next minutes already a link into the sentinel.
             const std::time_t now = std::time(nullptr);
             for (int s = -5; s < 120; ++s) {
                 std::time_t t = now + s;
                 char stamp[32];
                 std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&t));
                 e.tree.symlink(k_grub + ".vfioctl-backup-" + stamp, e.in_sentinel("secret"));
             }
         }},
        {"grub_cfg_garbage",
         put_made("/boot/grub/grub.cfg",
                  [] { return "menuentry {\n\xff\x01 linux\n" + std::string(100000, '{'); })},
        // GRUB with BLS entries (Fedora).
        {"bls_entry_garbage",
         then(corpus("fedora39"), put("/boot/loader/entries/zz-evil.conf",
                                      "\x01\x02 linux\noptions " + k_osc + "\xff\n"))},
        {"bls_entry_megabyte_options",
         then(corpus("fedora39"), put_made("/boot/loader/entries/zz-big.conf",
                                           [] {
                                               return "title big\nlinux /vmlinuz\noptions " +
                                                      std::string(1 << 20, 'o') + "\n";
                                           }))},
        {"bls_entry_link_out", then(corpus("fedora39"),
                                    [](Env& e) {
                                        e.tree.symlink("/boot/loader/entries/zz-out.conf",
                                                       e.in_sentinel("secret"));
                                    })},
        {"bls_entry_name_escape",
         then(corpus("fedora39"),
              put("/boot/loader/entries/zz" + k_osc + ".conf", "title x\nlinux /v\noptions ro\n"))},
        {"bls_grubenv_garbage",
         then(corpus("fedora39"),
              put("/boot/grub2/grubenv",
                  std::string(1024, '#') + "\nsaved_entry=../../../../etc/shadow\n"))},
        // systemd-boot and /etc/kernel/cmdline.
        {"sdboot_kernel_cmdline_crlf",
         then(corpus("arch-systemd-boot"),
              put("/etc/kernel/cmdline", "root=UUID=1 rw intel_iommu=off\r\n"))},
        {"sdboot_kernel_cmdline_nul",
         then(corpus("arch-systemd-boot"),
              put("/etc/kernel/cmdline", std::string("root=UUID=1\0rw intel_iommu=off\n", 32)))},
        {"sdboot_kernel_cmdline_link_out",
         then(corpus("arch-systemd-boot"), link_out("/etc/kernel/cmdline", true))},
        {"sdboot_default_glob_hostile",
         then(corpus("arch-systemd-boot"),
              put("/boot/loader/loader.conf", "default [[[[*\\\ntimeout 4\n"))},
        {"sdboot_entry_without_linux",
         then(corpus("arch-systemd-boot"),
              put("/boot/loader/entries/arch.conf", "title UKI\nefi /EFI/Linux/arch.efi\n"))},
        {"sdboot_entries_dir_link_out", then(corpus("arch-systemd-boot"),
                                             [](Env& e) {
                                                 e.tree.remove("/boot/loader/entries");
                                                 e.tree.symlink("/boot/loader/entries",
                                                                e.sentinel->dir.string() + "/lib");
                                             })},
        // kernelstub (Pop!_OS).
        {"kernelstub_truncated_json",
         then(corpus("popos"),
              edit("/etc/kernelstub/configuration",
                   [](const std::string& t) { return t.substr(0, t.size() / 2); }))},
        {"kernelstub_wrong_types",
         then(corpus("popos"),
              put("/etc/kernelstub/configuration",
                  R"({"user": {"kernel_options": "intel_iommu=off", "esp_path": 42}})"))},
        {"kernelstub_options_not_strings",
         then(corpus("popos"),
              put("/etc/kernelstub/configuration",
                  R"({"user": {"kernel_options": [1, null, {"a": []}, "intel_iommu=off"]}})"))},
        {"kernelstub_nul_bytes", then(corpus("popos"), put("/etc/kernelstub/configuration",
                                                           std::string("{\"user\": {\0\0}}", 15)))},
        {"kernelstub_esp_path_out",
         then(
             corpus("popos"),
             [](Env& e) {
                 e.tree.write(
                     "/etc/kernelstub/configuration",
                     R"({"user": {"kernel_options": ["quiet", "intel_iommu=off"], "esp_path": "../../../../../../../../)" +
                         e.sentinel->name() + R"("}})");
             })},
        {"kernelstub_link_out",
         then(corpus("popos"), link_out("/etc/kernelstub/configuration", false))},
        // proxmox-boot-tool and NixOS.
        {"proxmox_cmdline_garbage",
         then(corpus("proxmox"), put("/etc/kernel/cmdline",
                                     "\xff\xfe" + k_csi + " root=ZFS=rpool intel_iommu=off\n"))},
        {"nixos_marker_with_grub", put("/etc/NIXOS", "")},
    };
}

std::vector<Case> boot_cases() {
    std::vector<Case> v;
    for (const auto& b : boot_mutations()) {
        Check no_substitution = [](Env& e, const Outcome&) {
            EXPECT_FALSE(fs::exists(e.scratch.path / "pwned"))
                << "a command substitution in a boot file ran";
        };
        v.push_back(Case{.name = b.name + "__iommu_show_json",
                         .host = "seed_before",
                         .mutate = b.mutate,
                         .args = {"--json", "iommu", "show"},
                         .exits = {0, 1},
                         .check = no_substitution});
        if (b.status)
            v.push_back(Case{.name = b.name + "__status_json",
                             .host = "seed_before",
                             .mutate = b.mutate,
                             .args = {"--json", "status"},
                             .exits = {0, 3},
                             .check = no_substitution});
        v.push_back(Case{.name = b.name + "__enable_then_revert",
                         .host = "seed_before",
                         .mutate = b.mutate,
                         .body = [no_substitution](Env& e) {
                             enable_and_revert(e);
                             no_substitution(e, Outcome{});
                         }});
    }
    for (const auto& [name, mutate, want] : trial_mutations())
        v.push_back(Case{.name = name + "__trial_then_revert",
                         .host = "seed_before",
                         .mutate = mutate,
                         .body = [want = want](Env& e) { trial_and_revert(e, want); }});
    return v;
}

} // namespace

INSTANTIATE_TEST_SUITE_P(Boot, Hostile, testing::ValuesIn(boot_cases()), case_name);

} // namespace vfioctl::hostile
