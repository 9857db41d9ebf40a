#include "boot/diff.hpp"

#include <algorithm>
#include <vector>

namespace vfioctl::boot {

namespace {

struct Lines {
    std::vector<std::string_view> lines;
    bool final_newline = true; // the last line ends with '\n'
};

// Lines without their '\n' (a '\r' stays).
Lines split_lines(std::string_view s) {
    Lines l;
    size_t i = 0;
    while (i < s.size()) {
        size_t nl = s.find('\n', i);
        if (nl == std::string_view::npos) {
            l.lines.push_back(s.substr(i));
            l.final_newline = false;
            break;
        }
        l.lines.push_back(s.substr(i, nl - i));
        i = nl + 1;
    }
    return l;
}

enum class Op { keep, del, add };

struct Edit {
    Op op;
    size_t a; // line index in before (keep, del)
    size_t b; // line index in after (keep, add)
};

// Line edits from a to b: common ends first, then a longest common
// subsequence of the middle.
std::vector<Edit> edits(const Lines& A, const Lines& B) {
    const auto& a = A.lines;
    const auto& b = B.lines;
    // A last line without newline differs from the same text with one.
    auto same = [&](size_t i, size_t j) {
        if (a[i] != b[j]) return false;
        bool a_last = i + 1 == a.size() && !A.final_newline;
        bool b_last = j + 1 == b.size() && !B.final_newline;
        return a_last == b_last;
    };
    size_t pre = 0;
    while (pre < a.size() && pre < b.size() && same(pre, pre))
        ++pre;
    size_t suf = 0;
    while (suf < a.size() - pre && suf < b.size() - pre &&
           same(a.size() - 1 - suf, b.size() - 1 - suf))
        ++suf;
    const size_t n = a.size() - pre - suf, m = b.size() - pre - suf;
    std::vector<Edit> out;
    for (size_t i = 0; i < pre; ++i)
        out.push_back({Op::keep, i, i});
    if (n * m <= 4'000'000) {
        std::vector<uint32_t> L((n + 1) * (m + 1), 0);
        auto at = [&](size_t i, size_t j) -> uint32_t& { return L[i * (m + 1) + j]; };
        for (size_t i = n; i-- > 0;)
            for (size_t j = m; j-- > 0;)
                at(i, j) = same(pre + i, pre + j) ? at(i + 1, j + 1) + 1
                                                  : std::max(at(i + 1, j), at(i, j + 1));
        size_t i = 0, j = 0;
        while (i < n || j < m) {
            if (i < n && j < m && same(pre + i, pre + j)) {
                out.push_back({Op::keep, pre + i, pre + j});
                ++i, ++j;
            } else if (i < n && (j == m || at(i + 1, j) >= at(i, j + 1))) {
                out.push_back({Op::del, pre + i, pre + j});
                ++i;
            } else {
                out.push_back({Op::add, pre + i, pre + j});
                ++j;
            }
        }
    } else {
        for (size_t i = 0; i < n; ++i)
            out.push_back({Op::del, pre + i, pre});
        for (size_t j = 0; j < m; ++j)
            out.push_back({Op::add, pre + n, pre + j});
    }
    for (size_t k = 0; k < suf; ++k)
        out.push_back({Op::keep, a.size() - suf + k, b.size() - suf + k});
    return out;
}

std::string range(size_t start, size_t count) {
    // diff -u: "l,s"; a count of 1 is written "l"; an empty range names the line before it.
    size_t first = count == 0 ? start : start + 1;
    if (count == 1) return std::to_string(first);
    return std::to_string(first) + "," + std::to_string(count);
}

} // namespace

std::string unified_diff(std::string_view before, std::string_view after, std::string_view path,
                         int context) {
    if (before == after) return "";
    Lines A = split_lines(before), B = split_lines(after);
    auto es = edits(A, B);
    std::string rel(path);
    while (!rel.empty() && rel.front() == '/')
        rel.erase(0, 1);
    std::string out = "--- a/" + rel + "\n+++ b/" + rel + "\n";
    const size_t ctx = static_cast<size_t>(std::max(context, 0));
    size_t k = 0;
    while (k < es.size()) {
        // The next change, and the hunk around it.
        while (k < es.size() && es[k].op == Op::keep)
            ++k;
        if (k >= es.size()) break;
        size_t start = k >= ctx ? k - ctx : 0;
        size_t end = k;
        // Extend while the next change is within 2*context keeps.
        for (;;) {
            while (end < es.size() && es[end].op != Op::keep)
                ++end;
            size_t keeps = 0;
            size_t probe = end;
            while (probe < es.size() && es[probe].op == Op::keep)
                ++probe, ++keeps;
            if (probe < es.size() && keeps <= 2 * ctx) {
                end = probe;
                continue;
            }
            end = std::min(es.size(), end + ctx);
            break;
        }
        size_t a_start = es[start].a, b_start = es[start].b, a_count = 0, b_count = 0;
        for (size_t i = start; i < end; ++i) {
            if (es[i].op != Op::add) ++a_count;
            if (es[i].op != Op::del) ++b_count;
        }
        out += "@@ -" + range(a_start, a_count) + " +" + range(b_start, b_count) + " @@\n";
        for (size_t i = start; i < end; ++i) {
            const Edit& e = es[i];
            std::string_view line = e.op == Op::add ? B.lines[e.b] : A.lines[e.a];
            out += e.op == Op::keep ? ' ' : e.op == Op::del ? '-' : '+';
            out.append(line);
            out += '\n';
            bool last_a = e.op != Op::add && e.a + 1 == A.lines.size() && !A.final_newline;
            bool last_b = e.op != Op::del && e.b + 1 == B.lines.size() && !B.final_newline;
            if (last_a || last_b) out += "\\ No newline at end of file\n";
        }
        k = end;
    }
    return out;
}

} // namespace vfioctl::boot
