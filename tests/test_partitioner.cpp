// Memory model and partitioner. The memory-model checks run one steady-state training step of a
// shard (forward, loss or incoming gradient, backward, optimizer update) on a capped virtual
// device cpu:N (N = 71..76, one per test case, emptied between runs) and compare the pool's
// measured peak with the estimate.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <limits>

#include "kernels/core/memory_pool.hpp"
#include "kernels/layers/all.hpp"
#include "kernels/loss.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "kernels/random.hpp"
#include "runtime/partitioner.hpp"

using namespace hydra;

namespace {

Tensor random_floats(const Shape& s, std::uint64_t seed, DType dtype) {
  std::vector<double> v(static_cast<std::size_t>(shape_numel(s)));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = 2.0 * uniform01(seed, i) - 1.0;
  return Tensor::from_vector(v, s, dtype);
}

Tensor random_ids(const Shape& s, std::int64_t bound, std::uint64_t seed) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(shape_numel(s)));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<std::int32_t>(splitmix64(seed ^ splitmix64(i)) % bound);
  return Tensor::from_ints(v, s);
}

Shape input_of(const Model& m, Shape s, std::size_t begin) {
  for (std::size_t i = 0; i < begin; ++i)
    s = m.layer(i).output_shape(s);
  return s;
}

struct Measured {
  std::size_t params = 0;  // pool bytes of values, grads and optimizer state
  std::size_t peak = 0;    // pool peak over the step, parameters included
  std::size_t held = 0;    // after forward, input released: stash and output
  std::size_t output = 0;  // pool bytes of the output
};

// One steady-state training step of layers [begin, end) of `m` (on the host in `dtype`) on the
// empty device `d` with the given capacity, following the protocol of runtime/memory_model.hpp.
// `vocab` > 0: the model takes token ids below vocab. The layers return to the host afterwards
// and the device is left empty.
Measured run_shard(Model& m, std::size_t begin, std::size_t end, const Shape& model_input,
                   std::int64_t vocab, Device d, DType dtype, Optimizer& opt,
                   std::size_t capacity) {
  ExecContext host = ExecContext::on(Device::host());
  for (std::size_t i = begin; i < end; ++i)  // the optimizer state exists before the shard runs
    for (Parameter& p : m.layer(i).parameters())
      opt.update(p, host);
  MemoryPool& pool = memory_pool(d);
  REQUIRE(pool.in_use() == 0);
  pool.release_cached();
  set_memory_capacity(d, capacity);
  for (std::size_t i = begin; i < end; ++i)
    m.layer(i).to(d, dtype);
  Measured r;
  r.params = pool.in_use();
  pool.reset_peak();

  ExecContext ctx = ExecContext::on(d);
  const Shape in = input_of(m, model_input, begin);
  const Tensor host_x =
      begin == 0 && vocab > 0 ? random_ids(in, vocab, 1) : random_floats(in, 2, dtype);
  std::vector<Stash> stashes;
  Tensor y;
  {
    const Tensor x = host_x.to(d);
    y = m.forward(ctx, x, stashes, true, begin, end);
  }
  r.held = pool.in_use() - r.params;
  r.output = pool_block_bytes(y.nbytes());
  Tensor dy;
  if (end == m.size()) {
    const Shape rows(y.shape().begin(), y.shape().end() - 1);
    const Tensor labels = random_ids(rows, y.dim(-1), 3).to(d);
    const LossResult loss = softmax_cross_entropy(ctx, y, labels);
    dy = loss.dlogits;
    y = Tensor();
  } else {
    const Shape out = y.shape();
    y = Tensor();
    dy = random_floats(out, 4, dtype).to(d);
  }
  for (std::size_t i = begin; i < end; ++i)
    m.layer(i).zero_grad(ctx);
  { const Tensor dx = m.backward(ctx, dy, stashes, begin, end); }
  dy = Tensor();
  for (std::size_t i = begin; i < end; ++i)
    for (Parameter& p : m.layer(i).parameters())
      opt.update(p, ctx);
  r.peak = pool.peak();

  for (std::size_t i = begin; i < end; ++i)
    m.layer(i).to(Device::host(), dtype);
  CHECK(pool.in_use() == 0);
  pool.release_cached();
  return r;
}

struct Range {
  std::size_t begin, end;
};

