// PCI addresses and vendor:device IDs in the forms users type.

#include "pci/address.hpp"

#include <gtest/gtest.h>

using vfioctl::pci::PciAddress;
using vfioctl::pci::PciId;

TEST(PciAddress, ParsesShortAndFullForms) {
    auto a = PciAddress::parse("8a:00.0");
    ASSERT_TRUE(a) << a.error().describe();
    EXPECT_EQ(a->domain, 0u);
    EXPECT_EQ(a->bus, 0x8a);
    EXPECT_EQ(a->dev, 0);
    EXPECT_EQ(a->fn, 0);
    auto b = PciAddress::parse("0000:8a:00.0");
    ASSERT_TRUE(b);
    EXPECT_EQ(*a, *b);
    auto c = PciAddress::parse(" 0001:FF:1f.7\n");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->domain, 1u);
    EXPECT_EQ(c->bus, 0xff);
    EXPECT_EQ(c->dev, 0x1f);
    EXPECT_EQ(c->fn, 7);
    auto d = PciAddress::parse("10000:00:02.0");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->domain, 0x10000u);
}

TEST(PciAddress, PrintsCanonicalAndShortForms) {
    auto a = PciAddress::parse("8A:0.1");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->str(), "0000:8a:00.1");
    EXPECT_EQ(a->short_str(), "8a:00.1");
    auto b = PciAddress::parse("0002:03:04.5");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->short_str(), "0002:03:04.5");
    EXPECT_EQ(PciAddress::parse(b->str())->str(), b->str());
}

TEST(PciAddress, RejectsMalformedTextWithAHint) {
    for (const char* bad : {"", "8a", "8a:00", "8a:00.", "8a:00.8", "8a:20.0", "zz:00.0",
                            "8a:00.0.0", "0000:8a:00:0", "123:00.0", "8a:000.0", "8a:00.00",
                            "000000000:8a:00.0", "a:b:c:d.0", "-1:00.0", "8a:00.0 extra"}) {
        auto r = PciAddress::parse(bad);
        ASSERT_FALSE(r) << "accepted '" << bad << "'";
        EXPECT_NE(r.error().message.find("malformed PCI address"), std::string::npos) << bad;
        EXPECT_NE(r.error().hint.find("8a:00.0"), std::string::npos) << bad;
    }
}

TEST(PciAddress, OrdersByDomainBusDeviceFunction) {
    auto a = *PciAddress::parse("0000:8a:00.0");
    auto b = *PciAddress::parse("0000:8a:00.1");
    auto c = *PciAddress::parse("0000:8b:00.0");
    auto d = *PciAddress::parse("0001:00:00.0");
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);
    EXPECT_LT(c, d);
    EXPECT_TRUE(a.same_slot(b));
    EXPECT_FALSE(a.same_slot(c));
}

TEST(PciId, ParsesColonAndTheSeedsSpaceForm) {
    auto a = PciId::parse("10de:2336");
    ASSERT_TRUE(a) << a.error().describe();
    EXPECT_EQ(a->vendor, 0x10de);
    EXPECT_EQ(a->device, 0x2336);
    auto b = PciId::parse("10de 2336");
    ASSERT_TRUE(b);
    EXPECT_EQ(*a, *b);
    auto c = PciId::parse("  10DE   2336\n");
    ASSERT_TRUE(c);
    EXPECT_EQ(*a, *c);
    EXPECT_EQ(c->str(), "10de:2336");
}

TEST(PciId, RejectsMalformedIds) {
    for (const char* bad : {"", "10de", "10de:", ":2336", "10de:233", "10de:23366", "10dg:2336",
                            "10de-2336", "10de:2336:1234", "0x10de:2336", "10de 2336 1"}) {
        auto r = PciId::parse(bad);
        EXPECT_FALSE(r) << "accepted '" << bad << "'";
        if (!r) {
            EXPECT_NE(r.error().message.find("malformed vendor:device ID"), std::string::npos);
        }
    }
}
