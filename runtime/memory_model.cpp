#include "runtime/memory_model.hpp"

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kernels/core/memory_pool.hpp"
#include "kernels/layers/all.hpp"

namespace hydra {

std::size_t pool_block_bytes(std::size_t bytes) {
  const std::size_t a = MemoryPool::kAlignment;
  return bytes == 0 ? a : (bytes + a - 1) / a * a;
}

namespace {

// MemoryPool's accounting without memory: live bytes in whole blocks, and a cache of freed
// blocks of which the smallest one of at least the requested size is reused when it is at most
// twice that size (counting in full).
class PoolModel {
 public:
  std::size_t allocate(std::size_t bytes) {
    const std::size_t n = pool_block_bytes(bytes);
    std::size_t size = n;
    auto it = free_.lower_bound(n);
    if (it != free_.end() && *it <= 2 * n) {
      size = *it;
      free_.erase(it);
    }
    in_use_ += size;
    peak_ = std::max(peak_, in_use_);
    return size;
  }
  void release(std::size_t block) {
    in_use_ -= block;
    free_.insert(block);
  }
  std::size_t peak() const { return peak_; }

 private:
  std::multiset<std::size_t> free_;
  std::size_t in_use_ = 0, peak_ = 0;
};

// One replayed allocation; released to the pool model with its last reference, as a Tensor's
// storage is.
struct Block {
  Block(PoolModel& p, std::size_t b) : pool(p), bytes(b), block(p.allocate(b)) {}
  ~Block() { pool.release(block); }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  PoolModel& pool;
  std::size_t bytes, block;
};
using Buf = std::shared_ptr<Block>;

struct SimStash {
  std::vector<Buf> tensors;
  std::vector<SimStash> children;
  std::size_t bytes() const {  // as Stash::bytes(): shared storage counted per reference
    std::size_t n = 0;
    for (const Buf& b : tensors)
      n += b ? b->bytes : 0;
    for (const SimStash& c : children)
      n += c.bytes();
    return n;
  }
  void collect(std::set<const Block*>& out) const {
    for (const Buf& b : tensors)
      if (b) out.insert(b.get());
    for (const SimStash& c : children)
      c.collect(out);
  }
};

// Replays the allocations of the layers' training forward and backward (kernels/layers/*.cpp)
// in the order they make them, holding each buffer exactly as long as the layer does.
class Replay {
 public:
  explicit Replay(DType dtype) : dtype_(dtype) {}

  Buf alloc(std::int64_t numel, DType dt) {
    return std::make_shared<Block>(
        pool_, static_cast<std::size_t>(std::max<std::int64_t>(numel, 0)) * dtype_size(dt));
  }
  Buf alloc(std::int64_t numel) { return alloc(numel, dtype_); }
  Buf alloc_bytes(std::size_t bytes) { return std::make_shared<Block>(pool_, bytes); }
  std::size_t peak() const { return pool_.peak(); }

  Buf forward(const Layer& layer, const Buf& x, const Shape& in, SimStash& stash) {
    stash = SimStash{};
    Buf y = forward_rule(layer, x, in, stash);
    // A layer that reports more stash than its replay holds (an implementation newer than this
    // model) keeps the difference as one more buffer, so the stash stays an upper bound.
    const std::size_t reported = layer.stash_bytes(in, dtype_), replayed = stash.bytes();
    if (reported > replayed) stash.tensors.push_back(alloc_bytes(reported - replayed));
    return y;
  }

  Buf backward(const Layer& layer, const Buf& dy, const Shape& in, SimStash& stash) {
    const std::int64_t n_in = shape_numel(in);
    if (const auto* r = dynamic_cast<const Residual*>(&layer)) {
      std::vector<Shape> shapes{in};
      for (std::size_t i = 0; i + 1 < r->size(); ++i)
        shapes.push_back(r->inner(i).output_shape(shapes.back()));
      Buf g = dy;
      for (std::size_t i = r->size(); i-- > 0;)
        g = backward(r->inner(i), g, shapes[i], stash.children.at(i));
      return alloc(n_in);  // dx = dy + g while g is alive
    }
    if (const auto* d = dynamic_cast<const Dropout*>(&layer))
      return d->p() == 0.0 ? dy : alloc(n_in);
    if (dynamic_cast<const Flatten*>(&layer) || dynamic_cast<const PositionEmbedding*>(&layer))
      return dy;
    if (dynamic_cast<const TokenEmbedding*>(&layer)) return nullptr;  // ids have no gradient
    if (const auto p = attention_probs(layer, in)) {
      const std::int64_t btd = n_in;
      Buf dconcat = alloc(btd), d_o = alloc(btd), dheads = alloc(3 * btd);
      Buf dprobs = alloc(p), dscores = alloc(p), dqkv = alloc(3 * btd);
      return alloc(btd);
    }
    // Linear, Conv2d, ReLU, GELU, LayerNorm, MaxPool2d, and unknown layers: a fresh dx.
    return alloc(n_in);
  }

 private:
  // Elements of the attention probabilities [B * heads, T, T] of a CausalSelfAttention (from its
  // stash: x, q/k/v, probs, concat = 5 B T dim + probs); 0 for other layers.
  std::int64_t attention_probs(const Layer& layer, const Shape& in) const {
    if (!dynamic_cast<const CausalSelfAttention*>(&layer)) return 0;
    const std::size_t es = dtype_size(dtype_), stash = layer.stash_bytes(in, dtype_);
    const std::int64_t btd = shape_numel(in);
    if (stash % es != 0) return 0;
    const std::int64_t p = static_cast<std::int64_t>(stash / es) - 5 * btd;
    return p > 0 ? p : 0;
  }

