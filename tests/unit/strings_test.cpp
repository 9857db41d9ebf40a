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
