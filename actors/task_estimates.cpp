#include "actors/task_estimates.hpp"

#include <algorithm>

namespace hydra::actors {

namespace {
double kind_factor(TaskKind kind) {
  switch (kind) {
    case TaskKind::forward:
      return 1.0;
    case TaskKind::backward:
      return 2.0;
    case TaskKind::update:
      return 0.1;
  }
  return 1.0;
}
}  // namespace

void MeasuredEstimates::note(const ShardTask& t) {
  Job& j = jobs_[t.state->job];
  j.shards = t.state->num_shards;
  j.total_steps = t.state->total_steps;
  j.fused = t.state->fused_update;
  j.flops.resize(static_cast<std::size_t>(j.shards), 0.0);
  j.flops[static_cast<std::size_t>(t.state->shard)] = t.state->forward_flops;
  if (t.training) j.step = std::max(j.step, t.step);
}

void MeasuredEstimates::observe(const ShardTask& t, double seconds) {
  if (!t.training) return;  // evaluation forwards are cheaper than training ones
  const auto key = std::make_tuple(t.state->job, t.state->shard, static_cast<int>(t.kind));
  auto it = ema_.find(key);
  if (it == ema_.end())
    ema_[key] = seconds;
  else
    it->second = 0.7 * it->second + 0.3 * seconds;
  measured_seconds_ += seconds;
  measured_flops_ += t.state->forward_flops * kind_factor(t.kind);
}

void MeasuredEstimates::forget(int job) {
  jobs_.erase(job);
}

double MeasuredEstimates::task_seconds(int job, int shard, TaskKind kind) const {
  auto it = ema_.find(std::make_tuple(job, shard, static_cast<int>(kind)));
  if (it != ema_.end()) return it->second;
  double flops = 0;
  auto j = jobs_.find(job);
  if (j != jobs_.end() && shard >= 0 && static_cast<std::size_t>(shard) < j->second.flops.size())
    flops = j->second.flops[static_cast<std::size_t>(shard)] * kind_factor(kind);
  const double speed =
      measured_seconds_ > 0 && measured_flops_ > 0 ? measured_flops_ / measured_seconds_ : 1e10;
  return std::max(1e-6, flops / speed);
}

double MeasuredEstimates::remaining_seconds(int job) const {
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return 0;
  const Job& j = it->second;
  double per_step = 0;
  for (int s = 0; s < j.shards; ++s) {
    per_step += task_seconds(job, s, TaskKind::forward) + task_seconds(job, s, TaskKind::backward);
    if (!j.fused) per_step += task_seconds(job, s, TaskKind::update);
  }
  const auto steps_left = std::max<std::int64_t>(1, j.total_steps - j.step);
  return per_step * static_cast<double>(steps_left);
}

}  // namespace hydra::actors
