#include "boot/params.hpp"

#include "boot/shell.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

namespace vfioctl::boot {

namespace {

using ordered_json = nlohmann::ordered_json;

const char* const k_linux = "GRUB_CMDLINE_LINUX";
const char* const k_default = "GRUB_CMDLINE_LINUX_DEFAULT";

// The variables 10_linux puts on the command line.
bool cmdline_var(std::string_view n) {
    return n == k_linux || n == k_default;
}
bool space(char c) {
    return std::isspace(static_cast<unsigned char>(c)) != 0;
}

// The 1-based line of an offset in a text, found by binary search over the
// text's line starts (counted once), so that naming every parameter's line
// stays linear in the text.
class Lines {
  public:
    explicit Lines(std::string_view text) {
        for (size_t i = 0; i < text.size(); ++i)
            if (text[i] == '\n') m_newlines.push_back(i);
    }
    size_t line_of(size_t off) const {
        return 1 + static_cast<size_t>(std::lower_bound(m_newlines.begin(), m_newlines.end(), off) -
                                       m_newlines.begin());
    }

  private:
    std::vector<size_t> m_newlines;
};

// The kernel's reading of one parameter.
Token token_of(std::string_view text) {
    auto t = tokenize(text);
    if (t.empty()) return Token{std::string(text), std::nullopt, std::string(text)};
    return t.front();
}

// "PATH:LINE (VARIABLE)".
std::string where_of(const std::string& path, size_t line, const std::string& variable) {
    std::string s = path;
    if (line) s += ":" + std::to_string(line);
    if (!variable.empty()) s += " (" + variable + ")";
    return s;
}

// An edit vfioctl will not make, with the place to make it by hand.
Error edit_error(const std::string& what, const Param& p, const std::string& path) {
    return Error{what + ": " + p.text, path,
                 "edit " + p.where + " by hand, then run 'vfioctl iommu show'", 0};
}

// ---- GRUB shell files -------------------------------------------------------

// A parameter from the value characters [b, e).
Param shell_param(const Value& v, size_t b, size_t e, const std::vector<ConfigFile>& files,
                  const std::vector<ShellFile>& parsed, const std::vector<Lines>& lines) {
    Param p;
    for (size_t i = b; i < e; ++i)
        p.text += v[i].c;
    p.token = token_of(p.text);
    const Origin& o = v[b].origin;
    p.editable = o.file >= 0;
    for (size_t i = b; i < e && p.editable; ++i) {
        const Origin& c = v[i].origin;
        p.editable = c.literal && c.file == o.file && c.assignment == o.assignment &&
                     c.offset == o.offset + (i - b);
    }
    if (o.file >= 0) {
        p.file = static_cast<size_t>(o.file);
        p.slot = static_cast<size_t>(o.assignment);
        const auto& a = parsed[p.file].assignments[p.slot];
        p.variable = a.name;
        // Only the command line variables are edited, never a helper variable they expand.
        p.editable = p.editable && cmdline_var(a.name);
        p.line = lines[p.file].line_of(o.offset);
        p.begin = o.offset;
        p.end = v[e - 1].origin.offset + 1;
        p.where = where_of(files[p.file].path, p.line, p.variable);
    } else {
        p.where = "an expansion (" + p.text + ")";
    }
    return p;
}

// GRUB files sourced in order: LINUX then DEFAULT, as 10_linux joins them.
CmdlineView shell_view(const std::vector<ConfigFile>& files) {
    CmdlineView view;
    std::vector<ShellFile> parsed;
    std::vector<Lines> lines;
    for (const auto& f : files) {
        lines.emplace_back(f.text);
        parsed.push_back(parse_shell(f.text));
        for (const auto& pr : parsed.back().problems)
            view.uncertain.push_back(f.path + ": " + pr);
    }
    ShellEnv env;
    std::vector<const ShellFile*> ptrs;
    for (const auto& sf : parsed)
        ptrs.push_back(&sf);
    size_t left = expansion_budget(ptrs);
    for (size_t f = 0; f < files.size(); ++f) {
        const auto& as = parsed[f].assignments;
        for (size_t k = 0; k < as.size(); ++k) {
            const auto& a = as[k];
            const bool ours = cmdline_var(a.name);
            if (ours && a.conditional)
                view.uncertain.push_back(
                    files[f].path + ":" + std::to_string(a.line) + ": " + a.name +
                    " is assigned inside a condition (if, case, a loop, && or ||)");
            if (a.prefix) continue;
            bool cut = false;
            Value v =
                evaluate_assignment(a, env, static_cast<int>(f), static_cast<int>(k), left, &cut);
            left -= v.size();
            if (cut)
                view.uncertain.push_back(files[f].path + ":" + std::to_string(a.line) + ": " +
                                         a.name + " expands to more text than vfioctl evaluates");
            if (ours) {
                for (const auto& u : a.units) {
                    if (u.kind == WordUnit::opaque)
                        view.uncertain.push_back(files[f].path + ":" + std::to_string(a.line) +
                                                 ": " + a.name + " uses " + u.text +
                                                 ", which vfioctl does not evaluate");
                    if (u.kind == WordUnit::ref && !env.vars.count(u.text))
                        view.notes.push_back(files[f].path + ":" + std::to_string(a.line) + ": " +
                                             a.name + " refers to $" + u.text +
                                             ", which no file sets (empty here)");
                }
                for (auto [b, e] : split_params(value_text(v))) {
                    bool own = true;
                    for (size_t i = b; i < e && own; ++i)
                        own = v[i].origin.file == static_cast<int>(f) &&
                              v[i].origin.assignment == static_cast<int>(k);
                    if (own) view.written.push_back(shell_param(v, b, e, files, parsed, lines));
                }
            }
            env.vars[a.name] = std::move(v);
        }
    }
    Value eff;
    if (auto it = env.vars.find(k_linux); it != env.vars.end()) eff = it->second;
    eff.push_back({' ', Origin{}});
    if (auto it = env.vars.find(k_default); it != env.vars.end())
        eff.insert(eff.end(), it->second.begin(), it->second.end());
    std::set<std::tuple<size_t, size_t, size_t>> effective;
    for (auto [b, e] : split_params(value_text(eff))) {
        Param p = shell_param(eff, b, e, files, parsed, lines);
        p.effective = true;
        if (eff[b].origin.file >= 0) effective.insert({p.file, p.slot, eff[b].origin.offset});
        view.effective.push_back(std::move(p));
    }
    for (auto& p : view.written)
        p.effective = effective.count({p.file, p.slot, p.begin}) > 0;
    std::vector<std::string> texts;
    for (const auto& p : view.effective)
        texts.push_back(p.text);
    for (size_t i = 0; i < texts.size(); ++i)
        view.cmdline += (i ? " " : "") + texts[i];
    return view;
}

// ---- cmdline files and loader entries ---------------------------------------

// The value ranges of a loader entry's 'options' lines.
std::vector<std::pair<size_t, size_t>> options_lines(std::string_view text) {
    std::vector<std::pair<size_t, size_t>> out;
    size_t ls = 0;
    while (ls < text.size()) {
        size_t nl = text.find('\n', ls);
        size_t le = nl == std::string_view::npos ? text.size() : nl;
        size_t ve = le;
        if (ve > ls && text[ve - 1] == '\r') --ve;
        size_t i = ls;
        while (i < ve && (text[i] == ' ' || text[i] == '\t'))
            ++i;
        if (text.substr(i, 7) == "options" &&
            (i + 7 == ve || text[i + 7] == ' ' || text[i + 7] == '\t')) {
            size_t vb = i + 7;
            while (vb < ve && (text[vb] == ' ' || text[vb] == '\t'))
                ++vb;
            out.emplace_back(vb, ve);
        }
        if (nl == std::string_view::npos) break;
        ls = nl + 1;
    }
    return out;
}

// A parameter at [b, e) of a cmdline file or an options line.
Param text_param(const ConfigFile& f, const Lines& lines, size_t file, size_t b, size_t e,
                 std::string variable, size_t slot) {
    Param p;
    p.text = f.text.substr(b, e - b);
    p.token = token_of(p.text);
    p.file = file;
    p.variable = std::move(variable);
    p.slot = slot;
    p.line = lines.line_of(b);
    p.begin = b;
    p.end = e;
    p.editable = p.text.find('$') == std::string::npos;
    p.effective = true;
    p.where = where_of(f.path, p.line, p.variable == "cmdline" ? "" : p.variable);
    return p;
}

// Cmdline files and loader entries: every parameter counts.
void text_view(const std::vector<ConfigFile>& files, CmdlineView& view) {
    for (size_t f = 0; f < files.size(); ++f) {
        const auto& cf = files[f];
        const Lines lines(cf.text);
        if (cf.format == Format::cmdline_file) {
            for (auto [b, e] : split_params(cf.text))
                view.effective.push_back(text_param(cf, lines, f, b, e, "cmdline", 0));
        } else {
            auto opts = options_lines(cf.text);
            for (size_t k = 0; k < opts.size(); ++k) {
                std::string_view value =
                    std::string_view(cf.text).substr(opts[k].first, opts[k].second - opts[k].first);
                for (auto [b, e] : split_params(value))
                    view.effective.push_back(text_param(cf, lines, f, opts[k].first + b,
                                                        opts[k].first + e, "options", k));
            }
        }
    }
}

// ---- kernelstub --------------------------------------------------------------

// The parsed configuration and its user.kernel_options list, or an Error.
Result<ordered_json> kernelstub_config(const ConfigFile& f) {
    ordered_json j = ordered_json::parse(f.text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return Error{"not valid JSON", f.path,
                     "kernelstub itself cannot read it either: fix it by hand", 0};
    auto u = j.find("user");
    if (u == j.end() || !u->is_object() || !u->contains("kernel_options") ||
        !(*u)["kernel_options"].is_array())
        return Error{"no user.kernel_options list", f.path,
                     "run 'kernelstub -p' once to write the user configuration, then retry", 0};
    for (const auto& o : (*u)["kernel_options"])
        if (!o.is_string())
            return Error{"user.kernel_options holds something other than strings", f.path, {}, 0};
    return j;
}

// The JSON as kernelstub writes it (indent 2), keeping a final newline if there was one.
std::string dump_kernelstub(const ordered_json& j, const std::string& old) {
    std::string s = j.dump(2, ' ', false, ordered_json::error_handler_t::replace);
    if (!old.empty() && old.back() == '\n') s += '\n';
    return s;
}

// Edits p in a kernelstub configuration's kernel_options (op gets the
// array, p checked to be still at its slot) and writes the text back.
Status edit_kernelstub(ConfigFile& f, const Param& p,
                       const std::function<void(ordered_json&)>& op) {
    auto j = kernelstub_config(f);
    if (!j) return j.error();
    auto& options = (*j)["user"]["kernel_options"];
    if (p.slot >= options.size() || options[p.slot].get<std::string>() != p.text)
        return edit_error("the parameter moved while editing", p, f.path);
    op(options);
    f.text = dump_kernelstub(*j, f.text);
    return {};
}

// kernelstub: each list element is one parameter.
void json_view(const std::vector<ConfigFile>& files, CmdlineView& view) {
    for (size_t f = 0; f < files.size(); ++f) {
        auto j = kernelstub_config(files[f]);
        if (!j) {
            view.uncertain.push_back(j.error().describe());
            continue;
        }
        const auto& arr = (*j)["user"]["kernel_options"];
        for (size_t k = 0; k < arr.size(); ++k) {
            Param p;
            p.text = arr[k].get<std::string>();
            p.token = token_of(p.text);
            p.file = f;
            p.variable = "kernel_options";
            p.slot = k;
            p.editable = true;
            p.effective = true;
            p.where = files[f].path + " (user.kernel_options)";
            view.effective.push_back(std::move(p));
        }
    }
}

} // namespace

const char* format_id(Format f) {
    switch (f) {
    case Format::grub_shell:
        return "grub_shell";
    case Format::cmdline_file:
        return "cmdline_file";
    case Format::loader_entry:
        return "loader_entry";
    case Format::kernelstub_json:
        return "kernelstub_json";
    case Format::whole_file:
        return "whole_file";
    }
    return "?";
}

std::vector<std::pair<size_t, size_t>> split_params(std::string_view s) {
    std::vector<std::pair<size_t, size_t>> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && space(s[i]))
            ++i;
        if (i >= s.size()) break;
        size_t b = i;
        bool quoted = false;
        while (i < s.size() && (quoted || !space(s[i]))) {
            if (s[i] == '"') quoted = !quoted;
            ++i;
        }
        out.emplace_back(b, i);
    }
    return out;
}

