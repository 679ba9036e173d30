// The parts of the Tokenizer interface every tokenizer shares.
#include <algorithm>

#include "saelab/tokenizer.hpp"

namespace saelab {

bool Tokenizer::is_eog(int32_t id) const { return std::find(eog_ids_.begin(), eog_ids_.end(), id) != eog_ids_.end(); }

void Tokenizer::add_eog(int32_t id) {
  if (id >= 0 && !is_eog(id)) eog_ids_.push_back(id);
}

}  // namespace saelab
