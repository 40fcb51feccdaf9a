#pragma once
// Data-parallel replicas (JobSpec::replicas = R > 1), optionally sharded (ZeRO-style,
// JobSpec::sharded_data_parallel). One training step:
//   1. the batch is split into R consecutive near-equal parts (equal when the batch size is
//      divisible by R; a small last batch may leave later replicas without samples);
//   2. every replica runs forward and backward on its part at once (as micro_batches
//      micro-batches in GPipe order, pipeline_step.hpp; one micro-batch when micro_batches = 1),
//      with unfused backward tasks that leave its gradients in its home memory, weighted so that
//      the replicas' mean is micro_batches * (mean gradient over the batch);
//   3. all-reduce: the job's actor averages the replicas' home gradients and writes the mean into
//      every replica (trace event "allreduce" on device "host", with its bytes and time);
//   4. plain: every replica runs the same update tasks (grad_scale 1/micro_batches, times the
//      clip coefficient of the mean gradient's norm), so the replicas stay bitwise identical;
//      sharded: each replica updates only its owned slices (1/R of every parameter tensor, with
//      the optimizer state of that slice only), then the updated slices are copied to the other
//      replicas (trace event "allgather").
// Validation, checkpoints and on_finish use replica 0. Debug builds check after every step that
// the replicas are identical.
#include "actors/training_program.hpp"

namespace hydra::actors {

// One training step of a job with replicas > 1; returns the batch's mean loss.
Task<double> data_parallel_step(JobContext& job, const Batch& batch);

}  // namespace hydra::actors
