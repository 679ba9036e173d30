// The generated tables behind unicode_nfc.cpp (unicode_nfc_table.cpp, from
// scripts/reference/make_unicode_nfc.py).
#pragma once
#include <cstddef>
#include <cstdint>

namespace saelab::unicode_nfc {

struct Decomp {
  uint32_t cp, first, second;  // second == 0: a singleton mapping
  uint32_t excluded;           // 1: never composed back (Full_Composition_Exclusion)
};
struct CccRange {
  uint32_t first, last, ccc;
};

extern const Decomp kDecomp[];
extern const size_t kDecompCount;
extern const CccRange kCcc[];
extern const size_t kCccCount;

}  // namespace saelab::unicode_nfc
