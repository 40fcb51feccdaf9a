#include "runtime/memory_model.hpp"

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "kernels/core/memory_pool.hpp"
#include "kernels/layers/all.hpp"

namespace hydra {

std::size_t pool_block_bytes(std::size_t bytes) {
  const std::size_t a = MemoryPool::kAlignment;
  return bytes == 0 ? a : (bytes + a - 1) / a * a;
}

namespace {

template <class... Ts>
std::string cat(const Ts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

std::size_t bytes_of(std::int64_t numel, DType dtype) {
  return static_cast<std::size_t>(std::max<std::int64_t>(numel, 0)) * dtype_size(dtype);
}

}  // namespace

// How one layer allocates during a training forward and its backward (kernels/layers/*.cpp),
// precomputed for its input shape.
struct ShardMemoryPlanner::Node {
  enum class Kind {
    stash_input,  // Linear, Conv2d, ReLU, GELU: fresh y, stashes x; fresh dx
    layernorm,    // fresh y, mean, rstd; stashes x, mean, rstd; fresh dx
    dropout,      // p > 0: fresh y and mask, stashes mask; fresh dx. p == 0: identity
    view,         // Flatten: y and dx are views
    maxpool,      // fresh y, stashes x and y; fresh dx
    token_ids,    // TokenEmbedding: fresh y, stashes the ids; no dx
    position,     // PositionEmbedding: y = clone(x), stashes nothing; dx = dy
    attention,    // CausalSelfAttention: see replay
    residual,     // inner layers, then fresh y; backward through them, then fresh dx
    other,        // unknown: fresh y, a stash of its own, fresh dx
  };
  Kind kind = Kind::other;
  std::int64_t n_in = 0, n_out = 0;
  std::int64_t rows = 0;   // layernorm: normalised rows
  std::int64_t probs = 0;  // attention: elements of [B * heads, T, T]
  bool active = true;      // dropout: p > 0
  std::size_t extra_stash =
      0;  // bytes stash_bytes() reports beyond the replay (kept as one more buffer)
  std::vector<Node> inner;  // residual
};

namespace {

using Node = ShardMemoryPlanner::Node;
using Kind = Node::Kind;

// Elements of the attention probabilities, from CausalSelfAttention's stash (x, q/k/v, probs,
// concat = 5 B T dim + probs); 0 when its stash_bytes does not have that form.
std::int64_t attention_probs(const Layer& layer, const Shape& in, DType dtype) {
  const std::size_t es = dtype_size(dtype), stash = layer.stash_bytes(in, dtype);
  if (stash % es != 0) return 0;
  const std::int64_t p = static_cast<std::int64_t>(stash / es) - 5 * shape_numel(in);
  return p > 0 ? p : 0;
}

Node make_node(const Layer& layer, const Shape& in, DType dtype) {
  Node n;
  const Shape out = layer.output_shape(in);
  n.n_in = shape_numel(in);
  n.n_out = shape_numel(out);
  std::size_t replayed = 0;  // stash bytes the replay holds, as Stash::bytes() counts them
  if (const auto* r = dynamic_cast<const Residual*>(&layer)) {
    n.kind = Kind::residual;
    Shape s = in;
    for (std::size_t i = 0; i < r->size(); ++i) {
      n.inner.push_back(make_node(r->inner(i), s, dtype));
      replayed += r->inner(i).stash_bytes(s, dtype) + n.inner.back().extra_stash;
      s = r->inner(i).output_shape(s);
    }
  } else if (dynamic_cast<const Linear*>(&layer) || dynamic_cast<const Conv2d*>(&layer) ||
             dynamic_cast<const ReLU*>(&layer) || dynamic_cast<const GELU*>(&layer)) {
    n.kind = Kind::stash_input;
    replayed = bytes_of(n.n_in, dtype);
  } else if (dynamic_cast<const LayerNorm*>(&layer)) {
    n.kind = Kind::layernorm;
    n.rows = in.empty() || in.back() == 0 ? 0 : n.n_out / in.back();
    replayed = bytes_of(n.n_in + 2 * n.rows, dtype);
  } else if (const auto* d = dynamic_cast<const Dropout*>(&layer)) {
    n.kind = Kind::dropout;
    n.active = d->p() != 0.0;
    replayed = n.active ? bytes_of(n.n_out, dtype) : 0;
  } else if (dynamic_cast<const Flatten*>(&layer)) {
    n.kind = Kind::view;
  } else if (dynamic_cast<const MaxPool2d*>(&layer)) {
    n.kind = Kind::maxpool;
    replayed = bytes_of(n.n_in + n.n_out, dtype);
  } else if (dynamic_cast<const TokenEmbedding*>(&layer)) {
    n.kind = Kind::token_ids;
    replayed = bytes_of(n.n_in, DType::i32);
  } else if (dynamic_cast<const PositionEmbedding*>(&layer)) {
    n.kind = Kind::position;
  } else if (dynamic_cast<const CausalSelfAttention*>(&layer) &&
             (n.probs = attention_probs(layer, in, dtype)) > 0) {
    n.kind = Kind::attention;
    replayed = bytes_of(5 * n.n_in + n.probs, dtype);
  } else {
    n.kind = Kind::other;
  }
  const std::size_t reported = layer.stash_bytes(in, dtype);
  n.extra_stash = reported > replayed ? reported - replayed : 0;
  return n;
}

// Appends everything the replay reads from `n` (its class signature).
void describe(const Node& n, std::vector<std::int64_t>& out) {
  out.insert(out.end(),
             {static_cast<std::int64_t>(n.kind), n.n_in, n.n_out, n.rows, n.probs, n.active ? 1 : 0,
              static_cast<std::int64_t>(n.extra_stash), static_cast<std::int64_t>(n.inner.size())});
  for (const Node& c : n.inner)
    describe(c, out);
}

constexpr std::uint32_t kEndsModel = 0xffffffffu;  // key suffix: the shard ends the model (loss)

// MemoryPool's accounting without memory: live bytes in whole blocks, and a cache of freed
// blocks of which the smallest one of at least the requested size is reused when it is at most
// twice that size (counting in full).
class PoolModel {
 public:
  std::size_t allocate(std::size_t bytes) {
    const std::size_t n = pool_block_bytes(bytes);
    std::size_t size = n;
    auto it = std::lower_bound(free_.begin(), free_.end(), n);
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
    free_.insert(std::upper_bound(free_.begin(), free_.end(), block), block);
  }
  std::size_t peak() const { return peak_; }

