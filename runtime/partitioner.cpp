#include "runtime/partitioner.hpp"

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

namespace hydra {

namespace {

template <class... Ts>
std::string cat(const Ts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();

std::string memory_str(const ShardMemory& m) {
  return cat(format_bytes(m.total()), " (parameters ", format_bytes(m.parameters), ", stash ",
             format_bytes(m.stash), ", working ", format_bytes(m.working), ")");
}

// Which shards [i, j) fit the budget, from the memory model.
class Feasibility {
 public:
  Feasibility(const Model& model, ShardMemoryPlanner& planner, const PartitionOptions& o)
      : n_(model.size()), fits_(n_) {
    for (std::size_t i = 0; i < n_; ++i) {
      for (std::size_t j = i + 1; j <= n_; ++j) {
        const ShardMemory m = planner.estimate(i, j);
        if (j == i + 1 && m.total() > o.budget_bytes)
          throw Error(cat("partition: layer ", i, " (", model.layer(i).name(), ") alone needs ",
                          memory_str(m), " but the shard budget is ", format_bytes(o.budget_bytes),
                          "; give the shard more memory or use a smaller minibatch"));
        // Parameters and stash only grow with j and are held at once, so no longer shard from
        // i can fit either.
        if (m.parameters + m.stash > o.budget_bytes) break;
        fits_[i].resize(j - i, false);
        fits_[i][j - i - 1] = m.total() <= o.budget_bytes;
      }
    }
  }
  bool operator()(std::size_t i, std::size_t j) const {
    return j - i - 1 < fits_[i].size() && fits_[i][j - i - 1];
  }

 private:
  std::size_t n_;
  std::vector<std::vector<bool>> fits_;  // fits_[i][j - i - 1]
};

}  // namespace

std::vector<ShardSpec> partition(const Model& model, const Shape& input,
                                 const PartitionOptions& options) {
  const std::size_t n = model.size();
  check(n > 0, "partition: the model has no layers");
  check(options.budget_bytes > 0, "partition: budget_bytes must be positive");
  check(options.optimizer_slots >= 0,
        cat("partition: optimizer_slots must be >= 0, got ", options.optimizer_slots));
  if (options.shards > n)
    throw Error(cat("partition: cannot cut ", n, " layers into ", options.shards,
                    " shards: every shard needs at least one layer"));

  ShardMemoryPlanner planner(model, input, options.dtype, options.optimizer_slots);
  std::vector<double> prefix{0.0};  // forward FLOPs of layers [0, i)
  for (std::size_t i = 0; i < n; ++i)
    prefix.push_back(prefix.back() + model.layer(i).forward_flops(planner.shape(i)));
  const auto cost = [&](std::size_t i, std::size_t j) { return prefix[j] - prefix[i]; };
  const auto spec = [&](std::size_t i, std::size_t j) {
    ShardSpec s;
    s.begin = i;
    s.end = j;
    s.input_shape = planner.shape(i);
    s.output_shape = planner.shape(j);
    s.memory = planner.estimate(i, j);
    s.forward_flops = cost(i, j);
    return s;
  };
  if (options.shards <= 1) {  // the common case of a model that fits whole
    ShardSpec whole = spec(0, n);
    if (whole.memory.total() <= options.budget_bytes) return {std::move(whole)};
  }
  const Feasibility fits(model, planner, options);

  // Fewest shards covering [0, j) (every single layer fits, so all are reachable).
  std::vector<std::size_t> fewest(n + 1, kNone);
  fewest[0] = 0;
  for (std::size_t j = 1; j <= n; ++j)
    for (std::size_t i = 0; i < j; ++i)
      if (fewest[i] != kNone && fits(i, j)) fewest[j] = std::min(fewest[j], fewest[i] + 1);
  const std::size_t k_shards = options.shards == 0 ? fewest[n] : options.shards;
  if (k_shards < fewest[n])
    throw Error(cat("partition: ", n, " layers do not fit into ", k_shards, " shard(s) of ",
                    format_bytes(options.budget_bytes), ": at least ", fewest[n],
                    " shards are needed"));

  // Phase 1: the smallest achievable maximum shard cost with exactly k_shards fitting shards.
  // best[k][j]: over k shards covering layers [0, j).
  std::vector<std::vector<double>> best(k_shards + 1, std::vector<double>(n + 1, kInf));
  best[0][0] = 0;
  for (std::size_t k = 1; k <= k_shards; ++k)
    for (std::size_t j = k; j <= n; ++j)
      for (std::size_t i = k - 1; i < j; ++i)
        if (best[k - 1][i] < kInf && fits(i, j))
          best[k][j] = std::min(best[k][j], std::max(best[k - 1][i], cost(i, j)));
  const double max_cost = best[k_shards][n];
  if (!(max_cost < kInf))
    throw Error(cat("partition: no cut of ", n, " layers into exactly ", k_shards, " shards fits ",
                    format_bytes(options.budget_bytes), " per shard"));

  // Phase 2: among the cuts achieving that maximum, the one with the smallest sum of squared
  // shard costs (balances the shards that do not hold the maximum too).
  const double limit = max_cost + std::abs(max_cost) * 1e-12;
  std::vector<std::vector<double>> squares(k_shards + 1, std::vector<double>(n + 1, kInf));
  std::vector<std::vector<std::size_t>> from(k_shards + 1, std::vector<std::size_t>(n + 1, kNone));
  squares[0][0] = 0;
  for (std::size_t k = 1; k <= k_shards; ++k)
    for (std::size_t j = k; j <= n; ++j)
      for (std::size_t i = k - 1; i < j; ++i) {
        const double c = cost(i, j);
        if (squares[k - 1][i] == kInf || c > limit || !fits(i, j)) continue;
        const double s = squares[k - 1][i] + c * c;
        if (s < squares[k][j]) {
          squares[k][j] = s;
          from[k][j] = i;
        }
      }
  check(from[k_shards][n] != kNone, "partition: internal error: no balanced cut reconstructed");

  std::vector<ShardSpec> shards(k_shards);
  std::size_t j = n;
  for (std::size_t k = k_shards; k > 0; --k) {
    const std::size_t i = from[k][j];
    shards[k - 1] = spec(i, j);
    j = i;
  }
  return shards;
}

}  // namespace hydra
