#pragma once
// One actor per job. Asked to run, it loads the job's data (shared by data key), builds and
// initialises the model, partitions it with hydra::partition for the device budget, spawns one
// shard actor per shard and the job's optimizer actor, and runs the training program as a
// coroutine on itself. It answers with the JobResult: done, failed with the error (a failing
// job never takes the runtime or other jobs down), or stopped by the early-stopping rule. With
// JobSpec::resume_from it loads the training-state file right after building the job. When the
// job ends, its shard and optimizer actors exit and its model (home memory) is released, and the
// early-stopping actor and the replanner, if any, are told.
//
//   (run_atom) -> JobResult
//   (rp_order_atom, StrategyOrder)   switch strategy before the next step (strategy_switch.hpp)
#include <caf/all.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/data_cache.hpp"
#include "actors/replanner.hpp"
#include "actors/shard_state.hpp"
#include "actors/strategy_switch.hpp"
#include "actors/training_program.hpp"
#include "runtime/partitioner.hpp"
#include "runtime/progress_display.hpp"
#include "runtime/trace.hpp"

namespace hydra::actors {

struct JobSetup {
  int index = 0;
  JobSpec spec;
  caf::actor scheduler;
  std::shared_ptr<DataCache> data;
  std::size_t shard_budget = 0;               // memory one shard may use on a device
  std::size_t shards = 0;                     // 0: as few as fit
  int num_devices = 0;                        // devices in the run (device_affinity's range)
  std::string out_dir;                        // "": no checkpoints
  std::shared_ptr<ProgressDisplay> progress;  // null: no live display
  caf::actor early_stopping;                  // early_stopping_actor; null: none in this run
  std::shared_ptr<Trace> trace;               // the run's trace (collectives of replicas)
  // Re-planning (actors/replanner.hpp): told the job's shard count, steps and end; null: none.
  caf::actor replanner;
  std::shared_ptr<StrategyLog> strategy_log;  // strategy switches are recorded here
};

// One copy of the job's model cut into shards, with one shard actor per shard.
struct Replica {
  std::shared_ptr<Model> model;
  std::vector<std::shared_ptr<ShardState>> states;
  std::vector<caf::actor> shards;
};

struct JobContext::Parts {
  JobSetup setup;
  DataSplits data;
  // Replica 0 (validation, checkpoints, on_finish use it).
  std::shared_ptr<Model> model;
  std::vector<std::shared_ptr<ShardState>> states;
  std::vector<caf::actor> shards;
  // All JobSpec::replicas replicas; replicas[0] holds the same model, states and shards as above.
  std::vector<Replica> replicas;
  std::vector<ShardSpec> partition;  // the cut every replica uses
  // A strategy the replanner ordered, applied before the next step (train_step).
  std::optional<StrategyOrder> pending_strategy;
  StrategyTrial trial;  // a switch being measured (strategy_switch.hpp)
  caf::actor optimizer;
  OptimizerConfig optimizer_config;
  JobResult result;
  std::int64_t total_steps = 0, samples = 0;
  std::chrono::steady_clock::time_point start;
};

// Throws hydra::Error when the strategy fields of `spec` (replicas, micro_batches,
// sharded_data_parallel, device_affinity in a run of `num_devices` devices) cannot run.
void check_strategy(const JobSpec& spec, int num_devices);

caf::behavior job_actor(caf::event_based_actor* self, JobSetup setup);

}  // namespace hydra::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(hydra::JobResult)
