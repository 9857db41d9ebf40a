// vfioctl-gendoc: writes the man pages and the bash, zsh and fish
// completions from the CLI definition itself (cli::define_app), so that
// they cannot drift from --help. Run by the build, never installed.
//
//   vfioctl-gendoc TEXT_DIR OUT_DIR [PAGE...]
//
// TEXT_DIR holds the hand-written parts: one TEXT_DIR/PAGE.txt per page
// (DESCRIPTION, EXAMPLES, FILES, SEE ALSO, ...) and TEXT_DIR/common.txt
// (sections every page gets unless it has its own). Writes
// OUT_DIR/man/PAGE.1 and OUT_DIR/completions/{vfioctl.bash,_vfioctl,
// vfioctl.fish}. PAGE...: the pages the build expects (cmake/docs.cmake
// installs them); the generator fails when the CLI has another set. Exits
// 1 on that, on a missing or malformed text file or a stale row in
// cli/value_hints.hpp.

#include "cli/app.hpp"
#include "cli/value_hints.hpp"
#include "services/paths.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using vfioctl::cli::ValueKind;

namespace {

// ---------------------------------------------------------------- the model

struct Opt {
    std::vector<std::string> names; // "-m", "--memory"; a positional: its name
    bool positional = false;
    bool flag = false;                // takes no value
    bool many = false;                // positional taking several values, or a repeatable option
    std::string type;                 // CLI11's type name: "TEXT:{auto,kvm,tcg}"
    std::string metavar;              // "TEXT"
    std::string help;                 // its description
    std::string default_value;        // "" when none is shown
    std::vector<std::string> allowed; // from an IsMember validator
    std::string checks;               // the other validators, as --help shows them
    std::optional<ValueKind> kind;    // from cli/value_hints.hpp
    bool required = false;
};

struct Node {
    std::vector<std::string> path; // {} for vfioctl, {"vm", "run"}
    std::string help;
    std::vector<Opt> options; // positionals included, in definition order
    std::vector<Node> children;
    bool needs_subcommand = false;

    std::string page() const {
        std::string p = "vfioctl";
        for (const auto& s : path)
            p += "-" + s;
        return p;
    }
    std::string command() const {
        std::string p = "vfioctl";
        for (const auto& s : path)
            p += " " + s;
        return p;
    }
    std::string key() const {
        std::string k;
        for (const auto& s : path)
            k += (k.empty() ? "" : " ") + s;
        return k;
    }
};

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
    std::string out;
    for (const auto& s : v)
        out += (out.empty() ? "" : sep) + s;
    return out;
}

bool upper_word(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(),
                                     [](char c) { return (c >= 'A' && c <= 'Z') || c == '_'; });
}

Opt opt_of(const CLI::Option& o) {
    Opt r;
    r.positional = o.get_positional() && !o.nonpositional();
    if (r.positional) {
        r.names.push_back(o.get_name());
    } else {
        for (const auto& s : o.get_snames())
            r.names.push_back("-" + s);
        for (const auto& l : o.get_lnames())
            r.names.push_back("--" + l);
    }
    r.flag = o.get_expected_max() == 0; // add_flag: expected(0)
    r.many = o.get_items_expected_max() > 1 ||
             o.get_multi_option_policy() == CLI::MultiOptionPolicy::TakeAll;
    r.type = o.get_type_name();
    r.help = o.get_description();
    r.default_value = o.get_default_str();
    r.required = o.get_required();
    const auto parts = split(r.type, ':');
    r.metavar = parts.front();
    std::vector<std::string> checks;
    for (size_t i = 1; i < parts.size(); ++i) {
        const std::string& p = parts[i];
        if (p.size() >= 2 && p.front() == '{' && p.back() == '}')
            r.allowed = split(p.substr(1, p.size() - 2), ',');
        else if (!p.empty())
            checks.push_back(p);
    }
    // A validator named by one word (SECONDS, ABSOLUTE_PATH) names the
    // value better than its type; the others (ranges) are said in words.
    std::vector<std::string> said;
    for (const auto& c : checks) {
        if (c.find(' ') == std::string::npos && upper_word(c))
            r.metavar = c;
        else
            said.push_back(c);
    }
    r.checks = join(said, ", ");
    return r;
}

Node node_of(const CLI::App& app, std::vector<std::string> path) {
    Node n;
    n.path = std::move(path);
    n.help = app.get_description();
    n.needs_subcommand = app.get_require_subcommand_min() > 0;
    for (const CLI::Option* o : app.get_options())
        n.options.push_back(opt_of(*o));
    // Positionals first, as --help lists them.
    std::stable_partition(n.options.begin(), n.options.end(),
                          [](const Opt& o) { return o.positional; });
    auto& mutable_app = const_cast<CLI::App&>(app); // get_subcommands(filter) is not const
    for (CLI::App* sub : mutable_app.get_subcommands([](CLI::App*) { return true; })) {
        auto p = n.path;
        p.push_back(sub->get_name());
        n.children.push_back(node_of(*sub, p));
    }
    return n;
}

