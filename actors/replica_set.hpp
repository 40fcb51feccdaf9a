#pragma once
// The replicas of a data-parallel job (JobSpec::replicas = R > 1) and the collective operations
// over them, done in home memory by the job's actor:
//   spawn_replica     one copy of the model (replica 0 is the job's model; the others are built
//                     with make_model and initialised with the same seed, so all start equal),
//                     cut into the same shards, one shard actor per shard. With
//                     sharded_data_parallel each shard state also gets the replica's owned slices:
//                     elements [r*n/R, (r+1)*n/R) of every parameter tensor of n elements, as
//                     Parameters whose value and gradient are views into the replica's home
//                     tensors and whose optimizer state (created by its first update) is the
//                     replica's own, so optimizer memory per replica is ~1/R.
//   all_reduce_grads  averages the replicas' home gradients (sum in replica order over the
//                     replicas that had samples, divided by R) and writes the mean into every
//                     replica, so every replica's update sees the same gradients.
//   all_gather_slices after a sharded update: copies each replica's updated owned slices into the
//                     other replicas' parameter values.
// Each collective returns the bytes it read and wrote; the step records it in the trace as an
// event of its own kind ("allreduce", "allgather") on device "host".
#include <cstddef>
#include <memory>
#include <vector>

#include "actors/job_actor.hpp"
#include "runtime/partitioner.hpp"

namespace hydra::actors {

// `model`: the replica's model when it exists already (a strategy switch keeps the replicas'
// models); null: replica 0 uses the job's model, the others are built and initialised.
Replica spawn_replica(caf::event_based_actor* self, JobContext::Parts& p,
                      const std::vector<ShardSpec>& plan, int replica,
                      std::shared_ptr<Model> model = nullptr);

// Copies `from`'s parameter values, optimizer state and step counts, and its layers' internal
// state (Dropout counters), into `to` (the same architecture): a new replica joins equal to
// replica 0.
void copy_model_state(const Model& from, Model& to);

// Sharded data parallelism keeps each parameter's optimizer state in slices, one per replica
// (ShardState::owned_slices). gather_slices copies every replica's slices into replica 0's whole
// parameters (for a state file, or before the replicas change); scatter_slices copies replica 0's
// whole state into every replica's slices and then drops the whole state of every replica's model
// (each keeps 1/R).
void gather_slices(JobContext::Parts& p);
void scatter_slices(JobContext::Parts& p);

// `participants`: replicas 0..participants-1 computed gradients this step (the others had no
// samples of a small last batch and count as zero). Returns bytes read + written.
std::size_t all_reduce_grads(JobContext::Parts& p, int participants);
std::size_t all_gather_slices(JobContext::Parts& p);

// Whether every replica's parameter values equal replica 0's bit for bit.
bool replicas_identical(JobContext::Parts& p);
// Bytes of optimizer state replica `replica` holds (its parameters' and owned slices' state).
std::size_t optimizer_state_bytes(const JobContext::Parts& p, int replica);

}  // namespace hydra::actors