ParamSet::ParamSet(std::string label, std::vector<ConfigFile> files, std::string new_variable)
    : m_label(std::move(label)), m_files(std::move(files)),
      m_new_variable(std::move(new_variable)) {}

CmdlineView ParamSet::view() const {
    CmdlineView v;
    if (m_files.empty()) return v;
    switch (m_files.front().format) {
    case Format::grub_shell:
        return shell_view(m_files);
    case Format::cmdline_file:
    case Format::loader_entry:
        text_view(m_files, v);
        break;
    case Format::kernelstub_json:
        json_view(m_files, v);
        break;
    case Format::whole_file:
        return v;
    }
    v.written = v.effective;
    for (size_t i = 0; i < v.effective.size(); ++i)
        v.cmdline += (i ? " " : "") + v.effective[i].text;
    return v;
}

Status ParamSet::remove_range(size_t file, size_t range_begin, size_t range_end, size_t begin,
                              size_t end, bool content_before, bool content_after) {
    std::string& t = m_files[file].text;
    size_t rs = begin;
    while (rs > range_begin && space(t[rs - 1]))
        --rs;
    bool before = content_before;
    for (size_t i = range_begin; i < rs && !before; ++i)
        before = !space(t[i]);
    if (rs < begin && before) {
        t.erase(rs, end - rs);
        return {};
    }
    size_t re = end;
    while (re < range_end && space(t[re]))
        ++re;
    bool after = content_after;
    for (size_t i = re; i < range_end && !after; ++i)
        after = !space(t[i]);
    if (re > end && after)
        t.erase(begin, re - begin);
    else
        t.erase(begin, end - begin);
    return {};
}

