#include "actors/data_parallel_step.hpp"

#include <memory>

#include "actors/join.hpp"
#include "actors/pipeline_step.hpp"
#include "actors/replica_set.hpp"

namespace hydra::actors {

namespace {

Task<void> replica_pass(JobContext& job, int replica, Tensor inputs, Tensor labels,
                        std::int64_t weight_num, std::int64_t weight_den,
                        std::shared_ptr<std::vector<PipelinePass>> out) {
  const std::int64_t m = std::max<std::int64_t>(1, job.spec().micro_batches);
  (*out)[static_cast<std::size_t>(replica)] =
      co_await pipeline_pass(job, replica, inputs, labels, m, weight_num, weight_den);
}

// Runs `collective` on the job's actor and records it in the trace as `kind`.
template <class F>
void traced(JobContext::Parts& p, const char* kind, F collective) {
  const double start = p.setup.trace ? p.setup.trace->now() : 0.0;
  const std::size_t bytes = collective();
  if (p.setup.trace)
    p.setup.trace->add(
        {kHostLane, p.setup.spec.name, -1, kind, start, p.setup.trace->now(), bytes});
}

// Sum of squares of replica 0's (all-reduced) gradients, per shard.
std::vector<double> grad_squares(JobContext::Parts& p) {
  std::vector<double> out;
  for (const auto& st : p.replicas.at(0).states) {
    double q = 0;
    for (Parameter* param : st->parameters()) {
      const float* g = param->grad.data_as<float>();
      for (std::int64_t i = 0; i < param->grad.numel(); ++i)
        q += static_cast<double>(g[i]) * g[i];
    }
    out.push_back(q);
  }
  return out;
}

}  // namespace

Task<double> data_parallel_step(JobContext& job, const Batch& batch) {
  JobContext::Parts& p = job.parts();
  const auto R = static_cast<std::int64_t>(p.replicas.size());
  const std::int64_t m = std::max<std::int64_t>(1, job.spec().micro_batches);
  const std::int64_t rows = batch.size();
  const auto parts = split_rows(rows, R);
  auto passes = std::make_shared<std::vector<PipelinePass>>(parts.size());
  std::vector<Task<void>> work;
  for (std::size_t r = 0; r < parts.size(); ++r)
    work.push_back(
        replica_pass(job, static_cast<int>(r), batch.inputs.slice(parts[r].first, parts[r].second),
                     batch.labels.slice(parts[r].first, parts[r].second), R * m, rows, passes));
  co_await when_all(job.self(), std::move(work));
  double loss_sum = 0;
  std::int64_t samples = 0;
  for (const PipelinePass& pass : *passes) {
    loss_sum += pass.loss_sum;
    samples += pass.samples;
  }
  const int participants = static_cast<int>(parts.size());
  traced(p, "allreduce", [&] { return all_reduce_grads(p, participants); });
  // The home gradients hold m * (mean gradient).
  double scale = 1.0 / static_cast<double>(m);
  if (p.optimizer_config.clip_grad_norm > 0) {
    std::vector<double> squares = grad_squares(p);
    for (double& q : squares)
      q *= scale * scale;
    const double clip =
        co_await request<double>(job.self(), p.optimizer, clip_atom::value, squares);
    scale *= clip;
  }
  std::vector<int> all;
  for (int r = 0; r < static_cast<int>(R); ++r)
    all.push_back(r);
  const bool sharded = job.spec().sharded_data_parallel;
  co_await update_all(job, all, scale, sharded);
  if (sharded) traced(p, "allgather", [&] { return all_gather_slices(p); });
#ifndef NDEBUG
  check(replicas_identical(p), "job " + job.spec().name + ": replicas differ after step " +
                                   std::to_string(job.step() + 1));
#endif
  co_return loss_sum / static_cast<double>(std::max<std::int64_t>(1, samples));
}

}  // namespace hydra::actors