void for_each_node(Node& n, const std::function<void(Node&)>& f) {
    f(n);
    for (auto& c : n.children)
        for_each_node(c, f);
}
void for_each_node(const Node& n, const std::function<void(const Node&)>& f) {
    f(n);
    for (const auto& c : n.children)
        for_each_node(c, f);
}

bool has_name(const Opt& o, const std::string& name) {
    return std::find(o.names.begin(), o.names.end(), name) != o.names.end();
}

// Gives options their kinds from the hint table; throws on a row that
// matches nothing.
void apply_hints(Node& root) {
    for (const auto& h : vfioctl::cli::k_value_hints) {
        int matched = 0;
        for_each_node(root, [&](Node& n) {
            if (*h.command != '\0' && n.key() != h.command) return;
            for (auto& o : n.options)
                if (has_name(o, h.option)) {
                    o.kind = h.kind;
                    if (o.metavar == "TEXT" && h.kind == ValueKind::file) o.metavar = "FILE";
                    if (o.metavar == "TEXT" && h.kind == ValueKind::dir) o.metavar = "DIR";
                    ++matched;
                }
        });
        if (matched == 0)
            throw std::runtime_error(std::string("cli/value_hints.hpp: no option '") + h.option +
                                     "' in '" + (*h.command ? h.command : "any command") + "'");
    }
}

// ---------------------------------------------------------------- roff

// Text for roff: backslashes, hyphens (as \-, so they copy as ASCII),
// and a control character at the start of a line made literal.
std::string roff(const std::string& text) {
    std::string out;
    bool line_start = true;
    for (char c : text) {
        if (line_start && (c == '.' || c == '\'')) out += "\\&";
        if (c == '\\')
            out += "\\e";
        else if (c == '-')
            out += "\\-";
        else
            out += c;
        line_start = c == '\n';
    }
    return out;
}

std::string bold(const std::string& s) {
    return "\\fB" + roff(s) + "\\fR";
}
std::string italic(const std::string& s) {
    return "\\fI" + roff(s) + "\\fR";
}

// The hand-written text of one page: its sections in file order.
struct Text {
    std::vector<std::pair<std::string, std::vector<std::string>>> sections;
    const std::vector<std::string>* find(const std::string& name) const {
        for (const auto& [n, lines] : sections)
            if (n == name) return &lines;
        return nullptr;
    }
};

Text read_text(const fs::path& file) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error("missing hand-written text " + file.string());
    Text t;
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (line.rfind("== ", 0) == 0) {
            t.sections.push_back({line.substr(3), {}});
        } else if (line.rfind('#', 0) == 0) {
            continue; // a comment
        } else if (t.sections.empty()) {
            if (!line.empty())
                throw std::runtime_error(file.string() + ":" + std::to_string(number) +
                                         ": text before the first '== SECTION' line");
        } else {
            t.sections.back().second.push_back(line);
        }
    }
    return t;
}

// The markup of the text files, as roff: a blank line starts a paragraph;
// "$ command" lines are an example, shown as typed; "* TERM" starts an
// indented item whose body is the lines after it; other lines are text.
std::string render_lines(const std::vector<std::string>& lines) {
    std::string out;
    bool in_example = false;
    bool pending_par = false;
    bool started = false;
    for (const auto& line : lines) {
        const bool example = line.rfind("$ ", 0) == 0;
        if (in_example && !example) {
            out += ".fi\n.RE\n";
            in_example = false;
        }
        if (line.empty()) {
            pending_par = started;
            continue;
        }
        if (line.rfind("* ", 0) == 0) {
            out += ".TP\n" + bold(line.substr(2)) + "\n";
            pending_par = false;
            started = true;
            continue;
        }
        if (pending_par) {
            out += ".PP\n";
            pending_par = false;
        }
        started = true;
        if (example) {
            if (!in_example) out += ".RS 4\n.nf\n";
            in_example = true;
            out += "\\fB" + roff(line.substr(2)) + "\\fR\n";
            continue;
        }
        out += roff(line) + "\n";
    }
    if (in_example) out += ".fi\n.RE\n";
    return out;
}

std::string opt_term(const Opt& o) {
    if (o.positional) return italic(o.names.front()) + (o.many ? " .\\|.\\|." : "");
    std::vector<std::string> names;
    for (const auto& n : o.names)
        names.push_back(bold(n));
    std::string t = join(names, ", ");
    if (!o.flag) t += " " + italic(o.metavar);
    return t;
}

