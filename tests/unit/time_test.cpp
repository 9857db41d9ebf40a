// util::utc_now, the one UTC time formatter (journals, backup stamps).

#include "util/time.hpp"

#include <gtest/gtest.h>
#include <regex>

using namespace vfioctl;

namespace {

TEST(UtcTime, FormatsTheTimeNow) {
    EXPECT_TRUE(std::regex_match(util::utc_now(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
        << util::utc_now();
    EXPECT_TRUE(std::regex_match(util::utc_now("%Y%m%d-%H%M%S"), std::regex(R"(\d{8}-\d{6})")));
}

} // namespace