// The estimate of each range bounds the measured peak from above, within `factor`; returns the
// largest estimate / peak ratio seen.
double check_estimates(Model& m, const Shape& input, std::int64_t vocab,
                       const std::vector<Range>& ranges, int device, DType dtype, Optimizer& opt,
                       int slots, double factor, const char* what) {
  double worst = 0;
  for (const Range& r : ranges) {
    const ShardMemory est =
        estimate_shard_memory(m, r.begin, r.end, input_of(m, input, r.begin), dtype, slots);
    const Measured got = run_shard(m, r.begin, r.end, input, vocab, Device::cpu(device), dtype, opt,
                                   4 * est.total() + (1 << 20));
    const double ratio = static_cast<double>(est.total()) / static_cast<double>(got.peak);
    worst = std::max(worst, ratio);
    INFO(std::string(what) << " layers [" << r.begin << ", " << r.end << "): estimate "
                           << est.total() << " (parameters " << est.parameters << " stash "
                           << est.stash << " working " << est.working << ") measured peak "
                           << got.peak << " ratio " << ratio);
    CHECK(est.parameters == got.params);
    // After forward the device holds the stash and the output (in a block of at most twice its
    // size when the pool reused a cached one), unless the output is stashed too.
    CHECK(est.stash <= got.held);
    CHECK(got.held <= est.stash + 2 * got.output);
    CHECK(got.peak <= est.total());
    CHECK(ratio <= factor);
    std::printf("memory model %s [%zu, %zu): estimate %zu, measured %zu, ratio %.4f\n", what,
                r.begin, r.end, est.total(), got.peak, ratio);
  }
  return worst;
}

// The estimate is exact for the layers the replay models: allow 2% for honest slack.
constexpr double kTightness = 1.02;

}  // namespace

TEST_CASE("pool_block_bytes rounds to whole 256-byte blocks") {
  CHECK(pool_block_bytes(0) == 256);
  CHECK(pool_block_bytes(1) == 256);
  CHECK(pool_block_bytes(256) == 256);
  CHECK(pool_block_bytes(257) == 512);
}

TEST_CASE("memory model counts parameters with grads and optimizer state in pool blocks") {
  Model m;
  m.emplace<Linear>(10, 7);  // weight 280 bytes -> 512, bias 28 bytes -> 256
  const ShardMemory adam = estimate_shard_memory(m, 0, 1, {3, 10}, DType::f32, 2);
  CHECK(adam.parameters == 4 * (512 + 256));
  const ShardMemory sgd = estimate_shard_memory(m, 0, 1, {3, 10}, DType::f32, 1);
  CHECK(sgd.parameters == 3 * (512 + 256));
  // Parameters are counted in the dtype they will have on the device, whatever the host copy's.
  CHECK(estimate_shard_memory(m, 0, 1, {3, 10}, DType::f64, 0).parameters == 2 * (768 + 256));
  m.to(Device::host(), DType::f64);
  CHECK(estimate_shard_memory(m, 0, 1, {3, 10}, DType::f64, 0).parameters == 2 * (768 + 256));
  CHECK(estimate_shard_memory(m, 0, 1, {3, 10}, DType::bf16, 0).parameters == 2 * (256 + 256));
  // Stash: the input, one block. Working: output, labels/losses/probs/predictions, dlogits, dx.
  CHECK(adam.stash == 256);
  CHECK(adam.working > 0);
  CHECK_THROWS_AS(estimate_shard_memory(m, 1, 1, {3, 10}, DType::f32, 2), Error);
  CHECK_THROWS_AS(estimate_shard_memory(m, 0, 2, {3, 10}, DType::f32, 2), Error);
  CHECK_THROWS_WITH_AS(estimate_shard_memory(m, 0, 1, {3, 11}, DType::f32, 2),
                       doctest::Contains("Linear(10->7)"), Error);
}