std::string opt_body(const Opt& o) {
    const std::string& help = o.help;
    std::string out = roff(help) + (help.empty() || help.back() == '.' ? "" : ".");
    std::vector<std::string> facts;
    if (!o.allowed.empty()) {
        std::vector<std::string> v;
        for (const auto& a : o.allowed)
            v.push_back(bold(a));
        facts.push_back("One of " + join(v, ", ") + ".");
    }
    if (!o.checks.empty()) facts.push_back("Accepted: " + roff(o.checks) + ".");
    if (!o.default_value.empty()) facts.push_back("Default: " + bold(o.default_value) + ".");
    if (o.required) facts.push_back("Required.");
    if (o.many && !o.positional) facts.push_back("May be given more than once.");
    for (const auto& f : facts)
        out += "\n" + f;
    return out;
}

std::string synopsis(const Node& n) {
    std::string name = roff(n.command());
    for (size_t at = name.find(' '); at != std::string::npos; at = name.find(' ', at + 2))
        name.replace(at, 1, "\\ ");
    std::string s = ".SY " + name + "\n";
    bool has_options = false;
    for (const auto& o : n.options)
        if (!o.positional) has_options = true;
    if (has_options) s += ".RI [ OPTIONS ]\n";
    for (const auto& o : n.options) {
        if (!o.positional) continue;
        const std::string arg = italic(o.names.front()) + (o.many ? " .\\|.\\|." : "");
        s += o.required ? arg + "\n" : "[" + arg + "]\n";
    }
    if (!n.children.empty()) s += n.needs_subcommand ? ".I COMMAND\n" : ".RI [ COMMAND ]\n";
    s += ".YS\n";
    return s;
}

std::string upper(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string man_page(const Node& n, const Node* parent, const Text& text, const Text& common) {
    std::ostringstream out;
    out << ".\\\" " << n.page() << "(1), generated by vfioctl-gendoc from the CLI definition\n"
        << ".\\\" and man/" << n.page() << ".txt; do not edit.\n";
    out << ".TH " << roff(upper(n.page())) << " 1 \"\" \"vfioctl " << VFIOCTL_VERSION
        << "\" \"vfioctl manual\"\n";
    // The top description starts "vfioctl: ": NAME has the name already.
    std::string what = n.help;
    if (what.rfind("vfioctl: ", 0) == 0) what.erase(0, 9);
    if (!what.empty() && what.back() == '.') what.pop_back();
    out << ".SH NAME\n" << roff(n.page()) << " \\- " << roff(what) << "\n";
    out << ".SH SYNOPSIS\n" << synopsis(n);
    const auto* desc = text.find("DESCRIPTION");
    if (!desc) throw std::runtime_error("man/" + n.page() + ".txt has no DESCRIPTION");
    out << ".SH DESCRIPTION\n" << render_lines(*desc);
    if (!n.children.empty()) {
        out << ".SH COMMANDS\n";
        for (const auto& c : n.children)
            out << ".TP\n"
                << bold(c.path.back()) << "\n"
                << roff(c.help) << ".\nSee \\fB" << roff(c.page()) << "\\fR(1).\n";
    }
    out << ".SH OPTIONS\n";
    for (const auto& o : n.options)
        out << ".TP\n" << opt_term(o) << "\n" << opt_body(o) << "\n";
    if (!n.path.empty())
        out << ".PP\nThe options of \\fBvfioctl\\fR(1), " << bold("--json") << " and "
            << bold("--root") << ", apply here too.\n";
    const std::vector<std::string> order = {"EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES"};
    for (const auto& name : order) {
        const auto* lines = text.find(name);
        if (!lines) lines = common.find(name);
        if (lines) out << ".SH " << name << "\n" << render_lines(*lines);
    }
    for (const auto& [name, lines] : text.sections) {
        if (name == "DESCRIPTION" || name == "SEE ALSO" ||
            std::find(order.begin(), order.end(), name) != order.end())
            continue;
        out << ".SH " << name << "\n" << render_lines(lines);
    }
    // SEE ALSO: the pages around this one, then the hand-written ones.
    std::vector<std::string> refs;
    if (!n.path.empty()) refs.push_back("vfioctl");
    if (parent && !parent->path.empty()) refs.push_back(parent->page());
    for (const auto& c : n.children)
        refs.push_back(c.page());
    std::vector<std::string> items;
    for (const auto& r : refs)
        items.push_back("\\fB" + roff(r) + "\\fR(1)");
    if (const auto* extra = text.find("SEE ALSO"))
        for (const auto& line : *extra)
            for (auto ref : split(line, ',')) {
                ref.erase(0, ref.find_first_not_of(' '));
                ref.erase(ref.find_last_not_of(' ') + 1);
                if (ref.empty()) continue;
                const auto paren = ref.find('(');
                if (paren == std::string::npos || ref.back() != ')')
                    throw std::runtime_error("man/" + n.page() + ".txt: SEE ALSO entry '" + ref +
                                             "' is not NAME(SECTION)");
                items.push_back("\\fB" + roff(ref.substr(0, paren)) + "\\fR" + ref.substr(paren));
            }
    if (items.empty()) throw std::runtime_error(n.page() + " has nothing for SEE ALSO");
    out << ".SH SEE ALSO\n" << join(items, ",\n") << "\n";
    return out.str();
}

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + p.string());
}