 private:
  std::vector<std::size_t> free_;  // sorted block sizes
  std::size_t in_use_ = 0, peak_ = 0;
};

// One replayed allocation, released to the pool model with its last reference, as a Tensor's
// storage is.
struct Block {
  Block(PoolModel& p, std::size_t bytes) : pool(p), block(p.allocate(bytes)) {}
  ~Block() { pool.release(block); }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  PoolModel& pool;
  std::size_t block;
};
using Buf = std::shared_ptr<Block>;

struct SimStash {
  std::vector<Buf> tensors;
  std::vector<SimStash> children;
  void collect(std::unordered_set<const Block*>& out) const {
    for (const Buf& b : tensors)
      out.insert(b.get());
    for (const SimStash& c : children)
      c.collect(out);
  }
};

// Replays the allocations of the layers' training forward and backward in the order they make
// them, holding each buffer exactly as long as the layer does.
class Replay {
 public:
  explicit Replay(DType dtype) : dtype_(dtype) {}

  Buf alloc(std::int64_t numel, DType dt) {
    return std::make_shared<Block>(pool_, bytes_of(numel, dt));
  }
  Buf alloc(std::int64_t numel) { return alloc(numel, dtype_); }
  std::size_t peak() const { return pool_.peak(); }

  Buf forward(const Node& n, const Buf& x, SimStash& stash) {
    stash = SimStash{};
    Buf y = forward_rule(n, x, stash);
    if (n.extra_stash > 0) stash.tensors.push_back(std::make_shared<Block>(pool_, n.extra_stash));
    return y;
  }