Status ParamSet::remove(const Param& p) {
    if (p.file >= m_files.size()) return Error{"no such file in the configuration", {}, {}, 0};
    ConfigFile& f = m_files[p.file];
    if (!p.editable)
        return edit_error("cannot remove a parameter that is not written as plain text", p, f.path);
    if (f.format == Format::kernelstub_json) {
        return edit_kernelstub(f, p, [&](ordered_json& options) { options.erase(p.slot); });
    }
    if (p.end > f.text.size() || f.text.compare(p.begin, p.end - p.begin, p.text) != 0)
        return edit_error("the parameter moved while editing", p, f.path);
    if (f.format == Format::cmdline_file)
        return remove_range(p.file, 0, f.text.size(), p.begin, p.end, false, false);
    if (f.format == Format::loader_entry) {
        for (auto [vb, ve] : options_lines(f.text))
            if (vb <= p.begin && p.end <= ve)
                return remove_range(p.file, vb, ve, p.begin, p.end, false, false);
        return edit_error("the parameter is not on an options line", p, f.path);
    }
    ShellFile sf = parse_shell(f.text);
    if (p.slot >= sf.assignments.size())
        return edit_error("the assignment moved while editing", p, f.path);
    const Assignment& a = sf.assignments[p.slot];
    for (size_t u = 0; u < a.units.size(); ++u) {
        const WordUnit& w = a.units[u];
        if (w.kind != WordUnit::literal || w.begin > p.begin || p.end > w.end) continue;
        auto content = [&](size_t from, size_t to) {
            for (size_t k = from; k < to; ++k) {
                const WordUnit& x = a.units[k];
                if (x.kind == WordUnit::ref || x.kind == WordUnit::opaque) return true;
                if (x.kind == WordUnit::escape && !x.text.empty()) return true;
                if (x.kind == WordUnit::literal &&
                    std::any_of(x.text.begin(), x.text.end(), [](char c) { return !space(c); }))
                    return true;
            }
            return false;
        };
        return remove_range(p.file, w.begin, w.end, p.begin, p.end, content(0, u),
                            content(u + 1, a.units.size()));
    }
    return edit_error("the parameter spans quoting vfioctl does not edit", p, f.path);
}