// ---------------------------------------------------------------- shells

// Whether the value is a number (no file names offered for it).
bool numeric(const Opt& o) {
    return o.type.rfind("INT", 0) == 0 || o.type.rfind("FLOAT", 0) == 0 ||
           o.type.rfind("UINT", 0) == 0;
}

const char* kind_name(const Opt& o) {
    if (!o.allowed.empty()) return "values";
    if (!o.kind) return numeric(o) ? "number" : "any";
    switch (*o.kind) {
    case ValueKind::file:
        return "file";
    case ValueKind::dir:
        return "dir";
    case ValueKind::pci:
        return "pci";
    case ValueKind::vm:
        return "vm";
    case ValueKind::profile:
        return "profile";
    }
    return "any";
}

// A word in single quotes for bash and zsh.
std::string sq(const std::string& s) {
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// A word in single quotes for fish, where \' and \\ are the escapes inside them.
std::string fish_sq(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

// The description of an option or command for the completion menus: its
// first clause, short.
std::string short_help(const std::string& help) {
    std::string s = help;
    const auto cut = s.find_first_of(";(");
    if (cut != std::string::npos && cut > 10) s = s.substr(0, cut);
    while (!s.empty() && s.back() == ' ')
        s.pop_back();
    if (s.size() > 70) s = s.substr(0, 67) + "...";
    return s;
}

// The tables every shell script shares, as shell case arms: the
// subcommands of a command, its options, what an option takes, what its
// positionals take. Keys are the command path ("" for vfioctl, "vm run").
struct Tables {
    std::vector<std::pair<std::string, std::string>> subs;   // path -> "start stop ..."
    std::vector<std::pair<std::string, std::string>> opts;   // path -> "--a --b"
    std::vector<std::pair<std::string, std::string>> kinds;  // "path|--opt" -> flag|any|file|...
    std::vector<std::pair<std::string, std::string>> values; // "path|--opt" -> "a b c"
    std::vector<std::pair<std::string, std::string>> pos;    // path -> kind of its positionals
};

// An option of vfioctl that its commands take too (--json, --root; not
// --help and --version, which each command has or does not take).
bool is_global(const Opt& o) {
    return !o.positional && !has_name(o, "--help") && !has_name(o, "--version");
}

Tables tables_of(const Node& root) {
    Tables t;
    for_each_node(root, [&](const Node& n) {
        std::vector<std::string> subs, opts;
        for (const auto& c : n.children)
            subs.push_back(c.path.back());
        if (!subs.empty()) t.subs.emplace_back(n.key(), join(subs, " "));
        std::string pos_kind;
        for (const auto& o : n.options) {
            if (o.positional) {
                if (pos_kind.empty()) pos_kind = kind_name(o);
                continue;
            }
            for (const auto& name : o.names) {
                opts.push_back(name);
                t.kinds.emplace_back(n.key() + "|" + name, o.flag ? "flag" : kind_name(o));
                if (!o.allowed.empty())
                    t.values.emplace_back(n.key() + "|" + name, join(o.allowed, " "));
            }
        }
        t.opts.emplace_back(n.key(), join(opts, " "));
        if (n.path.empty()) {
            std::vector<std::string> globals;
            for (const auto& o : n.options)
                if (is_global(o))
                    for (const auto& name : o.names)
                        globals.push_back(name);
            t.opts.emplace_back("*", join(globals, " "));
        }
        if (!pos_kind.empty()) t.pos.emplace_back(n.key(), pos_kind);
    });
    return t;
}

// A shell function "NAME KEY" printing the value of KEY from rows (sh
// case syntax: bash and zsh), returning 1 when there is none.
std::string sh_lookup(const std::string& name,
                      const std::vector<std::pair<std::string, std::string>>& rows) {
    std::string s = name + "() {\n    case $1 in\n";
    for (const auto& [k, v] : rows)
        s += "    " + sq(k) + ") REPLY=" + sq(v) + " ;;\n";
    s += "    *) REPLY=''; return 1 ;;\n    esac\n}\n";
    return s;
}

// The word walker and the dynamic values, the same for bash and zsh:
// given the words before the one completed, sets _vfioctl_path (the
// command path), _vfioctl_pending (an option waiting for its value, "" for
// none), _vfioctl_root_dir and _vfioctl_run_dir (from --root and --run-dir),
// _vfioctl_dashdash (after "--").
const char* k_sh_common = R"SH(
# The command path reached by words "$@" (the words before the one being
# completed, without the program name), the option still waiting for its
# value, and the --root and --run-dir given so far.
_vfioctl_walk() {
    _vfioctl_path='' _vfioctl_pending='' _vfioctl_root_dir='' _vfioctl_run_dir='' _vfioctl_dashdash=''
    local w opt
    for w in "$@"; do
        if [[ -n $_vfioctl_pending ]]; then
            case $_vfioctl_pending in
            --root) _vfioctl_root_dir=$w ;;
            --run-dir) _vfioctl_run_dir=$w ;;
            esac
            _vfioctl_pending=''
            continue
        fi
        [[ -n $_vfioctl_dashdash ]] && continue
        case $w in
        --) _vfioctl_dashdash=1 ;;
        --*=*)
            opt=${w%%=*}
            case $opt in
            --root) _vfioctl_root_dir=${w#*=} ;;
            --run-dir) _vfioctl_run_dir=${w#*=} ;;
            esac
            ;;
        -*)
            _vfioctl_kind "$_vfioctl_path|$w" || _vfioctl_kind "|$w"
            [[ $REPLY != flag && -n $REPLY ]] && _vfioctl_pending=$w
            ;;
        *)
            if _vfioctl_subs "$_vfioctl_path" && [[ " $REPLY " == *" $w "* ]]; then
                _vfioctl_path=${_vfioctl_path:+$_vfioctl_path }$w
            fi
            ;;
        esac
    done
}

