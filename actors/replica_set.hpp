#pragma once
// The replicas of a data-parallel job (JobSpec::replicas = R > 1) and the collective operations
// over them, done in home memory by the job's actor:
//   spawn_replica     one copy of the model (replica 0 is the job's model; the others are built
//                     with make_model and initialised with the same seed, so all start equal),
//                     cut into the same shards, one shard actor per shard.
//   all_reduce_grads  averages the replicas' home gradients (sum in replica order over the
//                     replicas that had samples, divided by R) and writes the mean into every
//                     replica, so every replica's update sees the same gradients.
// Each collective returns the bytes it read and wrote; the step records it in the trace as an
// event of its own kind ("allreduce") on device "host".
#include <cstddef>
#include <memory>
#include <vector>

#include "actors/job_actor.hpp"
#include "runtime/partitioner.hpp"

namespace hydra::actors {

Replica spawn_replica(caf::event_based_actor* self, JobContext::Parts& p,
                      const std::vector<ShardSpec>& plan, int replica);

// `participants`: replicas 0..participants-1 computed gradients this step (the others had no
// samples of a small last batch and count as zero). Returns bytes read + written.
std::size_t all_reduce_grads(JobContext::Parts& p, int participants);

// Whether every replica's parameter values equal replica 0's bit for bit.
bool replicas_identical(JobContext::Parts& p);
// Bytes of optimizer state replica `replica` holds.
std::size_t optimizer_state_bytes(const JobContext::Parts& p, int replica);

}  // namespace hydra::actors
