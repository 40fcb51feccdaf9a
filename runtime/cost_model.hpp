#pragma once
// Measured costs of shard tasks and transfers for the execution simulator (FlexFlow-style):
// every distinct shard task is run for real once per device kind through the kernels API and its
// median time cached, keyed by a structural signature of the shard (layer names, input shape,
// dtype, device kind, whether it ends the model, optimizer), in memory and optionally in a JSON
// file. Transfers cost latency + bytes / bandwidth per link kind (host <-> cpu:N memcpy and
// pinned host <-> cuda:N copies measured, a configured default for CUDA without a GPU).
//
// Measure with the BLAS thread setting the run uses (the actor runtime sets one OpenBLAS thread
// per call). Not thread-safe.
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "kernels/model.hpp"
#include "kernels/optim/optimizer.hpp"

namespace hydra {

// How many times longer each kind of task takes than alone.
struct Slowdown {
  double forward = 1, eval = 1, backward = 1, update = 1;
};

// One shard for one minibatch: seconds of each task as the actor runtime splits them, and the
// bytes its loads and stores move.
struct ShardCost {
  double forward = 0;   // training forward, softmax cross-entropy fused when the shard is last
  double eval = 0;      // evaluation forward (loss without gradient when last)
  double backward = 0;  // backward alone (zeroed gradients, no optimizer step)
  double update = 0;    // optimizer step over the shard's parameters
  std::size_t value_bytes = 0;   // parameter values (gradients have the same size)
  std::size_t state_bytes = 0;   // optimizer state after a step
  std::size_t stash_bytes = 0;   // tensors a training forward stashes (as the runtime counts)
  std::size_t input_bytes = 0;   // the shard's input for one minibatch
  std::size_t output_bytes = 0;  // its output (the logits when last; dlogits is the same size)
  std::size_t label_bytes = 0;   // labels (last shard)
  double forward_flops = 0;
  // Contention (CostModel::contention): concurrent[k - 2] is the slowdown of this shard's tasks
  // while k devices of its kind compute at once (k = 2, 3, ...: virtual CPU devices share the
  // host's cores and memory bus). Empty: not measured.
  std::vector<Slowdown> concurrent;
  // The slowdown with `k` devices computing (k <= 1: none; beyond the measured counts the last
  // measured one scaled by k / its count, time-slicing; nothing measured: none).
  Slowdown slowdown(int k) const;
};

// Cost of one copy between home memory and a device.
struct LinkCost {
  double latency = 0;       // seconds per copy
  double bandwidth = 1e10;  // bytes per second
  double seconds(std::size_t bytes) const {
    return bytes == 0 ? 0.0 : latency + static_cast<double>(bytes) / bandwidth;
  }
};

class CostModel {
 public:
  struct Options {
    int warmup = 1;   // untimed runs before measuring
    int repeats = 5;  // timed runs; the median is kept
    // host <-> cuda:N when no GPU can be measured here.
    LinkCost default_cuda_link{1e-5, 12e9};
  };
  CostModel();
  explicit CostModel(Options options);

  // Layer names of [begin, end), input shape, dtype, device kind, last-shard flag, optimizer.
  static std::string signature(const Model& model, std::size_t begin, std::size_t end,
                               const Shape& input, DType dtype, DeviceKind device, bool last,
                               const std::string& optimizer);

  // The cost of layers [begin, end) of `model` with input `input` (batch first) on `device`,
  // measured on first use (the model is moved to `device` and its parameters and `optimizer`'s
  // state change), cached under its signature afterwards.
  const ShardCost& shard(Model& model, std::size_t begin, std::size_t end, const Shape& input,
                         Optimizer& optimizer, Device device, DType dtype = DType::f32);
  // Contention: measures how much the shard's tasks slow down while `copies.size() + 1` devices of
  // `device`'s kind run them at once, unless the cached cost already has figures for that many
  // (then nothing runs). `model` and each copy (the same layers, with parameters of their own)
  // run the shard's forward, backward, update and eval on a thread each, phase by phase in
  // lockstep, copy i on device index i + 1; for k = 1 .. copies.size() + 1 devices, alternated
  // per repeat so a change in the machine's load affects every k alike. Stores the median time of
  // each kind with k threads over its time with one in ShardCost::concurrent. Measures the shard
  // first when it is not cached (as shard()).
  const ShardCost& contention(Model& model, const std::vector<Model*>& copies, std::size_t begin,
                              std::size_t end, const Shape& input, Optimizer& optimizer,
                              Device device, DType dtype = DType::f32);
  std::size_t contention_measurements() const { return contended_; }

  // Cached cost for a signature, or null.
  const ShardCost* find(const std::string& signature) const;
  void set(const std::string& signature, const ShardCost& cost);

  // host <-> device copies: measured once per device kind (cpu: memcpy into the cpu:N pool;
  // cuda: pinned copies when a GPU exists, else Options::default_cuda_link).
  LinkCost link(Device device);
  void set_link(DeviceKind kind, LinkCost cost);

  // How many cores `threads` concurrent CPU-bound threads get right now, from the time of a fixed
  // workload on one thread and on `threads` at once: threads x t1 / t_threads, in [1, threads].
  // On a machine shared with other work this is below the core count (SimOptions::cpu_cores).
  static double host_parallelism(int threads);

  std::size_t size() const { return shards_.size(); }
  std::size_t measurements() const { return measured_; }  // shard measurements actually run

  // JSON: {"shards": {signature: {..., "concurrent": [[forward, eval, backward, update], ...]}},
  // "links": {"cpu": {...}}} ("concurrent" only when measured). load() merges into the cache;
  // both throw hydra::Error on I/O or format errors.
  void save(const std::string& path) const;
  void load(const std::string& path);

 private:
  ShardCost measure(Model& model, std::size_t begin, std::size_t end, const Shape& input,
                    Optimizer& optimizer, Device device, DType dtype) const;
  LinkCost measure_link(Device device) const;
  std::vector<Slowdown> measure_contention(std::vector<Model*> models, std::size_t begin,
                                           std::size_t end, const Shape& input,
                                           Optimizer& optimizer, Device device, DType dtype) const;
  Options options_;
  std::map<std::string, ShardCost> shards_;
  std::map<std::string, LinkCost> links_;  // by device kind name
  std::size_t measured_ = 0, contended_ = 0;
};

}  // namespace hydra
