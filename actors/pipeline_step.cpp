#include "actors/pipeline_step.hpp"

#include <cmath>
#include <memory>

#include "actors/job_actor.hpp"
#include "actors/join.hpp"

namespace hydra::actors {

std::vector<std::pair<std::int64_t, std::int64_t>> split_rows(std::int64_t rows,
                                                              std::int64_t parts) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  if (rows <= 0 || parts <= 0) return out;
  const std::int64_t base = rows / parts, extra = rows % parts;
  std::int64_t begin = 0;
  for (std::int64_t i = 0; i < parts; ++i) {
    const std::int64_t n = base + (i < extra ? 1 : 0);
    if (n == 0) break;
    out.emplace_back(begin, begin + n);
    begin += n;
  }
  return out;
}

namespace {

// The activations flowing through one replica's pipeline, by micro-batch.
struct Flow {
  std::vector<Tensor> x;       // forward: the next shard's input; backward: the next d(output)
  std::vector<Tensor> labels;  // by micro-batch
  std::vector<double> weight;  // loss_weight by micro-batch
  std::vector<double> loss;    // by micro-batch (the last shard's forward)
  std::vector<std::int64_t> count;
  std::vector<double> squares;  // by shard
};

Task<void> forward_one(JobContext& job, int replica, int shard, std::int64_t micro,
                       std::shared_ptr<Flow> f) {
  const auto i = static_cast<std::size_t>(micro);
  auto t = std::make_shared<ShardTask>();
  t->kind = TaskKind::forward;
  t->training = true;
  t->micro_batch = micro;
  t->input = f->x[i];
  if (shard + 1 == job.num_shards()) {
    t->labels = f->labels[i];
    t->loss_weight = f->weight[i];
  }
  TaskPtr done = co_await job.run_on(replica, shard, t);
  f->x[i] = done->output;
  if (shard + 1 == job.num_shards()) {
    f->loss[i] = done->loss;
    f->count[i] = done->count;
  }
}

Task<void> backward_one(JobContext& job, int replica, int shard, std::int64_t micro, bool first,
                        std::shared_ptr<Flow> f) {
  const auto i = static_cast<std::size_t>(micro);
  auto t = std::make_shared<ShardTask>();
  t->kind = TaskKind::backward;
  t->micro_batch = micro;
  t->optimizer = job.parts().optimizer_config.optimizer;
  t->fuse_update = false;
  t->accumulate_grads = !first;
  if (shard + 1 < job.num_shards()) t->input = f->x[i];
  TaskPtr done = co_await job.run_on(replica, shard, t);
  f->x[i] = done->output;
  f->squares[static_cast<std::size_t>(shard)] = done->grad_squares;
}

Task<void> update_one(JobContext& job, int replica, int shard, double scale, bool owned_slices) {
  auto t = std::make_shared<ShardTask>();
  t->kind = TaskKind::update;
  t->optimizer = job.parts().optimizer_config.optimizer;
  t->grad_scale = scale;
  t->owned_slices = owned_slices;
  co_await job.run_on(replica, shard, t);
}

}  // namespace

Task<PipelinePass> pipeline_pass(JobContext& job, int replica, Tensor inputs, Tensor labels,
                                 std::int64_t micro_batches, std::int64_t weight_num,
                                 std::int64_t weight_den) {
  const auto ranges = split_rows(inputs.shape().at(0), micro_batches);
  const int n = job.num_shards();
  const int m = static_cast<int>(ranges.size());
  auto f = std::make_shared<Flow>();
  for (const auto& range : ranges) {
    const std::int64_t b = range.first, e = range.second;
    f->x.push_back(inputs.slice(b, e));
    f->labels.push_back(labels.slice(b, e));
    // Exactly 1 when the parts are equal (n_i * weight_num == weight_den).
    f->weight.push_back(static_cast<double>((e - b) * weight_num) /
                        static_cast<double>(weight_den));
  }
  f->loss.assign(ranges.size(), 0.0);
  f->count.assign(ranges.size(), 0);
  f->squares.assign(static_cast<std::size_t>(n), 0.0);
  // Forward waves: (shard s, micro-batch i) with s + i = k.
  for (int k = 0; k + 1 < n + m; ++k) {
    std::vector<Task<void>> wave;
    for (int s = 0; s < n; ++s)
      if (k - s >= 0 && k - s < m) wave.push_back(forward_one(job, replica, s, k - s, f));
    co_await when_all(job.self(), std::move(wave));
  }
  PipelinePass out;
  for (int i = 0; i < m; ++i) {
    const double loss = f->loss[static_cast<std::size_t>(i)];
    if (!std::isfinite(loss))
      throw Error(std::string("loss is ") + (std::isnan(loss) ? "NaN" : "inf") + " at step " +
                  std::to_string(job.step() + 1));
    const std::int64_t c = f->count[static_cast<std::size_t>(i)];
    out.loss_sum += loss * static_cast<double>(c);
    out.samples += c;
  }
  // Backward waves from the last shard, micro-batches in reverse order: (shard s, micro-batch
  // m-1-j) with (n-1-s) + j = k. The first backward of each shard (micro-batch m-1) replaces the
  // home gradients, the others add to them.
  for (int k = 0; k + 1 < n + m; ++k) {
    std::vector<Task<void>> wave;
    for (int s = n - 1; s >= 0; --s) {
      const int j = k - (n - 1 - s);
      if (j >= 0 && j < m) wave.push_back(backward_one(job, replica, s, m - 1 - j, j == 0, f));
    }
    co_await when_all(job.self(), std::move(wave));
  }
  out.grad_squares = f->squares;
  co_return out;
}

Task<void> update_all(JobContext& job, std::vector<int> replicas, double scale, bool owned_slices) {
  std::vector<Task<void>> updates;
  for (int r : replicas)
    for (int s = 0; s < job.num_shards(); ++s)
      updates.push_back(update_one(job, r, s, scale, owned_slices));
  co_await when_all(job.self(), std::move(updates));
}

Task<double> pipeline_step(JobContext& job, const Batch& batch) {
  const std::int64_t m = job.spec().micro_batches;
  const std::int64_t rows = batch.size();
  PipelinePass pass = co_await pipeline_pass(job, 0, batch.inputs, batch.labels, m, m, rows);
  // The home gradients hold m * (mean gradient).
  double scale = 1.0 / static_cast<double>(m);
  JobContext::Parts& p = job.parts();
  if (p.optimizer_config.clip_grad_norm > 0) {
    std::vector<double> squares = pass.grad_squares;
    for (double& q : squares)
      q *= scale * scale;
    const double clip =
        co_await request<double>(job.self(), p.optimizer, clip_atom::value, squares);
    scale *= clip;
  }
  co_await update_all(job, std::vector<int>(1, 0), scale, false);
  co_return pass.loss_sum / static_cast<double>(std::max<std::int64_t>(1, pass.samples));
}

}  // namespace hydra::actors