# The PCI addresses of the host, or of the tree given with --root.
_vfioctl_list_pci() {
    local d
    for d in "${_vfioctl_root_dir%/}"/sys/bus/pci/devices/*; do
        [[ -e $d ]] && printf '%s\n' "${d##*/}"
    done
}

# The VMs vfioctl started: directories with a vm.json under the run
# directory (--run-dir, else where vfioctl puts them: $VFIOCTL_RUN_DIR,
# /run/vfioctl for root, $XDG_RUNTIME_DIR/vfioctl, /tmp/vfioctl-UID).
# Listed here rather than by 'vfioctl vm list --json': no process, no
# JSON parser, and it still lists a VM whose record vfioctl calls damaged.
_vfioctl_list_vms() {
    local base=$_vfioctl_run_dir d
    if [[ -z $base ]]; then
        if [[ -n $VFIOCTL_RUN_DIR ]]; then base=$VFIOCTL_RUN_DIR
        elif [[ $EUID -eq 0 ]]; then base=/run/vfioctl
        elif [[ -n $XDG_RUNTIME_DIR ]]; then base=$XDG_RUNTIME_DIR/vfioctl
        else base=/tmp/vfioctl-$EUID
        fi
    fi
    for d in "$base"/*/vm.json; do
        [[ -e $d ]] || continue
        d=${d%/vm.json}
        printf '%s\n' "${d##*/}"
    done
}

# VM profile names: ${XDG_CONFIG_HOME:-~/.config}/vfioctl/vms and
# /etc/vfioctl/vms (under --root).
_vfioctl_list_profiles() {
    local d f
    for d in "${XDG_CONFIG_HOME:-$HOME/.config}/vfioctl/vms" "${_vfioctl_root_dir%/}/etc/vfioctl/vms"; do
        for f in "$d"/*.toml; do
            [[ -e $f ]] || continue
            f=${f##*/}
            printf '%s\n' "${f%.toml}"
        done
    done
}
)SH";

std::string sh_tables(const Tables& t) {
    return sh_lookup("_vfioctl_subs", t.subs) + sh_lookup("_vfioctl_opts", t.opts) +
           sh_lookup("_vfioctl_kind", t.kinds) + sh_lookup("_vfioctl_values", t.values) +
           sh_lookup("_vfioctl_pos", t.pos);
}

std::string bash_script(const Tables& t) {
    std::string s = "# bash completion for vfioctl; generated by vfioctl-gendoc from the CLI\n"
                    "# definition (tools/gendoc.cpp); do not edit.\n";
    s += sh_tables(t);
    s += k_sh_common;
    s += R"SH(
# Completes KIND for cur (prefix: what goes before each match, "--opt=").
_vfioctl_complete_kind() {
    local kind=$1 key=$2 prefix=$3 cur=$4 IFS=$'\n'
    local -a words=()
    case $kind in
    values) _vfioctl_values "$key" || _vfioctl_values "|${key#*|}"; IFS=' ' words=($REPLY) ;;
    pci) words=($(_vfioctl_list_pci)) ;;
    vm) words=($(_vfioctl_list_vms)) ;;
    profile) words=($(_vfioctl_list_profiles)) ;;
    number) return 0 ;;
    dir) compopt -o filenames 2>/dev/null; words=($(compgen -d -- "$cur")); COMPREPLY=("${words[@]/#/$prefix}"); return ;;
    file|any) compopt -o filenames 2>/dev/null; words=($(compgen -f -- "$cur")); COMPREPLY=("${words[@]/#/$prefix}"); return ;;
    esac
    IFS=$'\n'
    COMPREPLY=($(compgen -W "${words[*]}" -- "$cur"))
    if [[ -n $prefix ]]; then COMPREPLY=("${COMPREPLY[@]/#/$prefix}"); fi
    [[ $kind == profile ]] && COMPREPLY+=($(compgen -f -X '!*.toml' -- "$cur")) && compopt -o filenames 2>/dev/null
    return 0
}

