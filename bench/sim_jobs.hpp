#pragma once
// Synthetic simulator inputs shared by the simulator benches (baselines, simulator_scale):
// GPU-like shard costs (milliseconds per shard task, a few MB per shard), jobs built from them
// and devices joined by 25 GB/s links, so that no device is needed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/planner.hpp"
#include "runtime/simulator.hpp"

namespace hydra::bench {

inline std::string numbered(const char* prefix, long long i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

// One shard of `fwd` seconds per forward (evaluation half of it, backward twice, update a tenth)
// holding `value_bytes` of parameters (twice that of optimizer state, half of it stashed).
inline ShardCost synthetic_shard(double fwd, std::size_t value_bytes) {
  ShardCost c;
  c.forward = fwd;
  c.eval = 0.5 * fwd;
  c.backward = 2 * fwd;
  c.update = 0.1 * fwd;
  c.value_bytes = value_bytes;
  c.state_bytes = 2 * c.value_bytes;
  c.stash_bytes = c.value_bytes / 2;
  c.input_bytes = c.output_bytes = 1 << 20;
  c.label_bytes = 1 << 10;
  c.forward_flops = fwd * 1e13;
  return c;
}

// Job "job<i>" of `shards` equal shards and `steps` steps, evaluating 4 batches every 50 steps.
inline SimJob synthetic_sim_job(long long i, int shards, double fwd, std::size_t value_bytes,
                                std::int64_t steps) {
  SimJob j;
  j.name = numbered("job", i);
  j.shards.assign(static_cast<std::size_t>(shards), synthetic_shard(fwd, value_bytes));
  j.steps = steps;
  j.eval_batches = 4;
  j.eval_every = 50;
  return j;
}

// n CUDA-like devices "cuda:0" ... with 10 us, 25 GB/s links.
inline std::vector<SimDevice> gpu_devices(int n) {
  std::vector<SimDevice> out;
  for (int i = 0; i < n; ++i) {
    SimDevice d;
    d.name = numbered("cuda:", i);
    d.kind = DeviceKind::cuda;
    d.link = {1e-5, 25e9};
    out.push_back(d);
  }
  return out;
}

// The jobs for runtime/planner, each with its own shards as the one cut to choose from.
inline std::vector<PlanJob> plan_jobs(const std::vector<SimJob>& jobs, std::int64_t batch_size) {
  std::vector<PlanJob> out;
  for (const SimJob& j : jobs) {
    PlanJob p;
    p.job = j;
    p.options.push_back({j.shards, {}, {}});
    p.batch_size = batch_size;
    out.push_back(std::move(p));
  }
  return out;
}

// How many of a plan's jobs it replicates, splits into micro-batches and pins to a device.
struct StrategyCounts {
  int replicated = 0, micro_batched = 0, pinned = 0;
};

inline StrategyCounts count_strategies(const Plan& p) {
  StrategyCounts n;
  for (const JobStrategy& s : p.strategies) {
    n.replicated += s.replicas > 1 ? 1 : 0;
    n.micro_batched += s.micro_batches > 1 ? 1 : 0;
    n.pinned += s.device_affinity >= 0 ? 1 : 0;
  }
  return n;
}

}  // namespace hydra::bench
