#include "boot/shell.hpp"

#include <algorithm>
#include <cctype>
#include <set>

namespace vfioctl::boot {

namespace {

bool name_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}
bool blank(char c) {
    return c == ' ' || c == '\t';
}

class Parser {
  public:
    explicit Parser(std::string_view text) : m_text(text), m_n(text.size()) {
        m_line_starts.push_back(0);
        for (size_t i = 0; i < m_n; ++i)
            if (m_text[i] == '\n') m_line_starts.push_back(i + 1);
        size_t nl = m_text.find('\n');
        if (nl != std::string_view::npos && nl > 0 && m_text[nl - 1] == '\r') m_out.eol = "\r\n";
    }

    // True when i starts a line break: '\n', "\r\n", or a '\r' that ends the
    // text (the last line of a file saved with CR line ends, or cut short).
    bool eol_at(size_t i) const {
        if (i >= m_n) return false;
        if (m_text[i] == '\n') return true;
        return m_text[i] == '\r' && (i + 1 == m_n || m_text[i + 1] == '\n');
    }

    ShellFile run() {
        size_t i = 0;
        while (i < m_n) {
            while (i < m_n && blank(m_text[i]))
                ++i;
            if (i >= m_n) break;
            char c = m_text[i];
            if (c == '\n') {
                m_andor = false;
                ++i;
                continue;
            }
            if (c == '\r' && eol_at(i)) {
                m_andor = false;
                i += i + 1 < m_n ? 2 : 1;
                continue;
            }
            if (c == '#') {
                note_comment(i);
                i = line_end(i);
                continue;
            }
            if (c == ';') {
                m_andor = false;
                ++i;
                continue;
            }
            if (c == '&' || c == '|') {
                if (i + 1 < m_n && m_text[i + 1] == c) m_andor = true;
                m_out.complex = true;
                ++i;
                continue;
            }
            i = command(i);
        }
        return std::move(m_out);
    }

  private:
    size_t line_of(size_t off) const {
        auto it = std::upper_bound(m_line_starts.begin(), m_line_starts.end(), off);
        return static_cast<size_t>(it - m_line_starts.begin());
    }

    // Offset of the end of the physical line holding off (its '\r' or '\n', or the end).
    size_t line_end(size_t off) const {
        size_t e = m_text.find('\n', off);
        if (e == std::string_view::npos)
            return m_n > off && m_text[m_n - 1] == '\r' ? m_n - 1 : m_n;
        if (e > off && m_text[e - 1] == '\r') --e;
        return e;
    }

    void problem(size_t off, const std::string& what) {
        m_out.problems.push_back("line " + std::to_string(line_of(off)) + ": " + what);
    }

    void note_comment(size_t i) {
        size_t j = i + 1;
        while (j < m_n && blank(m_text[j]))
            ++j;
        if (m_text.substr(j, 7) == "export " || m_text.substr(j, 7) == "export\t") {
            j += 7;
            while (j < m_n && blank(m_text[j]))
                ++j;
        }
        if (j >= m_n || !name_start(m_text[j])) return;
        size_t k = j;
        while (k < m_n && name_char(m_text[k]))
            ++k;
        if (k >= m_n || m_text[k] != '=') return;
        m_out.commented.push_back({std::string(m_text.substr(j, k - j)), line_of(i), line_end(i)});
    }

    // Adds a literal character at i to the word, joining the previous literal run.
    void literal(std::vector<WordUnit>& units, size_t i, char ctx) {
        if (!units.empty() && units.back().kind == WordUnit::literal &&
            units.back().context == ctx && units.back().end == i) {
            units.back().end = i + 1;
            units.back().text += m_text[i];
            return;
        }
        units.push_back({WordUnit::literal, i, i + 1, std::string(1, m_text[i]), ctx});
    }

    // Skips a balanced $( ... ) starting at the '(' after '$'; returns the offset after it.
    size_t skip_parens(size_t i) {
        int depth = 0;
        while (i < m_n) {
            char c = m_text[i];
            if (c == '\\') {
                i += 2;
                continue;
            }
            if (c == '\'') {
                size_t e = m_text.find('\'', i + 1);
                i = e == std::string_view::npos ? m_n : e + 1;
                continue;
            }
            if (c == '(') ++depth;
            if (c == ')' && --depth == 0) return i + 1;
            ++i;
        }
        return m_n;
    }