_vfioctl() {
    local cur words cword
    if declare -F _get_comp_words_by_ref >/dev/null; then
        # ':' stays in the word (PCI addresses); '=' splits --opt=VALUE.
        _get_comp_words_by_ref -n : cur words cword
    else
        words=("${COMP_WORDS[@]}") cword=$COMP_CWORD cur=${COMP_WORDS[COMP_CWORD]}
    fi
    COMPREPLY=()
    _vfioctl_walk "${words[@]:1:cword-1}"
    # --opt=VALUE: bash split it at '=' and completes the value.
    if [[ $cword -ge 3 && ${words[cword-1]} == = && ${words[cword-2]} == --* ]]; then
        _vfioctl_walk "${words[@]:1:cword-3}"
        _vfioctl_pending=${words[cword-2]}
    fi
    local cmd_path=$_vfioctl_path
    if [[ -n $_vfioctl_dashdash ]]; then
        COMPREPLY=($(compgen -c -- "$cur"))
    elif [[ -n $_vfioctl_pending ]]; then
        _vfioctl_kind "$cmd_path|$_vfioctl_pending" || _vfioctl_kind "|$_vfioctl_pending"
        _vfioctl_complete_kind "$REPLY" "$cmd_path|$_vfioctl_pending" '' "$cur"
    elif [[ $cur == -* ]]; then
        local opts
        _vfioctl_opts "$cmd_path"; opts=$REPLY
        [[ -n $cmd_path ]] && _vfioctl_opts '*' && opts+=" $REPLY"
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif _vfioctl_subs "$cmd_path"; then
        COMPREPLY=($(compgen -W "$REPLY" -- "$cur"))
    elif _vfioctl_pos "$cmd_path"; then
        _vfioctl_complete_kind "$REPLY" "$cmd_path" '' "$cur"
    fi
    if declare -F __ltrim_colon_completions >/dev/null; then
        __ltrim_colon_completions "$cur"
    fi
    return 0
}
complete -F _vfioctl vfioctl
)SH";
    return s;
}

std::string zsh_script(const Node& root, const Tables& t) {
    std::string s = "#compdef vfioctl\n"
                    "# zsh completion for vfioctl; generated by vfioctl-gendoc from the CLI\n"
                    "# definition (tools/gendoc.cpp); do not edit.\n";
    s += sh_tables(t);
    // Descriptions for the menus: "path|name" -> text.
    std::vector<std::pair<std::string, std::string>> descs;
    for_each_node(root, [&](const Node& n) {
        for (const auto& c : n.children)
            descs.emplace_back(n.key() + "|" + c.path.back(), short_help(c.help));
        for (const auto& o : n.options)
            if (!o.positional)
                for (const auto& name : o.names)
                    descs.emplace_back(n.key() + "|" + name, short_help(o.help));
    });
    s += sh_lookup("_vfioctl_desc", descs);
    s += k_sh_common;
    s += R"SH(
# Adds each of words (with descriptions from _vfioctl_desc for key path).
_vfioctl_add_described() {
    local tag=$1 cmd_path=$2; shift 2
    local -a items
    local w
    for w in "$@"; do
        _vfioctl_desc "$cmd_path|$w" || _vfioctl_desc "|$w"
        items+=("${w//:/\\:}:$REPLY")
    done
    _describe -t "$tag" "$tag" items
}

_vfioctl_complete_kind() {
    local kind=$1 key=$2
    case $kind in
    values) _vfioctl_values "$key" || _vfioctl_values "|${key#*|}"; compadd -- ${=REPLY} ;;
    pci) compadd -- ${(f)"$(_vfioctl_list_pci)"} ;;
    vm) compadd -- ${(f)"$(_vfioctl_list_vms)"} ;;
    profile) compadd -- ${(f)"$(_vfioctl_list_profiles)"}; _files -g '*.toml' ;;
    number) _message 'a number' ;;
    dir) _files -/ ;;
    *) _files ;;
    esac
}

_vfioctl() {
    # The options completion sets (_comp_options) stay: _describe needs them.
    setopt local_options null_glob
    _vfioctl_walk "${(@)words[2,CURRENT-1]}"
    local cmd_path=$_vfioctl_path cur=${words[CURRENT]}
    if [[ -n $_vfioctl_dashdash ]]; then
        _command_names
    elif [[ -n $_vfioctl_pending ]]; then
        _vfioctl_kind "$cmd_path|$_vfioctl_pending" || _vfioctl_kind "|$_vfioctl_pending"
        _vfioctl_complete_kind "$REPLY" "$cmd_path|$_vfioctl_pending"
    elif [[ $cur == --*=* ]]; then
        local opt=${cur%%=*}
        compset -P '*='
        _vfioctl_kind "$cmd_path|$opt" || _vfioctl_kind "|$opt"
        [[ $REPLY != flag ]] && _vfioctl_complete_kind "$REPLY" "$cmd_path|$opt"
    elif [[ $cur == -* ]]; then
        local -a opts
        _vfioctl_opts "$cmd_path"; opts=(${=REPLY})
        [[ -n $cmd_path ]] && _vfioctl_opts '*' && opts+=(${=REPLY})
        _vfioctl_add_described options "$cmd_path" "${opts[@]}"
    elif _vfioctl_subs "$cmd_path"; then
        _vfioctl_add_described commands "$cmd_path" ${=REPLY}
    elif _vfioctl_pos "$cmd_path"; then
        _vfioctl_complete_kind "$REPLY" "$cmd_path"
    fi
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _vfioctl "$@"
else
    compdef _vfioctl vfioctl
fi
)SH";
    return s;
}

