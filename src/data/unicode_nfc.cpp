// NFC in three passes over each run of valid UTF-8 (UAX #15, section 1.3): full canonical
// decomposition (recursive table mappings, Hangul syllables algorithmically), canonical ordering
// (a stable sort of each run of non-zero combining classes), then canonical composition: each
// character joins the last starter when a primary composite exists for the pair and no character
// between them has class 0 or a class at least its own.
#include "unicode_nfc.hpp"

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "unicode_nfc_table.hpp"
#include "utf8.hpp"

namespace saelab::unicode_nfc {
namespace {

// Hangul syllables: S = SBase + (L * VCount + V) * TCount + T (The Unicode Standard, section 3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

struct Tables {
  std::unordered_map<uint32_t, const Decomp*> decomp;
  std::unordered_map<uint64_t, uint32_t> compose;  // (first << 32 | second) -> primary composite
  Tables() {
    decomp.reserve(kDecompCount);
    for (size_t i = 0; i < kDecompCount; ++i) {
      const Decomp& d = kDecomp[i];
      decomp[d.cp] = &d;
      if (!d.excluded && d.second != 0) compose[(static_cast<uint64_t>(d.first) << 32) | d.second] = d.cp;
    }
  }
};
const Tables& tables() {
  static const Tables t;
  return t;
}

uint32_t ccc(uint32_t cp) {
  if (cp < kCcc[0].first) return 0;  // everything below U+0300 is a starter
  const CccRange* end = kCcc + kCccCount;
  const CccRange* r = std::upper_bound(kCcc, end, cp, [](uint32_t c, const CccRange& x) { return c < x.first; });
  return r != kCcc && cp <= (r - 1)->last ? (r - 1)->ccc : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto& m = tables().decomp;
  auto it = m.find(cp);
  if (it == m.end()) {
    out.push_back(cp);
    return;
  }
  decompose(it->second->first, out);
  if (it->second->second != 0) decompose(it->second->second, out);
}

// The primary composite of (a, b), or 0.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto& m = tables().compose;
  auto it = m.find((static_cast<uint64_t>(a) << 32) | b);
  return it == m.end() ? 0 : it->second;
}

void nfc_run(const std::vector<uint32_t>& cps, std::string& out) {
  std::vector<uint32_t> d;
  d.reserve(cps.size() + 8);
  for (uint32_t cp : cps) decompose(cp, d);
  // Canonical ordering: stable, so marks of equal class keep their order.
  for (size_t i = 0; i < d.size();) {
    if (ccc(d[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && ccc(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + i, d.begin() + j, [](uint32_t a, uint32_t b) { return ccc(a) < ccc(b); });
    i = j;
  }
  // Composition. Between the starter and the current character lie only marks that did not
  // combine, in non-decreasing class order, so the last one's class decides whether it is blocked.
  std::vector<uint32_t> c;
  c.reserve(d.size());
  size_t starter = SIZE_MAX;
  int last_class = -1;  // class of the last mark kept after the starter; -1: none
  for (uint32_t ch : d) {
    const int cc = static_cast<int>(ccc(ch));
    if (starter != SIZE_MAX && (last_class == -1 || last_class < cc)) {
      if (const uint32_t comp = compose(c[starter], ch)) {
        c[starter] = comp;
        continue;
      }
    }
    if (cc == 0) {
      starter = c.size();
      last_class = -1;
    } else {
      last_class = cc;
    }
    c.push_back(ch);
  }
  for (uint32_t cp : c) utf8::append(out, cp);
}

}  // namespace

std::string nfc(std::string_view s) {
  if (std::all_of(s.begin(), s.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x80; }))
    return std::string(s);
  std::string out;
  out.reserve(s.size());
  std::vector<uint32_t> run;
  for (size_t i = 0; i < s.size();) {
    size_t n;
    const uint32_t cp = utf8::decode_at(s, i, &n);
    if (cp == 0xFFFD && n == 1) {  // an invalid byte: kept as it is, a barrier to composition
      nfc_run(run, out);
      run.clear();
      out.push_back(s[i]);
    } else {
      run.push_back(cp);
    }
    i += n;
  }
  nfc_run(run, out);
  return out;
}

}  // namespace saelab::unicode_nfc
