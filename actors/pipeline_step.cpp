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

// The activations flowing through one replica's pipeline, by micro-batch, and which tasks ended.
struct Flow {
  int shards = 0, micro_batches = 0;
  std::vector<Tensor> x;       // forward: the next shard's input; backward: the next d(output)
  std::vector<Tensor> labels;  // by micro-batch
  std::vector<double> weight;  // loss_weight by micro-batch
  std::vector<double> loss;    // by micro-batch (the last shard's forward)
  std::vector<std::int64_t> count;
  std::vector<double> squares;  // by shard
  std::vector<char> ended;      // by (stage, micro-batch) of the current pass
  char& done(int stage, int micro) {
    return ended[static_cast<std::size_t>(stage * micro_batches + micro)];
  }
};

// Forward of (shard, micro); then starts each successor whose other input is ready: (shard+1,
// micro) once (shard+1, micro-1) ended, (shard, micro+1) once (shard-1, micro+1) ended. Each task
// is started exactly once, by whichever of its two predecessors ends last.
Task<void> forward_node(JobContext& job, TaskGroup group, int replica, int shard, int micro,
                        std::shared_ptr<Flow> f) {
  const auto i = static_cast<std::size_t>(micro);
  auto t = std::make_shared<ShardTask>();
  t->kind = TaskKind::forward;
  t->training = true;
  t->micro_batch = micro;
  t->input = f->x[i];
  const bool last = shard + 1 == f->shards;
  if (last) {
    t->labels = f->labels[i];
    t->loss_weight = f->weight[i];
  }
  TaskPtr done = co_await job.run_on(replica, shard, t);
  f->x[i] = done->output;
  if (last) {
    f->loss[i] = done->loss;
    f->count[i] = done->count;
  }
  f->done(shard, micro) = 1;
  if (!last && (micro == 0 || f->done(shard + 1, micro - 1)))
    group.spawn(forward_node(job, group, replica, shard + 1, micro, f));
  if (micro + 1 < f->micro_batches && (shard == 0 || f->done(shard - 1, micro + 1)))
    group.spawn(forward_node(job, group, replica, shard, micro + 1, f));
}

// Backward in the same dataflow over stage = shards-1-shard (the last shard first) and
// order = micro_batches-1-micro (the last micro-batch first). The first backward of each shard
// (order 0) replaces its home gradients, the later ones add to them.
Task<void> backward_node(JobContext& job, TaskGroup group, int replica, int stage, int order,
                         std::shared_ptr<Flow> f) {
  const int shard = f->shards - 1 - stage, micro = f->micro_batches - 1 - order;
  const auto i = static_cast<std::size_t>(micro);
  auto t = std::make_shared<ShardTask>();
  t->kind = TaskKind::backward;
  t->micro_batch = micro;
  t->optimizer = job.parts().optimizer_config.optimizer;
  t->fuse_update = false;
  t->accumulate_grads = order > 0;
  if (shard + 1 < f->shards) t->input = f->x[i];
  TaskPtr done = co_await job.run_on(replica, shard, t);
  f->x[i] = done->output;
  f->squares[static_cast<std::size_t>(shard)] = done->grad_squares;
  f->done(stage, order) = 1;
  if (stage + 1 < f->shards && (order == 0 || f->done(stage + 1, order - 1)))
    group.spawn(backward_node(job, group, replica, stage + 1, order, f));
  if (order + 1 < f->micro_batches && (stage == 0 || f->done(stage - 1, order + 1)))
    group.spawn(backward_node(job, group, replica, stage, order + 1, f));
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
  f->shards = n;
  f->micro_batches = m;
  f->loss.assign(ranges.size(), 0.0);
  f->count.assign(ranges.size(), 0);
  f->squares.assign(static_cast<std::size_t>(n), 0.0);
  f->ended.assign(static_cast<std::size_t>(n * m), 0);
  {
    TaskGroup forward(job.self());
    forward.spawn(forward_node(job, forward, replica, 0, 0, f));
    co_await std::move(forward).join();
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
  f->ended.assign(static_cast<std::size_t>(n * m), 0);
  {
    TaskGroup backward(job.self());
    backward.spawn(backward_node(job, backward, replica, 0, 0, f));
    co_await std::move(backward).join();
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
