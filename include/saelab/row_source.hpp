// Activation rows in a fixed stream order, one chunk at a time: the common interface of harvested
// shards (activation_loader.hpp: a chunk is a shard) and of the LM itself (activation_stream.hpp: a
// chunk is one forward's batch of contexts). The trainer mixes either through a MixingBuffer, so both
// paths share the buffer, its shuffle and its statistics sample.
#pragma once
#include <cstdint>
#include <vector>

namespace saelab {

class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual int d() const = 0;
  // Replaces `rows` with the next chunk [n, d], n ≥ 1; after the last chunk of the data a new pass
  // begins (an epoch), so a source never runs dry. Throws Error when it cannot produce a row at all.
  virtual void next_chunk(std::vector<float>& rows) = 0;
  virtual int64_t dropped_rows() const { return 0; }  // non-finite rows left out so far

  // Replay without recomputing (a resumed run, MixingBuffer::skip). A source whose chunk sizes are
  // cheap to know (the LM's: tokenizing is enough) says so; the buffer then replays on row counts
  // alone and recomputes only the chunks whose rows it still holds. Others replay by next_chunk.
  virtual bool replayable() const { return false; }
  // Advances past the next chunk exactly as next_chunk would, returning its row count.
  virtual int64_t skip_chunk() {
    std::vector<float> rows;
    next_chunk(rows);
    return static_cast<int64_t>(rows.size()) / d();
  }
  virtual void rewind() {}  // back to the first chunk (replayable sources)
};

}  // namespace saelab