  Buf forward_rule(const Layer& layer, const Buf& x, const Shape& in, SimStash& stash) {
    const Shape out = layer.output_shape(in);
    const std::int64_t n_out = shape_numel(out);
    if (const auto* r = dynamic_cast<const Residual*>(&layer)) {
      stash.children.resize(r->size());
      Buf h = x;
      Shape s = in;
      for (std::size_t i = 0; i < r->size(); ++i) {
        Shape next = r->inner(i).output_shape(s);
        h = forward(r->inner(i), h, s, stash.children[i]);
        s = std::move(next);
      }
      return alloc(n_out);  // y = x + h while h is alive
    }
    if (dynamic_cast<const Linear*>(&layer) || dynamic_cast<const Conv2d*>(&layer) ||
        dynamic_cast<const ReLU*>(&layer) || dynamic_cast<const GELU*>(&layer)) {
      Buf y = alloc(n_out);
      stash.tensors = {x};
      return y;
    }
    if (dynamic_cast<const LayerNorm*>(&layer)) {
      const std::int64_t rows = in.empty() || in.back() == 0 ? 0 : n_out / in.back();
      Buf y = alloc(n_out), mean = alloc(rows), rstd = alloc(rows);
      stash.tensors = {x, mean, rstd};
      return y;
    }
    if (const auto* d = dynamic_cast<const Dropout*>(&layer)) {
      if (d->p() == 0.0) return x;
      Buf y = alloc(n_out), mask = alloc(n_out);
      stash.tensors = {mask};
      return y;
    }
    if (dynamic_cast<const Flatten*>(&layer)) return x;  // a view
    if (dynamic_cast<const MaxPool2d*>(&layer)) {
      Buf y = alloc(n_out);
      stash.tensors = {x, y};
      return y;
    }
    if (dynamic_cast<const TokenEmbedding*>(&layer)) {
      Buf y = alloc(n_out);
      stash.tensors = {x};  // the ids
      return y;
    }
    if (dynamic_cast<const PositionEmbedding*>(&layer)) return alloc(n_out);  // clone of x
    if (const auto p = attention_probs(layer, in)) {
      const std::int64_t btd = shape_numel(in);
      Buf qkv = alloc(3 * btd), heads = alloc(3 * btd), scores = alloc(p), probs = alloc(p);
      Buf o = alloc(btd), concat = alloc(btd), y = alloc(btd);
      stash.tensors = {x, heads, probs, concat};
      return y;
    }
    // Unknown layer: a fresh output and its stash in a buffer of its own (forward() adds it).
    return alloc(n_out);
  }

  PoolModel pool_;  // declared first: outlives every Block of this replay
  DType dtype_;
};

std::string range_str(std::size_t begin, std::size_t end) {
  std::string s = "[";
  s += std::to_string(begin);
  s += ", ";
  s += std::to_string(end);
  s += ")";
  return s;
}

}  // namespace

ShardMemory estimate_shard_memory(const Model& model, std::size_t begin, std::size_t end,
                                  const Shape& input, DType dtype, int optimizer_slots) {
  check(begin < end && end <= model.size(),
        "estimate_shard_memory: layer range " + range_str(begin, end) +
            " is empty or invalid for " + std::to_string(model.size()) + " layers");
  check(optimizer_slots >= 0, "estimate_shard_memory: optimizer_slots must be >= 0, got " +
                                  std::to_string(optimizer_slots));
  check(dtype != DType::i32, "estimate_shard_memory: activations must be floating, got i32");

  ShardMemory m;
  for (std::size_t i = begin; i < end; ++i)
    for (const Parameter& p : model.layer(i).parameters()) {
      if (!p.value.defined()) continue;
      const std::size_t block = pool_block_bytes(p.value.nbytes());
      m.parameters += block * static_cast<std::size_t>(2 + optimizer_slots);
    }

  std::vector<Shape> shapes{input};  // shapes[k]: input of layer begin + k
  for (std::size_t i = begin; i < end; ++i)
    shapes.push_back(model.layer(i).output_shape(shapes.back()));
  const Shape& out = shapes.back();
  const bool ids_in = dynamic_cast<const TokenEmbedding*>(&model.layer(begin)) != nullptr;
  const bool with_loss = end == model.size() && !out.empty() && out.back() > 0;

  Replay r(dtype);  // outlives every buffer below
  std::vector<SimStash> stashes(end - begin);
  Buf dy;
  {
    Buf x = r.alloc(shape_numel(input), ids_in ? DType::i32 : dtype);
    Buf h = x;
    for (std::size_t i = begin; i < end; ++i)
      h = r.forward(model.layer(i), h, shapes[i - begin], stashes[i - begin]);
    x.reset();
    std::set<const Block*> stashed;
    for (const SimStash& s : stashes)
      s.collect(stashed);
    for (const Block* b : stashed)
      m.stash += b->block;
    const std::int64_t n_out = shape_numel(out);
    if (with_loss) {  // softmax_cross_entropy(h, labels): losses, probs, predictions, dlogits
      const std::int64_t rows = n_out / out.back();
      Buf labels = r.alloc(rows, DType::i32);
      Buf losses = r.alloc(rows), probs = r.alloc(n_out), pred = r.alloc(rows, DType::i32);
      dy = r.alloc(n_out);
    } else {
      h.reset();
      dy = r.alloc(n_out);
    }
  }
  Buf g = dy;
  for (std::size_t i = end; i-- > begin;) {
    g = r.backward(model.layer(i), g, shapes[i - begin], stashes[i - begin]);
    stashes[i - begin] = SimStash{};
  }
  g.reset();
  dy.reset();
  m.working = r.peak() - m.stash;
  return m;
}

}  // namespace hydra