TEST_CASE("memory model stash is the layers' stash_bytes counted once per buffer") {
  Model mlp = make_mlp(784, {256, 128}, 10);
  const Shape in{32, 1, 28, 28};
  // Layers 1..4: Linear stashes its input, ReLU stashes the Linear output: no buffer shared.
  std::size_t sum = 0;
  Shape s = input_of(mlp, in, 1);
  for (std::size_t i = 1; i < 4; ++i) {
    sum += pool_block_bytes(mlp.layer(i).stash_bytes(s, DType::f32));
    s = mlp.layer(i).output_shape(s);
  }
  CHECK(estimate_shard_memory(mlp, 1, 4, input_of(mlp, in, 1), DType::f32, 2).stash == sum);
  // CNN: MaxPool stashes its output, which the next Conv2d stashes again: counted once.
  Model cnn = make_cnn();
  const Shape img{8, 1, 28, 28};
  std::size_t listed = 0;
  s = img;
  for (std::size_t i = 0; i < cnn.size(); ++i) {
    listed += cnn.layer(i).stash_bytes(s, DType::f32);
    s = cnn.layer(i).output_shape(s);
  }
  const ShardMemory est = estimate_shard_memory(cnn, 0, cnn.size(), img, DType::f32, 2);
  CHECK(est.stash < listed);
  CHECK(est.stash >= listed - 2 * 8 * 6 * 14 * 14 * 4);
}

TEST_CASE("memory model bounds the measured peak of MLP shards") {
  Model m = make_mlp(784, {256, 128}, 10, 0.1);
  m.init(1);
  AdamW opt(1e-3);
  const std::vector<Range> ranges{{0, m.size()}, {0, 3}, {1, 4}, {2, 6}, {4, m.size()}, {7, 8}};
  check_estimates(m, {32, 1, 28, 28}, 0, ranges, 71, DType::f32, opt, 2, kTightness, "MLP");
}

TEST_CASE("memory model bounds the measured peak of CNN shards") {
  Model m = make_cnn();
  m.init(2);
  AdamW opt(1e-3);
  const std::vector<Range> ranges{{0, m.size()}, {0, 3}, {2, 5}, {3, 7}, {5, m.size()}};
  check_estimates(m, {16, 1, 28, 28}, 0, ranges, 72, DType::f32, opt, 2, kTightness, "CNN");
}

TEST_CASE("memory model bounds the measured peak of GPT shards") {
  Model m = make_gpt(64, 16, 32, 4, 2);  // 8 layers
  m.init(3);
  AdamW opt(1e-3);
  const std::vector<Range> ranges{{0, m.size()}, {0, 1},        {0, 3},       {2, 4},
                                  {3, 6},        {4, m.size()}, {6, m.size()}};
  check_estimates(m, {4, 16}, 64, ranges, 73, DType::f32, opt, 2, kTightness, "GPT");
}

TEST_CASE("memory model bounds the measured peak in f64 with SGD momentum") {
  Model gpt = make_gpt(50, 12, 24, 3, 1);
  gpt.init(4);
  gpt.to(Device::host(), DType::f64);
  SGD sgd(0.1, 0.9);
  check_estimates(gpt, {3, 12}, 50, {{0, gpt.size()}, {1, 4}, {3, gpt.size()}}, 74, DType::f64, sgd,
                  1, kTightness, "GPT f64");
  Model mlp = make_mlp(64, {48, 48}, 5, 0.2);
  mlp.init(5);
  mlp.to(Device::host(), DType::f64);
  check_estimates(mlp, {10, 64}, 0, {{0, mlp.size()}, {2, 5}}, 74, DType::f64, sgd, 1, kTightness,
                  "MLP f64");
}

namespace {

// A layer the memory model does not know: y = 2 x, stashing x (which it does not need).
class Doubler : public Layer {
 public:
  std::string name() const override { return "Doubler"; }
  Shape output_shape(const Shape& input) const override { return input; }
  Tensor forward(ExecContext& ctx, const Tensor& x, Stash& stash, bool training) override {
    stash.clear();
    Tensor y = Tensor::empty(x.shape(), x.dtype(), ctx.device);
    ctx.backend().add(y, x, x, ctx);
    if (training) stash.tensors = {x};
    return y;
  }
  Tensor backward(ExecContext& ctx, const Tensor& dy, Stash&) override {
    Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), ctx.device);
    ctx.backend().add(dx, dy, dy, ctx);
    return dx;
  }
  double forward_flops(const Shape& input) const override {
    return static_cast<double>(shape_numel(input));
  }
  std::size_t stash_bytes(const Shape& input, DType dtype) const override {
    return static_cast<std::size_t>(shape_numel(input)) * dtype_size(dtype);
  }
  void reset_parameters(std::uint64_t) override {}
};

}  // namespace

