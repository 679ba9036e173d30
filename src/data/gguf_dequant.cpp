// ggml tensor types: the table of names and block sizes, and dequantization of the supported ones.
// Each decoder follows ggml's reference dequantize_row_* (ggml/src/ggml-quants.c) operation for
// operation, in f32, so results are bit-exact with it and with gguf-py's gguf.quants.dequantize
// (tests/test_gguf.cpp checks every type against files that gguf-py wrote and decoded).
// Multi-byte fields are little-endian and blocks are packed with no padding; src may be unaligned,
// so every multi-byte field is read with memcpy.
#include <cstring>

#include "saelab/error.hpp"
#include "saelab/gguf.hpp"
#include "saelab/tensor.hpp"

// `q * d + m` must round twice, as ggml's reference and gguf-py do; a fused multiply-add would not.
// GCC in ISO C++ mode (CMAKE_CXX_EXTENSIONS OFF) never contracts; clang needs telling.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

namespace saelab {
namespace {

constexpr int64_t QK = 32;    // weights per block of the legacy formats (Q4_0 ... Q8_0)
constexpr int64_t QK_K = 256;  // weights per super-block of the K-quants

struct TypeInfo {
  uint32_t id;
  const char* name;
  int64_t block_size, block_bytes;
  bool supported;
};

// Every ggml_type id in current ggml (ggml.h) with its block geometry. Ids 4, 5 (the removed
// Q4_2/Q4_3) and 31-33, 36-38 (removed repacked types) are unknown.
constexpr TypeInfo kTypes[] = {
    {0, "F32", 1, 4, true},           {1, "F16", 1, 2, true},
    {2, "Q4_0", QK, 18, true},        {3, "Q4_1", QK, 20, true},
    {6, "Q5_0", QK, 22, true},        {7, "Q5_1", QK, 24, true},
    {8, "Q8_0", QK, 34, true},        {9, "Q8_1", QK, 36, false},
    {10, "Q2_K", QK_K, 84, false},    {11, "Q3_K", QK_K, 110, false},
    {12, "Q4_K", QK_K, 144, true},    {13, "Q5_K", QK_K, 176, true},
    {14, "Q6_K", QK_K, 210, true},    {15, "Q8_K", QK_K, 292, false},
    {16, "IQ2_XXS", QK_K, 66, false}, {17, "IQ2_XS", QK_K, 74, false},
    {18, "IQ3_XXS", QK_K, 98, false}, {19, "IQ1_S", QK_K, 50, false},
    {20, "IQ4_NL", QK, 18, false},    {21, "IQ3_S", QK_K, 110, false},
    {22, "IQ2_S", QK_K, 82, false},   {23, "IQ4_XS", QK_K, 136, false},
    {24, "I8", 1, 1, false},          {25, "I16", 1, 2, false},
    {26, "I32", 1, 4, false},         {27, "I64", 1, 8, false},
    {28, "F64", 1, 8, false},         {29, "IQ1_M", QK_K, 56, false},
    {30, "BF16", 1, 2, true},         {34, "TQ1_0", QK_K, 54, false},
    {35, "TQ2_0", QK_K, 66, false},   {39, "MXFP4", QK, 17, false},
    {40, "NVFP4", 64, 36, false},     {41, "Q1_0", 128, 18, false},
};

const TypeInfo* find_type(uint32_t id) {
  for (const TypeInfo& t : kTypes)
    if (t.id == id) return &t;
  return nullptr;
}

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Q4_0, 18 bytes: f16 d | u8 qs[16]. Low nibbles are weights 0..15, high nibbles 16..31:
// w = (nibble - 8) * d.
void q4_0(const uint8_t* b, float* y) {
  const float d = half_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0xF) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

// Q4_1, 20 bytes: f16 d | f16 m | u8 qs[16]; w = nibble * d + m (nibbles as in Q4_0).
void q4_1(const uint8_t* b, float* y) {
  const float d = half_at(b), m = half_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0xF) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// The 5-bit legacy formats: qs nibbles as in Q4_0, and the fifth bit of weight j in bit j of the
// little-endian u32 qh (weights 0..15 in bits 0..15, weights 16..31 in bits 16..31).
void five_bit(const uint8_t* qh_bytes, const uint8_t* qs, int32_t* q) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  for (int j = 0; j < 16; ++j) {
    q[j] = (qs[j] & 0xF) | static_cast<int32_t>(((qh >> j) & 1u) << 4);
    q[j + 16] = (qs[j] >> 4) | static_cast<int32_t>(((qh >> (j + 16)) & 1u) << 4);
  }
}

// Q5_0, 22 bytes: f16 d | u8 qh[4] | u8 qs[16]; w = (q - 16) * d.
void q5_0(const uint8_t* b, float* y) {
  const float d = half_at(b);
  int32_t q[QK];
  five_bit(b + 2, b + 6, q);
  for (int j = 0; j < QK; ++j) y[j] = static_cast<float>(q[j] - 16) * d;
}

// Q5_1, 24 bytes: f16 d | f16 m | u8 qh[4] | u8 qs[16]; w = q * d + m.
void q5_1(const uint8_t* b, float* y) {
  const float d = half_at(b), m = half_at(b + 2);
  int32_t q[QK];
  five_bit(b + 4, b + 8, q);
  for (int j = 0; j < QK; ++j) y[j] = static_cast<float>(q[j]) * d + m;
}

// Q8_0, 34 bytes: f16 d | i8 qs[32]; w = q * d.
void q8_0(const uint8_t* b, float* y) {
  const float d = half_at(b);
  for (int j = 0; j < QK; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

// The K-quants' 12 bytes of 6-bit scales and mins for the 8 sub-blocks of 32 (ggml's
// get_scale_min_k4). Bytes 0-3 hold scales 0-3 in their low 6 bits, bytes 4-7 mins 0-3; scales and
// mins 4-7 have their low 4 bits in the nibbles of bytes 8-11 (scale low, min high) and their top 2
// bits in the top 2 bits of bytes 0-3 (scales) and 4-7 (mins).
void scale_min_k4(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// Q4_K, 144 bytes: f16 d | f16 dmin | u8 scales[12] | u8 qs[128]. Each 64 weights share 32 qs
// bytes: the low nibbles are the first sub-block of 32, the high nibbles the second;
// w = (d * sc) * q - (dmin * m).
void q4_k(const uint8_t* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int j = 0; j < 4; ++j, q += 32, y += 64) {
    uint8_t sc, m;
    scale_min_k4(2 * j, scales, &sc, &m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(2 * j + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) y[l + 32] = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

// Q5_K, 176 bytes: f16 d | f16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128]. As Q4_K, plus a
// fifth bit: for the pair of sub-blocks j (0..3), bit 2j of qh[l] belongs to weight l of the first
// and bit 2j+1 to weight l of the second.
void q5_k(const uint8_t* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  for (int j = 0; j < 4; ++j, ql += 32, y += 64) {
    uint8_t sc, m;
    scale_min_k4(2 * j, scales, &sc, &m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(2 * j + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = dmin * m;
    const uint8_t u1 = static_cast<uint8_t>(1u << (2 * j)), u2 = static_cast<uint8_t>(2u << (2 * j));
    for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) y[l + 32] = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
  }
}

// Q6_K, 210 bytes: u8 ql[128] | u8 qh[64] | i8 scales[16] | f16 d. Each half of 128 weights uses
// 64 ql bytes, 32 qh bytes and 8 scales: weight l + 32i (i = 0..3, l = 0..31) has low 4 bits from
// ql[l] (i = 0), ql[l + 32] (i = 1), ql[l] >> 4 (i = 2), ql[l + 32] >> 4 (i = 3), top 2 bits from
// bits 2i..2i+1 of qh[l], and scale sc[l / 16 + 2i]; w = (d * sc) * (q - 32).
void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half_at(b + 208);
  for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_fn(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::Q4_0: return q4_0;
    case GgmlType::Q4_1: return q4_1;
    case GgmlType::Q5_0: return q5_0;
    case GgmlType::Q5_1: return q5_1;
    case GgmlType::Q8_0: return q8_0;
    case GgmlType::Q4_K: return q4_k;
    case GgmlType::Q5_K: return q5_k;
    case GgmlType::Q6_K: return q6_k;
    default: return nullptr;
  }
}

}  // namespace

std::string ggml_type_name(uint32_t type) {
  const TypeInfo* t = find_type(type);
  return t ? std::string(t->name) : "type " + std::to_string(type);
}

bool ggml_type_supported(uint32_t type) {
  const TypeInfo* t = find_type(type);
  return t && t->supported;
}

int64_t ggml_block_size(uint32_t type) {
  const TypeInfo* t = find_type(type);
  return t ? t->block_size : 0;
}

int64_t ggml_block_bytes(uint32_t type) {
  const TypeInfo* t = find_type(type);
  return t ? t->block_bytes : 0;
}

void dequantize_ggml(uint32_t type, const uint8_t* src, float* dst, int64_t n) {
  const TypeInfo* t = find_type(type);
  SAELAB_ASSERT(t && t->supported, "dequantize_ggml: unsupported ggml type {}", type);
  SAELAB_ASSERT(n >= 0 && n % t->block_size == 0, "dequantize_ggml: {} values of {}", n, t->name);
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::F32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    // Read through memcpy: with general.alignment 1 a tensor may start at an odd byte.
    case GgmlType::F16:
    case GgmlType::BF16: {
      const auto to_f32 = type == static_cast<uint32_t>(GgmlType::F16) ? f16_to_f32 : bf16_to_f32;
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = to_f32(h);
      }
      return;
    }
    default: break;
  }
  const BlockFn fn = block_fn(type);
  SAELAB_ASSERT(fn != nullptr, "no decoder for {}", t->name);
  for (int64_t i = 0; i < n / t->block_size; ++i) fn(src + i * t->block_bytes, dst + i * t->block_size);
}

}  // namespace saelab