    // A '$' expansion at i inside ctx; returns the offset after it.
    size_t dollar(std::vector<WordUnit>& units, size_t i, char ctx) {
        if (i + 1 >= m_n) {
            literal(units, i, ctx);
            return i + 1;
        }
        char c = m_text[i + 1];
        if (c == '{') {
            size_t e = m_text.find('}', i + 2);
            if (e == std::string_view::npos) {
                problem(i, "unterminated ${");
                units.push_back({WordUnit::opaque, i, m_n, std::string(m_text.substr(i)), ctx});
                return m_n;
            }
            std::string_view inner = m_text.substr(i + 2, e - i - 2);
            bool plain = !inner.empty() && name_start(inner[0]) &&
                         std::all_of(inner.begin(), inner.end(), name_char);
            if (plain)
                units.push_back({WordUnit::ref, i, e + 1, std::string(inner), ctx});
            else
                units.push_back(
                    {WordUnit::opaque, i, e + 1, std::string(m_text.substr(i, e + 1 - i)), ctx});
            return e + 1;
        }
        if (c == '(') {
            size_t e = skip_parens(i + 1);
            units.push_back({WordUnit::opaque, i, e, std::string(m_text.substr(i, e - i)), ctx});
            return e;
        }
        if (name_start(c)) {
            size_t e = i + 1;
            while (e < m_n && name_char(m_text[e]))
                ++e;
            units.push_back(
                {WordUnit::ref, i, e, std::string(m_text.substr(i + 1, e - i - 1)), ctx});
            return e;
        }
        if (std::isdigit(static_cast<unsigned char>(c)) ||
            std::string_view("@*#?$!-").find(c) != std::string_view::npos) {
            units.push_back({WordUnit::opaque, i, i + 2, std::string(m_text.substr(i, 2)), ctx});
            return i + 2;
        }
        literal(units, i, ctx);
        return i + 1;
    }

    size_t backquote(std::vector<WordUnit>& units, size_t i, char ctx) {
        size_t e = i + 1;
        while (e < m_n && m_text[e] != '`')
            e += m_text[e] == '\\' ? 2 : 1;
        if (e >= m_n) {
            problem(i, "unterminated backquote");
            e = m_n;
        } else {
            ++e;
        }
        units.push_back({WordUnit::opaque, i, e, std::string(m_text.substr(i, e - i)), ctx});
        return e;
    }

    // Parses the word at i; returns the offset after it.
    size_t word(size_t i, std::vector<WordUnit>& units) {
        while (i < m_n) {
            char c = m_text[i];
            if (blank(c) || c == '\n' || c == ';' || c == '&' || c == '|' || c == '<' || c == '>' ||
                c == '(' || c == ')')
                break;
            if (c == '\r' && eol_at(i)) break;
            if (c == '\'') {
                units.push_back({WordUnit::quote, i, i + 1, {}, '\''});
                size_t e = m_text.find('\'', i + 1);
                if (e == std::string_view::npos) {
                    problem(i, "unterminated single quote");
                    for (size_t k = i + 1; k < m_n; ++k)
                        literal(units, k, '\'');
                    return m_n;
                }
                for (size_t k = i + 1; k < e; ++k)
                    literal(units, k, '\'');
                units.push_back({WordUnit::quote, e, e + 1, {}, '\''});
                i = e + 1;
                continue;
            }
            if (c == '"') {
                units.push_back({WordUnit::quote, i, i + 1, {}, '"'});
                ++i;
                bool closed = false;
                while (i < m_n) {
                    char d = m_text[i];
                    if (d == '"') {
                        units.push_back({WordUnit::quote, i, i + 1, {}, '"'});
                        ++i;
                        closed = true;
                        break;
                    }
                    if (d == '\\' && i + 1 < m_n &&
                        std::string_view("$`\"\\\n").find(m_text[i + 1]) !=
                            std::string_view::npos) {
                        char e = m_text[i + 1];
                        units.push_back(
                            {WordUnit::escape, i, i + 2, e == '\n' ? "" : std::string(1, e), '"'});
                        i += 2;
                        continue;
                    }
                    if (d == '$') {
                        i = dollar(units, i, '"');
                        continue;
                    }
                    if (d == '`') {
                        i = backquote(units, i, '"');
                        continue;
                    }
                    literal(units, i, '"');
                    ++i;
                }
                if (!closed) problem(i, "unterminated double quote");
                continue;
            }
            if (c == '\\') {
                if (i + 1 >= m_n) {
                    literal(units, i, 0);
                    ++i;
                    continue;
                }
                char e = m_text[i + 1];
                units.push_back(
                    {WordUnit::escape, i, i + 2, e == '\n' ? "" : std::string(1, e), 0});
                i += 2;
                continue;
            }
            if (c == '$') {
                i = dollar(units, i, 0);
                continue;
            }
            if (c == '`') {
                i = backquote(units, i, 0);
                continue;
            }
            literal(units, i, 0);
            ++i;
        }
        return i;
    }

