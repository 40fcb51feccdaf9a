#pragma once
// GPipe-style micro-batches inside one job (JobSpec::micro_batches = m > 1).
//
// A batch (or a replica's part of it) is split into m consecutive micro-batches of near-equal
// size (equal when the batch size is divisible by m; a smaller last batch of an epoch gives parts
// that differ by at most one sample, and fewer parts when it has fewer than m samples). Forward:
// shard s runs micro-batch i once shard s-1 finished micro-batch i and shard s finished
// micro-batch i-1, so the shards of one job work on different micro-batches at once (on whichever
// devices are free). The tasks run as a dataflow (TaskGroup, join.hpp): each task is started as
// soon as both its inputs are there, by whichever of its two predecessors ends last. Each
// shard keeps one stash slot per micro-batch (ShardTask::micro_batch). Backward runs the
// micro-batches in reverse order (m-1 first) in the same dataflow from the last shard, with
// unfused backward tasks whose gradients are accumulated in the shard's home gradients (the
// first backward of a step replaces them). Each micro-batch's d(loss)/d(logits) is weighted by its
// share (ShardTask::loss_weight), so the home gradients of a shard end as
// m * (mean gradient over the batch); one update per shard follows, with grad_scale 1/m (times
// the clip coefficient with clip_grad_norm; the norm is that of the mean gradient). The step's
// loss is the mean over the batch's samples.
#include <cstdint>
#include <utility>
#include <vector>

#include "actors/training_program.hpp"

namespace hydra::actors {

// `rows` split into at most `parts` consecutive non-empty ranges [begin, end) whose sizes differ
// by at most one, larger ones first.
std::vector<std::pair<std::int64_t, std::int64_t>> split_rows(std::int64_t rows,
                                                              std::int64_t parts);

struct PipelinePass {
  double loss_sum = 0;               // sum over the samples of their loss
  std::int64_t samples = 0;          // samples in the pass
  std::vector<double> grad_squares;  // per shard: sum of squares of its accumulated gradients
};

// Forward and backward of `inputs`/`labels` on replica `replica` as `micro_batches`
// micro-batches in GPipe order. Micro-batch i of n_i samples gets loss_weight
// n_i * weight_num / weight_den, so the replica's home gradients end as
// weight_num / weight_den * (sum over its samples of their gradients). Throws hydra::Error
// ("loss is NaN at step N") before any backward when a micro-batch's loss is not finite.
Task<PipelinePass> pipeline_pass(JobContext& job, int replica, Tensor inputs, Tensor labels,
                                 std::int64_t micro_batches, std::int64_t weight_num,
                                 std::int64_t weight_den);

// Update tasks (grad_scale `scale`) of every shard of every replica in `replicas`, run at once;
// with `owned_slices` over each replica's owned parameter slices (sharded data parallelism).
Task<void> update_all(JobContext& job, std::vector<int> replicas, double scale, bool owned_slices);

// One training step of a job with micro_batches > 1 and one replica; returns the batch's mean
// loss.
Task<double> pipeline_step(JobContext& job, const Batch& batch);

}  // namespace hydra::actors
