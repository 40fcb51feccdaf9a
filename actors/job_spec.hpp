#pragma once
// What the user asks the runtime to train: one JobSpec per model (hyperparameter configuration).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "actors/coroutine.hpp"
#include "kernels/model.hpp"
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
  // A custom training program (a coroutine); empty: actors::default_training_program.
  std::function<actors::Task<void>(actors::JobContext&)> program;
  // Called at the end of a successful job with the trained model (parameters in home memory).
  std::function<void(Model&)> on_finish;
};

}  // namespace hydra