TEST_CASE("memory model bounds layers it does not know conservatively") {
  Model m;
  m.emplace<Linear>(64, 96).emplace<Doubler>().emplace<ReLU>().emplace<Doubler>();
  m.emplace<Linear>(96, 8);
  m.init(8);
  AdamW opt(1e-3);
  // The unknown layer's stash is counted as a buffer of its own although it is the input.
  const double worst = check_estimates(m, {32, 64}, 0, {{0, m.size()}, {1, 4}, {0, 2}}, 77,
                                       DType::f32, opt, 2, 1.3, "unknown layers");
  CHECK(worst > 1.0);
}

TEST_CASE("a shard runs within a pool capped at its estimate") {
  Model gpt = make_gpt(64, 16, 32, 4, 2);
  gpt.init(6);
  AdamW opt(1e-3);
  for (const Range r : {Range{0, gpt.size()}, Range{2, 5}}) {
    const ShardMemory est =
        estimate_shard_memory(gpt, r.begin, r.end, input_of(gpt, {4, 16}, r.begin), DType::f32, 2);
    Measured got;
    CHECK_NOTHROW(got = run_shard(gpt, r.begin, r.end, {4, 16}, 64, Device::cpu(75), DType::f32,
                                  opt, est.total()));
    CHECK(got.peak <= est.total());
  }
  // One byte less than the parameters cannot even hold the shard.
  const ShardMemory est =
      estimate_shard_memory(gpt, 2, 5, input_of(gpt, {4, 16}, 2), DType::f32, 2);
  CHECK_THROWS_AS(
      run_shard(gpt, 2, 5, {4, 16}, 64, Device::cpu(75), DType::f32, opt, est.parameters - 1),
      OutOfMemory);
  for (std::size_t i = 0; i < gpt.size(); ++i)  // the failed run may have left layers there
    gpt.layer(i).to(Device::host());
  CHECK(memory_pool(Device::cpu(75)).in_use() == 0);
}

// --- Partitioner --------------------------------------------------------------------------------

namespace {

// Brute force over all cuts: the fewest fitting shards and, with `shards` (or that fewest) of
// them, the smallest maximum shard FLOPs.
struct Oracle {
  std::size_t fewest = 0;
  double best_max = std::numeric_limits<double>::infinity();
};

Oracle brute_force(const Model& m, const Shape& input, const PartitionOptions& o) {
  const std::size_t n = m.size();
  std::vector<Shape> shapes{input};
  std::vector<double> flops;
  for (std::size_t i = 0; i < n; ++i) {
    flops.push_back(m.layer(i).forward_flops(shapes[i]));
    shapes.push_back(m.layer(i).output_shape(shapes[i]));
  }
  std::vector<std::vector<bool>> fits(n, std::vector<bool>(n + 1, false));
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j <= n; ++j)
      fits[i][j] = estimate_shard_memory(m, i, j, shapes[i], o.dtype, o.optimizer_slots).total() <=
                   o.budget_bytes;
  Oracle r;
  r.fewest = n + 1;
  std::vector<std::pair<std::size_t, double>> fitting;  // (shards, max cost)
  for (std::uint64_t mask = 0; mask < (std::uint64_t{1} << (n - 1)); ++mask) {
    std::size_t begin = 0, count = 0;
    double worst = 0;
    bool ok = true;
    for (std::size_t j = 1; j <= n && ok; ++j) {
      if (j < n && !(mask >> (j - 1) & 1)) continue;
      ok = fits[begin][j];
      double c = 0;
      for (std::size_t k = begin; k < j; ++k)
        c += flops[k];
      worst = std::max(worst, c);
      ++count;
      begin = j;
    }
    if (!ok) continue;
    r.fewest = std::min(r.fewest, count);
    fitting.emplace_back(count, worst);
  }
  const std::size_t want = o.shards ? o.shards : r.fewest;
  for (const auto& [count, worst] : fitting)
    if (count == want) r.best_max = std::min(r.best_max, worst);
  return r;
}

// The memory of the most demanding single-layer shard: the smallest budget partition accepts.
std::size_t largest_layer(const Model& m, const Shape& input) {
  std::size_t most = 0;
  Shape s = input;
  for (std::size_t i = 0; i < m.size(); ++i) {
    most = std::max(most, estimate_shard_memory(m, i, i + 1, s, DType::f32, 2).total());
    s = m.layer(i).output_shape(s);
  }
  return most;
}

double max_flops(const std::vector<ShardSpec>& shards) {
  double m = 0;
  for (const ShardSpec& s : shards)
    m = std::max(m, s.forward_flops);
  return m;
}