  Buf backward(const Node& n, const Buf& dy, SimStash& stash) {
    switch (n.kind) {
      case Kind::residual: {
        Buf g = dy;
        for (std::size_t i = n.inner.size(); i-- > 0;)
          g = backward(n.inner[i], g, stash.children.at(i));
        return alloc(n.n_in);  // dx = dy + g while g is alive
      }
      case Kind::dropout:
        return n.active ? alloc(n.n_in) : dy;
      case Kind::view:
      case Kind::position:
        return dy;
      case Kind::token_ids:
        return nullptr;  // ids have no gradient
      case Kind::attention: {
        const std::int64_t btd = n.n_in;
        Buf dconcat = alloc(btd), d_o = alloc(btd), dheads = alloc(3 * btd);
        Buf dprobs = alloc(n.probs), dscores = alloc(n.probs), dqkv = alloc(3 * btd);
        return alloc(btd);
      }
      case Kind::stash_input:
      case Kind::layernorm:
      case Kind::maxpool:
      case Kind::other:
        return alloc(n.n_in);
    }
    return alloc(n.n_in);
  }

 private:
  Buf forward_rule(const Node& n, const Buf& x, SimStash& stash) {
    switch (n.kind) {
      case Kind::residual: {
        stash.children.resize(n.inner.size());
        Buf h = x;
        for (std::size_t i = 0; i < n.inner.size(); ++i)
          h = forward(n.inner[i], h, stash.children[i]);
        return alloc(n.n_out);  // y = x + h while h is alive
      }
      case Kind::stash_input:
      case Kind::token_ids: {
        Buf y = alloc(n.n_out);
        stash.tensors = {x};
        return y;
      }
      case Kind::layernorm: {
        Buf y = alloc(n.n_out), mean = alloc(n.rows), rstd = alloc(n.rows);
        stash.tensors = {x, mean, rstd};
        return y;
      }
      case Kind::dropout: {
        if (!n.active) return x;
        Buf y = alloc(n.n_out), mask = alloc(n.n_out);
        stash.tensors = {mask};
        return y;
      }
      case Kind::view:
        return x;
      case Kind::maxpool: {
        Buf y = alloc(n.n_out);
        stash.tensors = {x, y};
        return y;
      }
      case Kind::position:
        return alloc(n.n_out);  // clone of x
      case Kind::attention: {
        const std::int64_t btd = n.n_in;
        Buf qkv = alloc(3 * btd), heads = alloc(3 * btd), scores = alloc(n.probs);
        Buf probs = alloc(n.probs), o = alloc(btd), concat = alloc(btd), y = alloc(btd);
        stash.tensors = {x, heads, probs, concat};
        return y;
      }
      case Kind::other:
        return alloc(n.n_out);  // forward() adds its stash
    }
    return alloc(n.n_out);
  }

