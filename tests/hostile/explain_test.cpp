// Category 7: the text 'explain' is given, as arguments or on standard
// input: a 30 KB line, bytes that are not UTF-8, escape sequences, NUL
// bytes, CRLF, nothing, only white space, 100000 lines, a megabyte. A known
// message inside is recognised (exit 0); a text without one is exit 1 with
// a line on stderr; never a crash, a hang or a raw control byte.

#include "hostile.hpp"

namespace vfioctl::hostile {
namespace {

const std::string k_known = "vfio 0000:8a:00.0: no iommu_group found";

struct X {
    std::string name;
    std::function<std::string()> text; // made when the case runs
    bool on_stdin;
    bool recognised;
};

std::function<std::string()> is(std::string s) {
    return [s] { return s; };
}

std::vector<X> texts() {
    auto lines = [] {
        std::string s;
        for (int i = 0; i < 100000; ++i)
            s += "[" + std::to_string(i) + ".000] noise line " + std::to_string(i) + "\n";
        return s + k_known + "\n";
    };
    auto big = [] {
        std::string s;
        for (int i = 0; i < (1 << 20) / 64; ++i)
            s += std::string(62, static_cast<char>('a' + i % 26)) + std::string("\0\n", 2);
        return s + k_known + "\n";
    };
    std::string words;
    for (int i = 0; i < 2000; ++i)
        words += "w" + std::to_string(i) + " ";
    return {
        {"known_inside_30k_line",
         is(std::string(15000, 'x') + " " + k_known + " " + std::string(15000, 'y')), false, true},
        {"30k_line_of_noise", is(std::string(30000, 'z')), false, false},
        {"30k_of_parentheses", is(std::string(15000, '(') + std::string(15000, ')')), false, false},
        {"known_with_bad_utf8", is("\xff\xfe\xc0\xaf " + k_known + " \xed\xa0\x80"), false, true},
        {"known_with_escapes", is(k_osc + k_csi + k_known + k_c1 + "\x07"), false, true},
        {"empty", is(""), false, false},
        {"only_white_space", is(" \t \t   "), false, false},
        {"two_thousand_words_and_known", is(words + k_known), false, true},
        {"known_repeated_5000_times",
         [] {
             std::string s;
             for (int i = 0; i < 5000; ++i)
                 s += k_known + "\n";
             return s;
         },
         true, true},
        {"stdin_100k_lines_then_known", lines, true, true},
        {"stdin_megabyte_with_nul_bytes", big, true, true},
        {"stdin_crlf", is("line one\r\n" + k_known + "\r\nline three\r\n"), true, true},
        {"stdin_nul_inside_known",
         is(std::string("vfio 0000:8a:00.0: no iommu\0_group found\n", 41)), true, false},
        {"stdin_empty", is(""), true, false},
        {"bdf_that_is_a_path", is("vfio 0000:8a:00.0/../../../../etc: no iommu_group found"), false,
         true},
        {"bdf_of_no_device", is("vfio ffff:ff:1f.7: no iommu_group found"), false, true},
    };
}

std::vector<Case> explain_cases() {
    std::vector<Case> v;
    for (const auto& x : texts())
        for (bool as_json : {false, true}) {
            std::vector<std::string> args;
            if (as_json) args.push_back("--json");
            args.push_back("explain");
            args.push_back(x.on_stdin ? "-" : x.text());
            v.push_back(Case{.name = x.name + (as_json ? "__json" : "__text"),
                             .host = "seed_before",
                             .args = args,
                             .exits = {x.recognised ? 0 : 1},
                             .check =
                                 [x, as_json](Env&, const Outcome& o) {
                                     if (as_json) {
                                         EXPECT_EQ(parse_json(o).value("recognised", !x.recognised),
                                                   x.recognised)
                                             << o.out.substr(0, 2000);
                                     } else if (x.recognised) {
                                         EXPECT_TRUE(has(o.out, "no iommu_group found"))
                                             << o.out.substr(0, 2000);
                                     }
                                 },
                             .use_stdin = x.on_stdin,
                             .stdin_data = x.on_stdin ? x.text : nullptr});
        }
    return v;
}

} // namespace

INSTANTIATE_TEST_SUITE_P(Explain, Hostile, testing::ValuesIn(explain_cases()), case_name);

} // namespace vfioctl::hostile