void check_cover(const Model& m, const Shape& input, const std::vector<ShardSpec>& shards,
                 const PartitionOptions& o) {
  REQUIRE(!shards.empty());
  CHECK(shards.front().begin == 0);
  CHECK(shards.back().end == m.size());
  CHECK(shards.front().input_shape == input);
  CHECK(shards.back().output_shape == m.output_shape(input));
  double total = 0;
  for (std::size_t k = 0; k < shards.size(); ++k) {
    const ShardSpec& s = shards[k];
    CHECK(s.begin < s.end);
    if (k > 0) {
      CHECK(s.begin == shards[k - 1].end);
      CHECK(s.input_shape == shards[k - 1].output_shape);
    }
    CHECK(s.memory.total() <= o.budget_bytes);
    const ShardMemory again =
        estimate_shard_memory(m, s.begin, s.end, s.input_shape, o.dtype, o.optimizer_slots);
    CHECK(again.total() == s.memory.total());
    total += s.forward_flops;
  }
  CHECK(total == doctest::Approx(m.forward_flops(input)));
}

}  // namespace

TEST_CASE("partition cuts an MLP into the fewest shards that fit a tight budget") {
  Model m = make_mlp(256, {256, 256, 256}, 10, 0.1);  // 11 layers
  const Shape input{256, 256};
  const std::size_t whole = estimate_shard_memory(m, 0, m.size(), input, DType::f32, 2).total();
  const std::size_t largest = largest_layer(m, input);
  std::size_t last = 0;
  for (const double fraction : {1.0, 0.5, 0.2, 0.0}) {
    PartitionOptions o;
    o.budget_bytes =
        largest + static_cast<std::size_t>(fraction * static_cast<double>(whole - largest));
    INFO("budget " << o.budget_bytes << " whole " << whole << " largest layer " << largest);
    const auto shards = partition(m, input, o);
    check_cover(m, input, shards, o);
    const Oracle best = brute_force(m, input, o);
    CHECK(shards.size() == best.fewest);
    CHECK(max_flops(shards) == doctest::Approx(best.best_max));
    if (fraction == 1.0) CHECK(shards.size() == 1);
    CHECK(shards.size() >= last);  // tighter budgets never need fewer shards
    last = shards.size();
  }
  CHECK(last >= 4);
}

TEST_CASE("partition cuts a GPT under a tight budget and every shard runs within it") {
  Model gpt = make_gpt(64, 16, 32, 4, 3);  // 10 layers
  gpt.init(7);
  const Shape input{4, 16};
  const std::size_t whole = estimate_shard_memory(gpt, 0, gpt.size(), input, DType::f32, 2).total();
  const std::size_t largest = largest_layer(gpt, input);
  PartitionOptions o;
  o.budget_bytes = largest + (whole - largest) / 5;
  const auto shards = partition(gpt, input, o);
  check_cover(gpt, input, shards, o);
  const Oracle best = brute_force(gpt, input, o);
  CHECK(shards.size() == best.fewest);
  CHECK(shards.size() >= 3);
  CHECK(max_flops(shards) == doctest::Approx(best.best_max));
  AdamW opt(1e-3);
  for (const ShardSpec& s : shards) {
    INFO("shard [" << s.begin << ", " << s.end << ")");
    Measured got;
    CHECK_NOTHROW(got = run_shard(gpt, s.begin, s.end, input, 64, Device::cpu(76), DType::f32, opt,
                                  o.budget_bytes));
    CHECK(got.peak <= s.memory.total());
  }
}