Status ParamSet::replace(const Param& p, std::string_view text) {
    if (p.file >= m_files.size()) return Error{"no such file in the configuration", {}, {}, 0};
    ConfigFile& f = m_files[p.file];
    if (!p.editable)
        return edit_error("cannot change a parameter that is not written as plain text", p, f.path);
    if (f.format == Format::kernelstub_json) {
        return edit_kernelstub(f, p,
                               [&](ordered_json& options) { options[p.slot] = std::string(text); });
    }
    if (p.end > f.text.size() || f.text.compare(p.begin, p.end - p.begin, p.text) != 0)
        return edit_error("the parameter moved while editing", p, f.path);
    if (text.empty() || std::any_of(text.begin(), text.end(), space))
        return Error{"a parameter cannot be empty or hold spaces", std::string(text), {}, 0};
    if (f.format == Format::grub_shell) {
        ShellFile sf = parse_shell(f.text);
        if (p.slot >= sf.assignments.size())
            return edit_error("the assignment moved while editing", p, f.path);
        char ctx = 0;
        bool found = false;
        for (const auto& w : sf.assignments[p.slot].units)
            if (w.kind == WordUnit::literal && w.begin <= p.begin && p.end <= w.end)
                ctx = w.context, found = true;
        if (!found)
            return edit_error("the parameter spans quoting vfioctl does not edit", p, f.path);
        if (!safe_in_context(text, ctx))
            return Error{
                "'" + std::string(text) + "' cannot be written inside this quoting", f.path, {}, 0};
    }
    f.text.replace(p.begin, p.end - p.begin, text);
    return {};
}