// fish: the same tables as switch statements, a walker over
// 'commandline -opc', and one 'complete' line per command, option and value.
std::string fish_lookup(const std::string& name,
                        const std::vector<std::pair<std::string, std::string>>& rows) {
    std::string s = "function " + name + "\n    switch $argv[1]\n";
    for (const auto& [k, v] : rows)
        s += "        case " + fish_sq(k) + "\n            echo " + fish_sq(v) + "\n";
    s += "        case '*'\n            return 1\n    end\nend\n";
    return s;
}

std::string fish_script(const Node& root, const Tables& t) {
    std::string s = "# fish completion for vfioctl; generated by vfioctl-gendoc from the CLI\n"
                    "# definition (tools/gendoc.cpp); do not edit.\n";
    s += fish_lookup("__vfioctl_subs", t.subs) + fish_lookup("__vfioctl_kind", t.kinds);
    s += R"FISH(
# Prints the command path, then the option waiting for a value (or ''),
# the --root and --run-dir given, and 1 after "--": one per line.
function __vfioctl_walk
    set -l path ''
    set -l pending ''
    set -l root ''
    set -l run_dir ''
    set -l dashdash ''
    for w in (commandline -opc)[2..-1]
        if test -n "$pending"
            switch $pending
                case --root
                    set root $w
                case --run-dir
                    set run_dir $w
            end
            set pending ''
            continue
        end
        test -n "$dashdash"; and continue
        switch $w
            case --
                set dashdash 1
            case '--root=*'
                set root (string replace -- '--root=' '' $w)
            case '--run-dir=*'
                set run_dir (string replace -- '--run-dir=' '' $w)
            case '--*=*'
            case '-*'
                set -l kind (__vfioctl_kind "$path|$w"; or __vfioctl_kind "|$w")
                if test -n "$kind" -a "$kind" != flag
                    set pending $w
                end
            case '*'
                set -l subs (__vfioctl_subs "$path")
                if contains -- $w (string split ' ' -- "$subs")
                    set path (string trim -- "$path $w")
                end
        end
    end
    printf '%s\n' "$path" "$pending" "$root" "$run_dir" "$dashdash"
end

# Whether the command path is $argv[1] (before any "--").
function __vfioctl_in
    set -l w (__vfioctl_walk)
    test "$w[1]" = "$argv[1]" -a -z "$w[5]"
end

# Whether options may come (not after "--").
function __vfioctl_in_any
    set -l w (__vfioctl_walk)
    test -z "$w[5]"
end

# Whether the command path is $argv[1] and no option waits for a value.
function __vfioctl_at
    set -l w (__vfioctl_walk)
    test "$w[1]" = "$argv[1]" -a -z "$w[2]" -a -z "$w[5]"
end

# Whether the command path is $argv[1], with no subcommand still to give.
function __vfioctl_args_at
    __vfioctl_at $argv[1]; or return 1
    not __vfioctl_subs $argv[1] >/dev/null
end

function __vfioctl_list_pci
    set -l w (__vfioctl_walk)
    for d in (string trim -r -c / -- "$w[3]")/sys/bus/pci/devices/*
        basename -- $d
    end
end

# Directories with a vm.json under the run directory (see the bash
# script: listed in the shell, no 'vfioctl vm list --json' process).
function __vfioctl_list_vms
    set -l w (__vfioctl_walk)
    set -l base $w[4]
    if test -z "$base"
        if set -q VFIOCTL_RUN_DIR; and test -n "$VFIOCTL_RUN_DIR"
            set base $VFIOCTL_RUN_DIR
        else if test (id -u) -eq 0
            set base /run/vfioctl
        else if set -q XDG_RUNTIME_DIR; and test -n "$XDG_RUNTIME_DIR"
            set base $XDG_RUNTIME_DIR/vfioctl
        else
            set base /tmp/vfioctl-(id -u)
        end
    end
    for f in $base/*/vm.json
        basename -- (dirname -- $f)
    end
end

function __vfioctl_list_profiles
    set -l w (__vfioctl_walk)
    set -l config $HOME/.config
    set -q XDG_CONFIG_HOME; and test -n "$XDG_CONFIG_HOME"; and set config $XDG_CONFIG_HOME
    for f in $config/vfioctl/vms/*.toml (string trim -r -c / -- "$w[3]")/etc/vfioctl/vms/*.toml
        basename -- $f .toml
    end
end

complete -c vfioctl -f
)FISH";
    auto value_args = [](const Opt& o) -> std::string {
        if (!o.allowed.empty()) return " -x -a " + fish_sq(join(o.allowed, " "));
        if (!o.kind) return numeric(o) ? " -x" : " -r";
        switch (*o.kind) {
        case ValueKind::file:
            return " -r -F";
        case ValueKind::dir:
            return " -x -a '(__fish_complete_directories)'";
        case ValueKind::pci:
            return " -x -a '(__vfioctl_list_pci)'";
        case ValueKind::vm:
            return " -x -a '(__vfioctl_list_vms)'";
        case ValueKind::profile:
            return " -x -a '(__vfioctl_list_profiles)'";
        }
        return " -r";
    };
    for_each_node(root, [&](const Node& n) {
        const std::string at = "'__vfioctl_at \"" + n.key() + "\"'";
        for (const auto& c : n.children)
            s += "complete -c vfioctl -n " + at + " -a " + fish_sq(c.path.back()) + " -d " +
                 fish_sq(short_help(c.help)) + "\n";
        // Options are offered where their command is reached (the global
        // ones everywhere), also when one of them waits for its value: fish
        // then offers that option's values only.
        const std::string in = "'__vfioctl_in \"" + n.key() + "\"'";
        for (const auto& o : n.options) {
            if (o.positional) {
                std::string pos;
                if (!o.kind) continue;
                switch (*o.kind) {
                case ValueKind::pci:
                    pos = "(__vfioctl_list_pci)";
                    break;
                case ValueKind::vm:
                    pos = "(__vfioctl_list_vms)";
                    break;
                case ValueKind::profile:
                    pos = "(__vfioctl_list_profiles)";
                    break;
                case ValueKind::dir:
                    pos = "(__fish_complete_directories)";
                    break;
                case ValueKind::file:
                    s += "complete -c vfioctl -n '__vfioctl_args_at \"" + n.key() + "\"' -F\n";
                    continue;
                }
                s += "complete -c vfioctl -n '__vfioctl_args_at \"" + n.key() + "\"' -a " +
                     fish_sq(pos) + "\n";
                continue;
            }
            std::string line = "complete -c vfioctl -n " +
                               (n.path.empty() && is_global(o) ? "'__vfioctl_in_any'" : in);
            for (const auto& name : o.names) {
                if (name.rfind("--", 0) == 0)
                    line += " -l " + name.substr(2);
                else
                    line += " -s " + name.substr(1);
            }
            if (!o.flag) line += value_args(o);
            line += " -d " + fish_sq(short_help(o.help));
            s += line + "\n";
        }
    });
    return s;
}

int write_docs(const fs::path& text_dir, const fs::path& out_dir,
               const std::vector<std::string>& expected) {
    CLI::App app;
    vfioctl::cli::AppState state;
    // The defaults a page states are those of a root install: the run
    // directory of a root process, not the build user's.
    vfioctl::services::Paths paths;
    paths.run_base = "/run/vfioctl";
    vfioctl::cli::define_app(app, paths, state);
    Node root = node_of(app, {});
    apply_hints(root);

    const Text common = read_text(text_dir / "common.txt");
    fs::create_directories(out_dir / "man");
    fs::create_directories(out_dir / "completions");
    std::vector<std::string> written;
    std::function<void(const Node&, const Node*)> pages = [&](const Node& n, const Node* parent) {
        written.push_back(n.page());
        const Text text = read_text(text_dir / (n.page() + ".txt"));
        write_file(out_dir / "man" / (n.page() + ".1"), man_page(n, parent, text, common));
        for (const auto& c : n.children)
            pages(c, &n);
    };
    pages(root, nullptr);
    if (!expected.empty()) {
        auto a = written, b = expected;
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        if (a != b)
            throw std::runtime_error("the CLI has the pages " + join(a, " ") +
                                     ", the build expects " + join(b, " ") +
                                     ": update VFIOCTL_MAN_PAGES in cmake/docs.cmake");
    }

    const Tables t = tables_of(root);
    write_file(out_dir / "completions" / "vfioctl.bash", bash_script(t));
    write_file(out_dir / "completions" / "_vfioctl", zsh_script(root, t));
    write_file(out_dir / "completions" / "vfioctl.fish", fish_script(root, t));
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: vfioctl-gendoc TEXT_DIR OUT_DIR [PAGE...]\n";
        return 2;
    }
    try {
        return write_docs(argv[1], argv[2], std::vector<std::string>(argv + 3, argv + argc));
    } catch (const std::exception& e) {
        std::cerr << "vfioctl-gendoc: " << e.what() << "\n";
        return 1;
    }
}