  PoolModel pool_;  // declared first: outlives every Block of this replay
  DType dtype_;
};

}  // namespace

ShardMemoryPlanner::ShardMemoryPlanner(const Model& model, const Shape& input, DType dtype,
                                       int optimizer_slots)
    : ShardMemoryPlanner(model, 0, model.size(), input, dtype, optimizer_slots) {}

ShardMemoryPlanner::ShardMemoryPlanner(const Model& model, std::size_t first, std::size_t last,
                                       const Shape& input, DType dtype, int optimizer_slots)
    : first_(first), last_(last), dtype_(dtype), model_layers_(model.size()) {
  check(first < last && last <= model.size(),
        cat("shard memory: layer range [", first, ", ", last, ") is empty or invalid for ",
            model.size(), " layers"));
  check(optimizer_slots >= 0,
        cat("shard memory: optimizer_slots must be >= 0, got ", optimizer_slots));
  check(dtype != DType::i32, "shard memory: activations must be floating, got i32");
  shapes_.push_back(input);
  params_.push_back(0);
  std::map<std::vector<std::int64_t>, std::uint32_t> classes;
  for (std::size_t i = first; i < last; ++i) {
    const Layer& layer = model.layer(i);
    std::size_t p = 0;
    for (const Parameter& param : layer.parameters())
      if (param.value.defined())
        p += pool_block_bytes(bytes_of(param.value.numel(), dtype)) *
             static_cast<std::size_t>(2 + optimizer_slots);
    params_.push_back(params_.back() + p);
    nodes_.push_back(make_node(layer, shapes_.back(), dtype));
    ids_.push_back(dynamic_cast<const TokenEmbedding*>(&layer) != nullptr);
    std::vector<std::int64_t> signature{static_cast<std::int64_t>(p), ids_.back() ? 1 : 0};
    describe(nodes_.back(), signature);
    class_.push_back(
        classes.emplace(std::move(signature), static_cast<std::uint32_t>(classes.size()))
            .first->second);
    shapes_.push_back(layer.output_shape(shapes_.back()));
  }
}

ShardMemoryPlanner::~ShardMemoryPlanner() = default;
ShardMemoryPlanner::ShardMemoryPlanner(ShardMemoryPlanner&&) noexcept = default;
ShardMemoryPlanner& ShardMemoryPlanner::operator=(ShardMemoryPlanner&&) noexcept = default;

const Shape& ShardMemoryPlanner::shape(std::size_t layer) const {
  check(layer >= first_ && layer <= last_,
        cat("shard memory: no shape for layer ", layer, " outside [", first_, ", ", last_, "]"));
  return shapes_[layer - first_];
}

ShardMemory ShardMemoryPlanner::estimate(std::size_t begin, std::size_t end) {
  check(first_ <= begin && begin < end && end <= last_,
        cat("shard memory: layer range [", begin, ", ", end, ") is empty or outside [", first_,
            ", ", last_, ")"));
  const std::size_t b = begin - first_, e = end - first_;
  std::vector<std::uint32_t> key(class_.begin() + static_cast<std::ptrdiff_t>(b),
                                 class_.begin() + static_cast<std::ptrdiff_t>(e));
  if (end == model_layers_) key.push_back(kEndsModel);
  const auto it = memo_.find(key);
  if (it != memo_.end()) return it->second;
  const ShardMemory m = replay(b, e);
  memo_.emplace(std::move(key), m);
  return m;
}

ShardMemory ShardMemoryPlanner::replay(std::size_t b, std::size_t e) const {
  const std::size_t end = first_ + e;
  ShardMemory m;
  m.parameters = params_[e] - params_[b];
  const Shape& out = shapes_[e];
  const bool with_loss = end == model_layers_ && !out.empty() && out.back() > 0;

  Replay r(dtype_);  // outlives every buffer below
  std::vector<SimStash> stashes(e - b);
  Buf dy;
  {
    Buf x = r.alloc(shape_numel(shapes_[b]), ids_[b] ? DType::i32 : dtype_);
    Buf h = x;
    for (std::size_t k = b; k < e; ++k)
      h = r.forward(nodes_[k], h, stashes[k - b]);
    x.reset();
    std::unordered_set<const Block*> stashed;
    for (const SimStash& s : stashes)
      s.collect(stashed);
    for (const Block* blk : stashed)
      m.stash += blk->block;
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
  for (std::size_t k = e; k-- > b;) {
    g = r.backward(nodes_[k], g, stashes[k - b]);
    stashes[k - b] = SimStash{};
  }
  g.reset();
  dy.reset();
  m.working = r.peak() - m.stash;
  return m;
}

ShardMemory estimate_shard_memory(const Model& model, std::size_t begin, std::size_t end,
                                  const Shape& input, DType dtype, int optimizer_slots) {
  return ShardMemoryPlanner(model, begin, end, input, dtype, optimizer_slots).estimate(begin, end);
}

}  // namespace hydra
