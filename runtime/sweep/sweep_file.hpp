#pragma once
// A sweep file: what `hydra run FILE` trains. JSON (parsed with nlohmann-json), every field
// checked; a mistake throws hydra::Error naming the file, the field and what is allowed, e.g.
//
//   sweep file x.json: "model.width": expected a positive integer, a list of them or a range
//   {"min": A, "max": B}, got "abc"
//
// Unknown keys are rejected with the list of allowed keys. The format (every field, its default
// and allowed values) is documented in README.md, "Sweep files".
//
//   SweepFile s = parse_sweep_file("examples/sweeps/fashion_mnist.json");
//   std::vector<Trial> trials = expand_search_space(s);  // runtime/sweep/search_space.hpp
#include <cstdint>
#include <string>
#include <vector>

namespace hydra::sweep {

// One searched field: a list of values (grid points, or the choices of random search), or a
// continuous range [min, max] (random search only; log: sampled uniformly in log space).
template <class T>
struct SearchValues {
  std::vector<T> values;
  bool is_range = false;
  T min{}, max{};
  bool log = false;
};

struct DatasetSpec {
  std::string name = "fashion-mnist";  // "fashion-mnist", "kjv" or "synthetic"
  std::string path;                    // "": the default location of the dataset
  std::int64_t train_samples = 0;      // 0: the dataset's default (see README)
  std::int64_t val_samples = 0;
  std::int64_t context = 64;   // kjv: characters per window
  std::int64_t features = 64;  // synthetic: inputs per sample
  std::int64_t classes = 10;   // synthetic: classes (even)
  std::uint64_t seed = 1;      // the train/validation split (and synthetic data)
};

struct ModelSpace {
  std::vector<std::string> family;  // "mlp", "cnn", "gpt"
  SearchValues<std::int64_t> width, depth, heads;
};

struct TrainingSpace {
  std::vector<std::string> optimizer;  // "sgd", "adamw"
  SearchValues<double> lr;
  SearchValues<std::int64_t> batch_size;
  double momentum = 0.9;        // sgd
  double weight_decay = 0.0;    // sgd and adamw
  double clip_grad_norm = 0.0;  // 0: none
};

struct SearchSpec {
  std::string method = "grid";  // "grid" or "random"
  std::int64_t trials = 0;      // random: how many configurations to sample
  std::uint64_t seed = 1;       // random: the sampling seed
};

struct BudgetSpec {
  std::int64_t epochs = 0;  // exactly one of epochs and steps is > 0
  std::int64_t steps = 0;
  double time_seconds = 0;           // > 0: stop every job still training after this long
  std::int64_t evals_per_epoch = 0;  // validations per epoch (with epochs)
  std::int64_t eval_every = 0;       // or steps between validations
};

struct EarlyStoppingSpec {
  std::string method = "none";      // "none", "asha" (asynchronous) or "sha" (synchronous)
  std::string resource = "epochs";  // unit of min_resource: "epochs" or "steps"
  double min_resource = 1;          // the first rung
  double reduction_factor = 3;      // keep the top 1/reduction_factor at every rung
  std::int64_t max_rungs = 3;
};

struct DevicesSpec {
  std::string kind = "default";    // "default", "cpu", "gpu" or "nodes"
  std::int64_t count = 0;          // cpu: virtual devices (default 2); gpu: 0 = all
  std::int64_t memory_mib = 0;     // per-device budget; 0: unlimited / the whole GPU
  std::vector<std::string> nodes;  // kind "nodes": "host:port" of each node
};

struct SweepFile {
  std::string source;  // the path it was read from (for messages)
  std::string name;    // default: the file name without .json
  std::string metric;  // "val_accuracy" (higher is better) or "val_loss"; default per dataset
  std::string policy = "lrtf";
  std::uint64_t seed = 1;  // initialisation and data order of every job
  DatasetSpec dataset;
  // "model": one object, or a list of them (e.g. MLP widths beside CNN widths); the search space
  // is the union of theirs.
  std::vector<ModelSpace> models;
  TrainingSpace training;
  SearchSpec search;
  BudgetSpec budget;
  EarlyStoppingSpec early_stopping;
  DevicesSpec devices;
  std::string text;  // the file's text as read
};

// Reads and checks a sweep file; throws hydra::Error ("sweep file PATH: ...") on any mistake.
SweepFile parse_sweep_file(const std::string& path);
// The same from text; `source` names it in messages (and gives the default name).
SweepFile parse_sweep_text(const std::string& text, const std::string& source);

}  // namespace hydra::sweep
