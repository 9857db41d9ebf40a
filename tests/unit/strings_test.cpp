#include "util/strings.hpp"

#include <gtest/gtest.h>

using namespace vfioctl::util;

TEST(Strings, SplitKeepsEmptyFields) {
    EXPECT_EQ(split("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
    EXPECT_EQ(split_ws("  a \t b\n"), (std::vector<std::string>{"a", "b"}));
}

TEST(Strings, ParseNumbersRejectsGarbage) {
    EXPECT_EQ(parse_hex("0x10de"), 0x10deu);
    EXPECT_EQ(parse_hex("10de\n"), 0x10deu);
    EXPECT_FALSE(parse_hex("0xzz"));
    EXPECT_FALSE(parse_hex(""));
    EXPECT_FALSE(parse_dec("12a"));
    EXPECT_FALSE(parse_dec("99999999999999999999999"));
}

TEST(Strings, PrintableEscapesControlBytesAndInvalidUtf8) {
    // An OSC sequence (set the terminal title) and a CSI one.
    EXPECT_EQ(printable("quiet \x1b]0;pwned\x07 ro"), "quiet \\x1b]0;pwned\\x07 ro");
    EXPECT_EQ(printable("\x1b[2J"), "\\x1b[2J");
    EXPECT_EQ(printable("a\rb\x7f"), "a\\x0db\\x7f");
    EXPECT_EQ(printable("tab\tkept"), "tab\tkept");
    EXPECT_EQ(printable("one\ntwo"), "one\\x0atwo");
    EXPECT_EQ(printable("one\ntwo", true), "one\ntwo");
    // Bytes that are not UTF-8, alone, truncated, overlong or a surrogate.
    EXPECT_EQ(printable("\xff\xfe"), "\\xff\\xfe");
    EXPECT_EQ(printable("x\xe2\x82"), "x\\xe2\\x82");
    EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");
    EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");
    // C1 controls are escaped; other UTF-8 passes as it is.
    EXPECT_EQ(printable("\xc2\x9b"
                        "31m"),
              "\\xc2\\x9b31m");
    EXPECT_EQ(printable("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
              "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    EXPECT_EQ(printable(""), "");
}
