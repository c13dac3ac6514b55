// The explanation helpers every policy shares (policies/common/columns.hpp): numbers and
// amounts written as operators read them, the same digits printf's %.*f gives.
#include "policies/common/columns.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <limits>

namespace novacron::policies {
namespace {

TEST(ColumnsTest, NumbersDropTrailingZerosAndMatchPrintf) {
  EXPECT_EQ(format_number(1.5), "1.5");
  EXPECT_EQ(format_number(2), "2");
  EXPECT_EQ(format_number(0.125), "0.125");
  EXPECT_EQ(format_number(-0.0001), "0");
  EXPECT_EQ(format_number(2.0 / 3.0, 2), "0.67");
  EXPECT_EQ(format_number(1e20, 2), "100000000000000000000");
  EXPECT_EQ(format_number(-12.25, 1), "-12.2");  // round half to even, as printf
  EXPECT_EQ(format_number(std::numeric_limits<double>::infinity()), "inf");
  for (const double v : {0.0005, 1.0 / 3.0, 123456.789, -9.99951, 4.0, 1e-9, 0.30000000000000004}) {
    for (const int decimals : {0, 2, 3, 6}) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
      std::string want(buf);
      if (want.find('.') != std::string::npos) {
        while (want.back() == '0') want.pop_back();
        if (want.back() == '.') want.pop_back();
      }
      if (want == "-0") want = "0";
      EXPECT_EQ(format_number(v, decimals), want) << v << " with " << decimals;
    }
  }
  // The largest double in fixed notation fits.
  EXPECT_EQ(format_number(std::numeric_limits<double>::max(), 0).size(), 309u);
}

TEST(ColumnsTest, AmountsInDisplayUnits) {
  EXPECT_EQ(format_amount(1500, sdk::kCpuMilli), "1.5");
  EXPECT_EQ(format_amount(2000, sdk::kCpuMilli), "2");
  EXPECT_EQ(format_amount(1005, sdk::kCpuMilli), "1.005");
  EXPECT_EQ(format_amount(-250, sdk::kCpuMilli), "-0.25");
  EXPECT_EQ(format_amount(7, sdk::kMemoryMib), "7");
  EXPECT_EQ(format_amount(-3, sdk::kDiskGib), "-3");
}

}  // namespace
}  // namespace novacron::policies
