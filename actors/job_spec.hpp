#pragma once
// What the user asks the runtime to train: one JobSpec per model (hyperparameter configuration).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "actors/coroutine.hpp"
#include "kernels/model.hpp"
#include "kernels/model_spec.hpp"
#include "kernels/optim/optimizer.hpp"
#include "runtime/data/dataset.hpp"

namespace hydra {

struct DataSplits {
  Dataset train, validation;
};

namespace actors {
class JobContext;
}

struct JobSpec {
  std::string name;
  std::map<std::string, std::string> config;  // hyperparameters, copied into the JobResult
  std::function<Model()> make_model;          // a fresh model; the runtime calls init(seed)
  // The model as text (kernels/model_spec.hpp, e.g. "mlp 784 256 10"): used when make_model is
  // empty, checked against it when both are set, and required to run on cluster nodes.
  std::string model_spec;
  std::function<OptimizerPtr()> make_optimizer;
  // Loads the data. Runs inside the runtime, so a bad path fails only this job; jobs with the
  // same non-empty data_key share one load (and one copy in memory).
  std::function<DataSplits()> data;
  std::string data_key;
  std::int64_t batch_size = 64;
  std::int64_t epochs = 1;
  std::int64_t max_steps = 0;  // > 0: train exactly this many steps (epochs are ignored)
  std::uint64_t seed = 0;      // model initialisation and data order
  bool shuffle = true;
  double clip_grad_norm = 0;    // > 0: global grad-norm clipping (separate update tasks)
  std::int64_t eval_every = 0;  // steps between validations; 0: validate once at the end
  std::size_t shards = 0;       // > 0: overrides RuntimeOptions::shards for this job
  // --- Parallel strategy (the planner, runtime/planner, fills these; see README "Strategies").
  // Data-parallel replicas: each step's batch is split into `replicas` equal parts, each replica
  // (its own copy of the model, cut into the same shards) runs forward and backward on its part on
  // whichever devices are free, the gradients are all-reduced (averaged), and every replica applies
  // the same update. 1: no data parallelism.
  std::size_t replicas = 1;
  // With replicas > 1: sharded data parallelism (ZeRO-style): each replica owns the optimizer
  // state of 1/replicas of every shard's parameters and runs that part of the update, and the
  // updated values are gathered by the others, so update work and optimizer memory are split.
  bool sharded_data_parallel = false;
  // > 1: GPipe-style pipelining inside the job: each batch is split into this many micro-batches
  // that flow through the shards one after another (shard s works on micro-batch i while shard
  // s+1 works on micro-batch i-1), gradients are accumulated, and one update follows.
  std::int64_t micro_batches = 1;
  // >= 0: every task of this job runs on the device with this index in the run (task parallelism:
  // one model per device); -1: any device.
  int device_affinity = -1;

  // --- Checkpoints and resume (see actors/checkpoint.hpp, "training state").
  // > 0: write the job's whole training state (parameters, optimizer state, step, data position,
  // curves so far) to <out_dir>/state/<name>.state every this many steps; it is also written at
  // every validation when out_dir is set.
  std::int64_t checkpoint_every = 0;
  // Non-empty: continue from this training-state file (written by an earlier run of the same
  // job: same model, optimizer, data and batch size, else the job fails with an error saying what
  // differs). The continued job ends with the same parameters and curves as an uninterrupted one.
  std::string resume_from;

  // A custom training program (a coroutine); empty: actors::default_training_program.
  std::function<actors::Task<void>(actors::JobContext&)> program;
  // Called at the end of a successful job with the trained model (parameters in home memory).
  std::function<void(Model&)> on_finish;
};

// The job's model: make_model() when set, else built from model_spec (hydra::Error when neither
// is given or the spec is malformed).
inline Model build_job_model(const JobSpec& spec) {
  if (spec.make_model) return spec.make_model();
  check(!spec.model_spec.empty(), "job " + spec.name + " has no make_model and no model_spec");
  return make_model_from_spec(spec.model_spec);
}

}  // namespace hydra