Status ParamSet::append_shell(size_t file, size_t index, std::string_view text) {
    std::string& t = m_files[file].text;
    ShellFile sf = parse_shell(t);
    if (index >= sf.assignments.size())
        return Error{"the assignment moved while editing", m_files[file].path, {}, 0};
    const Assignment& a = sf.assignments[index];
    bool need_space = false;
    for (auto it = a.units.rbegin(); it != a.units.rend(); ++it) {
        if (it->kind == WordUnit::quote) continue;
        if (it->kind == WordUnit::escape && it->text.empty()) continue;
        if (it->kind == WordUnit::literal)
            need_space = !space(it->text.back());
        else
            need_space = true;
        break;
    }
    const std::string sep = need_space ? " " : "";
    if (!safe_in_context(text, '"') || !safe_in_context(text, '\''))
        return Error{"'" + std::string(text) + "' cannot be written into " + a.name,
                     m_files[file].path,
                     {},
                     0};
    if (a.units.empty()) {
        t.insert(a.word_begin, "\"" + std::string(text) + "\"");
        return {};
    }
    const WordUnit& last = a.units.back();
    if (last.kind == WordUnit::quote) {
        t.insert(last.begin, sep + std::string(text));
        return {};
    }
    bool wrap = std::none_of(a.units.begin(), a.units.end(), [](const WordUnit& w) {
        return w.kind == WordUnit::quote || w.kind == WordUnit::escape;
    });
    if (wrap && a.units.front().kind == WordUnit::literal && a.units.front().text.front() == '~')
        wrap = false;
    if (wrap) {
        t.insert(a.word_end, sep + std::string(text) + "\"");
        t.insert(a.word_begin, "\"");
    } else {
        t.insert(a.word_end, "\"" + sep + std::string(text) + "\"");
    }
    return {};
}

