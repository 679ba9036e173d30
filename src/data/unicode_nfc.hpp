// Unicode Normalization Form C (UAX #15): canonical decomposition, canonical ordering of combining
// marks, canonical composition. The NFC normalizer of Hugging Face tokenizer.json files (Qwen2/3,
// GPT-NeoX / Pythia) runs it before pre-tokenization, so "e" + U+0301 must become "é" to get the
// model's ids.
#pragma once
#include <string>
#include <string_view>

namespace saelab::unicode_nfc {

// The NFC form of s. Bytes that are not valid UTF-8 are copied through unchanged and block
// composition across them (Hugging Face never sees such bytes; saelab keeps them for byte-level BPE).
std::string nfc(std::string_view s);

}  // namespace saelab::unicode_nfc
