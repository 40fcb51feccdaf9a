#pragma once
// An in-memory labelled dataset and a minibatch loader over it.
//
//   Dataset train = load_fashion_mnist(dir, FashionMnistSplit::train);
//   auto [fit, val] = train.split(55000);
//   DataLoader loader(fit, {.batch_size = 128, .shuffle = true, .seed = 1});
//   for (std::int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     Batch b;
//     while (loader.next(b)) { ... b.inputs [B, ...] f32, b.labels [B] i32 ... }
//   }
//
// Samples are rows of dim 0. Classification data (images) has f32 inputs [N, ...] and one i32
// class label per sample, [N]; sequence data (language modelling, runtime/data/text_corpus.hpp)
// has i32 token ids as inputs [N, T] and one i32 label per position, [N, T].
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/core/tensor.hpp"

namespace hydra {

// inputs: host f32 or i32 [N, ...]; labels: host i32 [N, ...] (class ids, e.g. [N] for one
// class per sample or [N, T] for one next token per position). Both contiguous. Copying a
// Dataset shares its tensors.
class Dataset {
 public:
  Dataset() = default;
  // Throws hydra::Error unless inputs is a contiguous host-accessible f32 or i32 tensor of
  // rank >= 1, labels a contiguous host-accessible i32 tensor of rank >= 1 and both hold the
  // same N in dim 0.
  Dataset(Tensor inputs, Tensor labels);

  std::int64_t size() const { return labels_.defined() ? labels_.dim(0) : 0; }
  const Tensor& inputs() const { return inputs_; }
  const Tensor& labels() const { return labels_; }
  Shape sample_shape() const;         // inputs' shape without dim 0, e.g. [1, 28, 28] or [T]
  std::int64_t sample_numel() const;  // input elements per sample
  Shape label_shape() const;          // labels' shape without dim 0: [] for [N] labels, or [T]
  std::int64_t label_numel() const;   // labels per sample (1 for [N] labels)
  std::int64_t num_classes() const;   // 1 + the largest label of all (0 when empty)

  // Samples [begin, end) as views (no copy).
  Dataset slice(std::int64_t begin, std::int64_t end) const;
  // The first `first` samples and the rest, as views.
  std::pair<Dataset, Dataset> split(std::int64_t first) const;
  // The samples at `indices` (in that order, repeats allowed), gathered into new host tensors.
  Dataset subset(const std::vector<std::int64_t>& indices) const;

 private:
  Tensor inputs_, labels_;
};

// A deterministic permutation of 0..n-1 from `seed` (Fisher-Yates with a counter-based
// generator: the same on every platform and standard library).
std::vector<std::int64_t> seeded_permutation(std::int64_t n, std::uint64_t seed);

struct Batch {
  Tensor inputs;           // [B, ...] with the dataset's dtype (f32 or i32)
  Tensor labels;           // [B, ...] i32, e.g. [B] or [B, T]
  std::int64_t index = 0;  // batch number within the epoch
  std::int64_t size() const { return labels.defined() ? labels.dim(0) : 0; }
};

struct DataLoaderOptions {
  std::int64_t batch_size = 64;
  bool shuffle = true;     // a new seeded permutation every epoch
  bool drop_last = false;  // drop a final batch smaller than batch_size
  std::uint64_t seed = 0;  // the permutation of epoch e depends only on (seed, e)
  // Where gathered batches are allocated: host, pinned (for asynchronous copies to a GPU) or a
  // cpu:N device. Unshuffled batches are views of the dataset when this is the dataset's device.
  Device device = Device::host();
};

class DataLoader {
 public:
  // Throws hydra::Error when batch_size < 1 or `device` is not host-accessible.
  DataLoader(Dataset data, DataLoaderOptions options);

  const Dataset& dataset() const { return data_; }
  const DataLoaderOptions& options() const { return options_; }
  std::int64_t num_batches() const;  // per epoch, honouring drop_last
  std::int64_t num_samples() const;  // per epoch, honouring drop_last

  // Fixes the sample order for `epoch` and rewinds to its first batch. The constructor starts
  // epoch 0.
  void start_epoch(std::int64_t epoch);
  std::int64_t epoch() const { return epoch_; }
  // The sample order of the current epoch (all N samples, including any dropped at the end).
  const std::vector<std::int64_t>& order() const { return order_; }

  // Continues the current epoch at batch `i` (0 <= i <= num_batches()): next() returns batch i
  // (nothing when i == num_batches()). Resumed training uses it. Throws hydra::Error otherwise.
  void seek(std::int64_t i);
  std::int64_t position() const { return cursor_; }  // batches of this epoch handed out
  // Batch `i` of the current epoch (0 <= i < num_batches()).
  Batch batch(std::int64_t i) const;
  // The next batch of the current epoch; false (and `out` untouched) after the last one.
  bool next(Batch& out);

 private:
  Dataset data_;
  DataLoaderOptions options_;
  std::int64_t epoch_ = 0;
  std::int64_t cursor_ = 0;
  std::vector<std::int64_t> order_;
};

}  // namespace hydra
