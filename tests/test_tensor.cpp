#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "saelab/backend.hpp"
#include "saelab/tensor.hpp"

using namespace saelab;

TEST(DType, F16RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    EXPECT_EQ(f32_to_f16(f), h) << "half bits " << h;
  }
}

TEST(DType, F16KnownValuesAndRounding) {
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);               // rounds to inf
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie to even (down)
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie to even (up)
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // exact tie with 0 -> even
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
}

TEST(DType, Bf16RoundTripsAndRounds) {
  for (uint32_t h = 0; h < 65536; h += 7) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    if (!std::isnan(f)) {
      EXPECT_EQ(f32_to_bf16(f), h);
    }
  }
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);  // tie to even
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, NamesRoundTripAndUnknownIsAUserError) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::I32}) EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
  EXPECT_THROW(dtype_from_name("f64"), Error);
}

TEST(TensorView, RowsReshapeContiguity) {
  Tensor t({6, 4});
  for (int i = 0; i < 24; ++i) t.f32()[i] = static_cast<float>(i);
  TensorView r = t.view().rows(2, 5);
  EXPECT_EQ(r.dim(0), 3);
  EXPECT_EQ(r.f32()[0], 8.0f);
  EXPECT_TRUE(r.is_contiguous());
  TensorView flat = t.view().reshape({24});
  EXPECT_EQ(flat.ndim, 1);
  EXPECT_EQ(flat.numel(), 24);
  EXPECT_EQ(t.view().shape_str(), "[6, 4]");
}

TEST(Tensor, OwnsZeroedMemoryAndMoves) {
  Tensor a({3, 5});
  for (int i = 0; i < 15; ++i) EXPECT_EQ(a.f32()[i], 0.0f);
  float* p = a.f32();
  Tensor b = std::move(a);
  EXPECT_EQ(b.f32(), p);
  EXPECT_TRUE(a.empty());
}
