#include "host/host.hpp"

#include <gtest/gtest.h>

// Test binaries never write to the live /sys, /proc or /dev.
int main(int argc, char** argv) {
    vfioctl::host::forbid_live_writes();
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
