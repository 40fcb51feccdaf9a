#pragma once
// Model checkpoints: a simple little-endian binary file.
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
#include <cstdint>
#include <string>

#include "kernels/model.hpp"

namespace hydra {

// Writes `model`'s parameter values to `path` (via a temporary file, renamed at the end).
// Throws hydra::Error on I/O failure.
void save_checkpoint(const std::string& path, const Model& model, std::int64_t step);
// Reads a checkpoint into `model` (same architecture: names, shapes and dtypes must match, else
// hydra::Error). Returns the step stored in it.
std::int64_t load_checkpoint(const std::string& path, Model& model);

}  // namespace hydra