Status ParamSet::add_assignment(size_t file, const std::string& variable, std::string_view text) {
    std::string& t = m_files[file].text;
    ShellFile sf = parse_shell(t);
    size_t pos = std::string::npos;
    for (const auto& c : sf.commented)
        if (c.name == variable) pos = c.line_end;
    if (pos == std::string::npos)
        for (const auto& a : sf.assignments)
            if (cmdline_var(a.name) && !a.conditional && !a.prefix) pos = a.line_end;
    const std::string line = variable + "=\"" + std::string(text) + "\"";
    if (pos != std::string::npos)
        t.insert(pos, sf.eol + line);
    else if (t.empty() || t.back() == '\n')
        t += line + sf.eol;
    else
        t += sf.eol + line + sf.eol;
    return {};
}

Status ParamSet::append(std::string_view text, const std::optional<Param>& near) {
    if (m_files.empty()) return Error{"no configuration file to edit", {}, {}, 0};
    if (text.empty() || std::any_of(text.begin(), text.end(), space))
        return Error{"a parameter cannot be empty or hold spaces", std::string(text), {}, 0};
    const Format fmt = m_files.front().format;
    if (fmt == Format::grub_shell) {
        if (near && near->editable) return append_shell(near->file, near->slot, text);
        // The last assignment sourced decides: DEFAULT first, then LINUX.
        for (const char* var : {k_default, k_linux}) {
            std::optional<std::pair<size_t, size_t>> last;
            for (size_t f = 0; f < m_files.size(); ++f) {
                ShellFile sf = parse_shell(m_files[f].text);
                for (size_t k = 0; k < sf.assignments.size(); ++k)
                    if (sf.assignments[k].name == var && !sf.assignments[k].prefix) last = {f, k};
            }
            if (last) return append_shell(last->first, last->second, text);
        }
        return add_assignment(0, m_new_variable, text);
    }
    if (fmt == Format::kernelstub_json) return append_to(0, "kernel_options", text);
    size_t file = near ? near->file : m_files.size() - 1;
    return append_to(file, fmt == Format::loader_entry ? "options" : "cmdline", text);
}

Status ParamSet::append_to(size_t file, std::string_view variable, std::string_view text) {
    if (file >= m_files.size()) return Error{"no such file in the configuration", {}, {}, 0};
    if (text.empty() || std::any_of(text.begin(), text.end(), space))
        return Error{"a parameter cannot be empty or hold spaces", std::string(text), {}, 0};
    ConfigFile& f = m_files[file];
    std::string& t = f.text;
    switch (f.format) {
    case Format::grub_shell: {
        ShellFile sf = parse_shell(t);
        std::optional<size_t> last;
        for (size_t k = 0; k < sf.assignments.size(); ++k)
            if (sf.assignments[k].name == variable && !sf.assignments[k].prefix) last = k;
        if (last) return append_shell(file, *last, text);
        return add_assignment(file, std::string(variable), text);
    }
    case Format::kernelstub_json: {
        auto j = kernelstub_config(f);
        if (!j) return j.error();
        (*j)["user"]["kernel_options"].push_back(std::string(text));
        t = dump_kernelstub(*j, t);
        return {};
    }
    case Format::cmdline_file: {
        auto params = split_params(t);
        if (params.empty()) {
            size_t lead = 0;
            t.insert(lead, std::string(text));
            if (t.size() == text.size()) t += "\n";
        } else {
            t.insert(params.back().second, " " + std::string(text));
        }
        return {};
    }
    case Format::loader_entry: {
        auto lines = options_lines(t);
        if (!lines.empty()) {
            auto [vb, ve] = lines.back();
            bool empty = vb == ve;
            // Trailing blanks stay after the new parameter.
            size_t at = ve;
            while (at > vb && (t[at - 1] == ' ' || t[at - 1] == '\t'))
                --at;
            t.insert(at, (empty || at == vb ? "" : " ") + std::string(text));
            return {};
        }
        const std::string eol = t.find("\r\n") != std::string::npos ? "\r\n" : "\n";
        const std::string line = "options " + std::string(text);
        if (t.empty() || t.back() == '\n')
            t += line + eol;
        else
            t += eol + line + eol;
        return {};
    }
    case Format::whole_file:
        return Error{"a file vfioctl writes whole has no command line", f.path, {}, 0};
    }
    return {};
}

} // namespace vfioctl::boot
