#pragma once
// Hand-computable simulator inputs for the simulator and planner tests.
#include <cstdint>
#include <string>

#include "runtime/simulator.hpp"

namespace hydra::test {

inline std::string numbered(const char* prefix, long long i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

// A shard of fixed task times in seconds (evaluation half a forward) and 1 MFLOP per forward.
inline ShardCost fixed_cost(double forward, double backward, double update = 0) {
  ShardCost c;
  c.forward = forward;
  c.eval = forward / 2;
  c.backward = backward;
  c.update = update;
  c.forward_flops = 1e6;
  return c;
}

// A job of `shards` equal fixed-cost shards and `steps` steps.
inline SimJob fixed_job(const std::string& name, int shards, double forward, double backward,
                        std::int64_t steps, double update = 0) {
  SimJob j;
  j.name = name;
  j.shards.assign(static_cast<std::size_t>(shards), fixed_cost(forward, backward, update));
  j.steps = steps;
  return j;
}

}  // namespace hydra::test