    // Skips a word that is not an assignment, quote-aware; returns its text and end.
    size_t bare_word(size_t i, std::string& out) {
        std::vector<WordUnit> units;
        size_t e = word(i, units);
        // A character that ends a word but is none of the callers' terminators
        // ('(', ')', '<', '>') is a word of its own: every call moves forward.
        if (e == i && i < m_n) e = i + 1;
        out = std::string(m_text.substr(i, e - i));
        return e;
    }

    // Skips the rest of a simple command; returns the offset of its terminator.
    size_t skip_command(size_t i) {
        while (i < m_n) {
            while (i < m_n && blank(m_text[i]))
                ++i;
            if (i >= m_n) break;
            char c = m_text[i];
            if (c == '\n' || c == ';' || c == '&' || c == '|') break;
            if (c == '\r' && eol_at(i)) break;
            if (c == '#') return line_end(i);
            std::string w;
            i = bare_word(i, w);
        }
        return i;
    }

    // Parses one simple command starting at i; returns the offset after it.
    size_t command(size_t i) {
        std::vector<Assignment> pending;
        bool exported = false;
        bool prefix = false;
        for (;;) {
            while (i < m_n && blank(m_text[i]))
                ++i;
            if (i >= m_n) break;
            char c = m_text[i];
            if (c == '\n' || c == ';' || c == '&' || c == '|' || c == '#') break;
            if (c == '\r' && eol_at(i)) break;
            // NAME=WORD
            if (name_start(c)) {
                size_t k = i;
                while (k < m_n && name_char(m_text[k]))
                    ++k;
                if (k < m_n && m_text[k] == '=' && (pending.empty() || !prefix)) {
                    Assignment a;
                    a.name = std::string(m_text.substr(i, k - i));
                    a.name_begin = i;
                    a.line = line_of(i);
                    a.word_begin = k + 1;
                    a.word_end = word(k + 1, a.units);
                    a.line_end = line_end(a.word_end);
                    a.exported = exported;
                    a.conditional = m_depth > 0 || m_andor;
                    pending.push_back(std::move(a));
                    i = pending.back().word_end;
                    continue;
                }
            }
            std::string w;
            size_t e = bare_word(i, w);
            if (pending.empty() && !exported) {
                if (w == "export" || w == "readonly") {
                    exported = true;
                    i = e;
                    continue;
                }
                if (w == "if" || w == "while" || w == "until" || w == "{") {
                    ++m_depth;
                    m_out.complex = true;
                    i = e;
                    continue;
                }
                if (w == "for" || w == "case" || w.find("()") != std::string::npos) {
                    ++m_depth;
                    m_out.complex = true;
                    return skip_command(e);
                }
                if (w == "fi" || w == "done" || w == "esac" || w == "}") {
                    m_depth = std::max(0, m_depth - 1);
                    m_out.complex = true;
                    i = e;
                    continue;
                }
                if (w == "then" || w == "else" || w == "elif" || w == "do" || w == "!") {
                    m_out.complex = true;
                    i = e;
                    continue;
                }
                m_out.complex = true;
                return skip_command(e);
            }
            if (exported) {
                // "export NAME": nothing to evaluate.
                i = e;
                continue;
            }
            // Assignments before a command word only set its environment.
            prefix = true;
            m_out.complex = true;
            i = skip_command(e);
            break;
        }
        for (auto& a : pending) {
            a.prefix = prefix;
            m_out.assignments.push_back(std::move(a));
        }
        return i;
    }

