#include "actors/task_estimates.hpp"

#include <algorithm>

namespace hydra::actors {

void MeasuredEstimates::note(const ShardTask& t) {
  Job& j = jobs_[t.state->job];
  j.shards = t.state->num_shards;
  j.total_steps = t.state->total_steps;
  j.fused = t.state->fused_update;
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
  Job& j = jobs_[t.state->job];
  j.measured += seconds;
  ++j.samples;
  all_measured_ += seconds;
  ++all_samples_;
}

void MeasuredEstimates::forget(int job) {
  jobs_.erase(job);
}

double MeasuredEstimates::task_seconds(int job, int shard, TaskKind kind) const {
  auto it = ema_.find(std::make_tuple(job, shard, static_cast<int>(kind)));
  if (it != ema_.end()) return it->second;
  auto j = jobs_.find(job);
  if (j != jobs_.end() && j->second.samples > 0)
    return j->second.measured / static_cast<double>(j->second.samples);
  if (all_samples_ > 0) return all_measured_ / static_cast<double>(all_samples_);
  return 1e-3;
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
