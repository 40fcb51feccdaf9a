#pragma once
// Checkpoint files: little-endian binary, two kinds.
//
// 1. Model checkpoint ("HYDRACK1", <out_dir>/checkpoints/<job>.ckpt at the best validation):
//
//   header   8 bytes  magic "HYDRACK1"
//            u32      format version (1)
//            i64      training step at which it was written
//            u64      number of parameter records
//   records  u32 name length, name bytes: "<layer index>.<parameter name>", e.g. "3.weight"
//            u8  dtype (0 f32, 1 f64, 2 bf16, 3 i32)
//            u32 rank, then rank x i64 dimensions
//            u64 byte count, then the raw values (row-major, contiguous)
//
// Only parameter values are stored (no gradients or optimizer state).
//
// 2. Training state ("HYDRAST1", <out_dir>/state/<job>.state): everything a job needs to continue
// exactly where it was (JobSpec::resume_from). `str` is u32 length + bytes; `tensor` is u8 dtype,
// u32 rank, rank x i64 dimensions, u64 byte count, raw values.
//
//   header       8 bytes magic "HYDRAST1", u32 format version (1)
//   fingerprint  str optimizer name (Optimizer::name()), f64 lr, i64 batch size,
//                i64 training samples, i64 validation samples, u64 seed, u8 shuffle,
//                f64 clip_grad_norm,
//                u64 layer count; per layer: str layer name, u64 parameter count; per parameter:
//                str name, u8 dtype, u32 rank, rank x i64 dimensions
//   position     i64 training steps done, i64 data loader epoch (from 0), i64 batches of that
//                epoch consumed, i64 training samples seen
//   layer state  per layer: u64 count, count x u64 (Layer::save_state(), e.g. Dropout's seed and
//                call counter)
//   parameters   per parameter in model order: tensor value, i64 optimizer step (Parameter::step),
//                u64 optimizer slot count, slot count x tensor (Parameter::state)
//   result       3 curves in the order train loss, validation loss, validation accuracy: u64
//                points, per point i64 step, f64 epoch, f64 value; then f64 best validation
//                accuracy, f64 best validation loss, i64 best step, str model checkpoint path
//   trailer      u64 FNV-1a (64-bit) hash of every byte before it
//
// With data-parallel replicas the file holds replica 0's parameters (all replicas are equal);
// with sharded data parallelism the optimizer state slices of all replicas are gathered into
// whole tensors, and scattered back to the replicas on resume.
// Gradients and stashes are not stored: the state is written between steps, when they carry
// nothing to the next step. Everything in the fingerprint must match on resume (the shard count
// need not: shards only cut the same model); epochs and max_steps may differ (train longer).
#include <cstdint>
#include <string>

#include "kernels/model.hpp"
#include "runtime/job_result.hpp"

namespace hydra {

// Writes `model`'s parameter values to `path` (via a temporary file, renamed at the end).
// Throws hydra::Error on I/O failure.
void save_checkpoint(const std::string& path, const Model& model, std::int64_t step);
// Reads a checkpoint into `model` (same architecture: names, shapes and dtypes must match, else
// hydra::Error). Returns the step stored in it.
std::int64_t load_checkpoint(const std::string& path, Model& model);

// What must match between a training-state file and the job resuming from it, besides the model's
// layer names and parameter names, dtypes and shapes (taken from the model itself).
struct StateFingerprint {
  std::string optimizer;  // Optimizer::name()
  double lr = 0;
  std::int64_t batch_size = 0;
  std::int64_t train_samples = 0, val_samples = 0;
  std::uint64_t seed = 0;
  bool shuffle = true;
  double clip_grad_norm = 0;
};

// Where a training program's data loader is: the epoch (from 0) and the batches of it consumed.
struct DataPosition {
  std::int64_t epoch = 0, batch = 0;
};

// A job's progress between two steps, besides the model's own state.
struct TrainingProgress {
  std::int64_t step = 0;  // training steps done
  DataPosition data;
  std::int64_t samples = 0;  // training samples seen
  // Curves, best validation point and model checkpoint path (the other fields are not stored).
  JobResult result;
};

// Writes the training state (parameters, optimizer state and steps, layer state, progress) to
// `path` via `path`.tmp renamed at the end, so a crash leaves the previous file intact. The
// model's parameters must all be in host-accessible (home) memory. Throws hydra::Error on I/O
// failure.
void save_training_state(const std::string& path, const Model& model,
                         const StateFingerprint& fingerprint, const TrainingProgress& progress);
// Reads a training-state file into `model` (parameter values, optimizer state and steps, layer
// state) and returns the progress. Everything is checked before the model is touched: a
// truncated or corrupt file, or a fingerprint that differs, throws hydra::Error starting with
// "resume from <path>: " and naming what differs ("batch_size 64 in the state file, 128 in the
// job"); the model is then unchanged.
TrainingProgress load_training_state(const std::string& path, Model& model,
                                     const StateFingerprint& fingerprint);

}  // namespace hydra