    std::string_view m_text;
    size_t m_n;
    std::vector<size_t> m_line_starts;
    ShellFile m_out;
    int m_depth = 0;
    bool m_andor = false;
};

} // namespace

ShellFile parse_shell(std::string_view text) {
    return Parser(text).run();
}

std::string value_text(const Value& v) {
    std::string s;
    s.reserve(v.size());
    for (const auto& c : v)
        s += c.c;
    return s;
}

Value evaluate_assignment(const Assignment& a, const ShellEnv& env, int file, int index,
                          size_t limit, bool* cut) {
    Value v;
    auto room = [&](size_t n) {
        if (v.size() + n <= limit) return n;
        if (cut) *cut = true;
        return limit - std::min(limit, v.size());
    };
    for (const auto& u : a.units) {
        switch (u.kind) {
        case WordUnit::quote:
            break;
        case WordUnit::literal: {
            const size_t n = room(u.text.size());
            for (size_t k = 0; k < n; ++k)
                v.push_back({u.text[k], Origin{file, index, u.begin + k, true}});
            break;
        }
        case WordUnit::escape: {
            const size_t n = room(u.text.size());
            for (size_t k = 0; k < n; ++k)
                v.push_back({u.text[k], Origin{file, index, u.begin, false}});
            break;
        }
        case WordUnit::ref: {
            auto it = env.vars.find(u.text);
            if (it != env.vars.end()) {
                const size_t n = room(it->second.size());
                v.insert(v.end(), it->second.begin(), it->second.begin() + static_cast<long>(n));
            }
            break;
        }
        case WordUnit::opaque: {
            const size_t n = room(u.text.size());
            for (size_t k = 0; k < n; ++k)
                v.push_back({u.text[k], Origin{-1, -1, u.begin, false}});
            break;
        }
        }
    }
    return v;
}

size_t expansion_budget(const std::vector<const ShellFile*>& files) {
    size_t written = 0;
    for (const auto* f : files)
        for (const auto& a : f->assignments)
            for (const auto& u : a.units)
                written += u.text.size();
    return 16 * written + (size_t{1} << 20);
}

ShellEnv evaluate(const std::vector<const ShellFile*>& files) {
    ShellEnv env;
    std::set<std::string, std::less<>> unset;
    size_t left = expansion_budget(files);
    for (size_t f = 0; f < files.size(); ++f) {
        const auto& as = files[f]->assignments;
        for (size_t k = 0; k < as.size(); ++k) {
            const auto& a = as[k];
            if (a.prefix) continue;
            for (const auto& u : a.units) {
                if (u.kind == WordUnit::ref && !env.vars.count(u.text) &&
                    unset.insert(u.text).second)
                    env.unset_refs.push_back(u.text);
                if (u.kind == WordUnit::opaque) env.opaque.push_back(u.text);
            }
            Value v = evaluate_assignment(a, env, static_cast<int>(f), static_cast<int>(k), left,
                                          &env.cut);
            left -= v.size();
            env.vars[a.name] = std::move(v);
        }
    }
    return env;
}

bool safe_in_context(std::string_view text, char context) {
    if (context == '\'') return text.find('\'') == std::string_view::npos;
    if (context == '"') return text.find_first_of("\"$`\\") == std::string_view::npos;
    if (text.empty()) return false;
    return std::all_of(text.begin(), text.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::string_view("_=.,:/+@%-").find(c) != std::string_view::npos;
    });
}

} // namespace vfioctl::boot