TEST_CASE("partition balances forward FLOPs around a heavy layer") {
  Model m;
  m.emplace<Linear>(32, 32).emplace<ReLU>().emplace<Linear>(32, 32).emplace<ReLU>();
  m.emplace<Linear>(32, 512).emplace<ReLU>().emplace<Linear>(512, 32).emplace<ReLU>();
  m.emplace<Linear>(32, 32).emplace<ReLU>().emplace<Linear>(32, 10);
  const Shape input{16, 32};
  PartitionOptions o;
  o.budget_bytes = std::size_t{1} << 30;
  o.shards = 3;
  const auto shards = partition(m, input, o);
  REQUIRE(shards.size() == 3);
  check_cover(m, input, shards, o);
  CHECK(max_flops(shards) == doctest::Approx(brute_force(m, input, o).best_max));
  // The two heavy Linears (layers 4 and 6) land in different shards.
  const auto shard_of = [&](std::size_t layer) {
    for (std::size_t k = 0; k < shards.size(); ++k)
      if (layer >= shards[k].begin && layer < shards[k].end) return k;
    return shards.size();
  };
  CHECK(shard_of(4) != shard_of(6));
  // Better than cutting into equal numbers of layers.
  double naive = 0;
  for (const auto& [b, e] : {std::pair<std::size_t, std::size_t>{0, 4}, {4, 8}, {8, 11}}) {
    double c = 0;
    Shape s = input_of(m, input, b);
    for (std::size_t i = b; i < e; ++i) {
      c += m.layer(i).forward_flops(s);
      s = m.layer(i).output_shape(s);
    }
    naive = std::max(naive, c);
  }
  CHECK(max_flops(shards) < 0.8 * naive);
  // With the heavy layers alone: 2 shards put one heavy layer in each.
  o.shards = 2;
  const auto two = partition(m, input, o);
  REQUIRE(two.size() == 2);
  CHECK(two[0].end > 4);
  CHECK(two[0].end <= 6);
}

TEST_CASE("partition minimises the largest shard rather than the spread") {
  // Forward FLOPs per row: 1056 260 36 144 2112 4128 260. In 3 shards the smallest maximum is
  // 4128 ([0, 5) [5, 6) [6, 7)); the smallest sum of squares would give 4388 ([0, 4) [4, 5)
  // [5, 7)).
  Model m;
  const std::vector<std::int64_t> widths{16, 32, 4, 4, 16, 64, 32, 4};
  for (std::size_t i = 0; i + 1 < widths.size(); ++i)
    m.emplace<Linear>(widths[i], widths[i + 1]);
  const Shape input{2, 16};
  PartitionOptions o;
  o.budget_bytes = std::size_t{1} << 30;
  o.shards = 3;
  const auto shards = partition(m, input, o);
  REQUIRE(shards.size() == 3);
  CHECK(max_flops(shards) == doctest::Approx(2 * 4128));
  CHECK(shards[0].end == 5);
  CHECK(shards[1].end == 6);
}

TEST_CASE("partition makes exactly the requested number of shards") {
  Model m = make_mlp(100, {64, 64}, 10);  // 6 layers
  const Shape input{8, 100};
  PartitionOptions o;
  o.budget_bytes = std::size_t{1} << 30;
  for (std::size_t k = 1; k <= m.size(); ++k) {
    o.shards = k;
    const auto shards = partition(m, input, o);
    CHECK(shards.size() == k);
    check_cover(m, input, shards, o);
    CHECK(max_flops(shards) == doctest::Approx(brute_force(m, input, o).best_max));
  }
  o.shards = m.size() + 1;
  CHECK_THROWS_WITH_AS(partition(m, input, o), doctest::Contains("at least one layer"), Error);
  // A budget that needs at least 2 shards cannot be met with 1.
  o.shards = 0;
  o.budget_bytes = estimate_shard_memory(m, 0, m.size(), input, DType::f32, 2).total() - 1;
  const std::size_t fewest = partition(m, input, o).size();
  CHECK(fewest >= 2);
  o.shards = 1;
  CHECK_THROWS_WITH_AS(
      partition(m, input, o),
      doctest::Contains(("at least " + std::to_string(fewest) + " shards").c_str()), Error);
}

TEST_CASE("partition names a layer that alone exceeds the budget") {
  Model m = make_mlp(64, {512}, 10);  // Flatten, Linear(64->512), ReLU, Linear(512->10)
  const Shape input{4, 64};
  const ShardMemory big = estimate_shard_memory(m, 1, 2, input, DType::f32, 2);
  PartitionOptions o;
  o.budget_bytes = big.total() - 1;
  try {
    partition(m, input, o);
    FAIL("partition accepted a layer larger than the budget");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find("layer 1 ") != std::string::npos);
    CHECK(what.find("Linear(64->512)") != std::string::npos);
    CHECK(what.find(format_bytes(big.total())) != std::string::npos);
    CHECK(what.find(format_bytes(o.budget_bytes)) != std::string::npos);
  }
  o.budget_bytes = 0;
  CHECK_THROWS_WITH_AS(partition(m, input, o), doctest::Contains("budget"), Error);
  o.budget_bytes = std::size_t{1} << 30;
  CHECK_THROWS_WITH_AS(partition(m, {4, 65}, o), doctest::Contains("Linear(64->512)"), Error);
}
