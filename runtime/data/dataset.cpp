#include "runtime/data/dataset.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace hydra {

namespace {

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [0, bound) without modulo bias (rejection sampling on a counter-based stream).
std::uint64_t uniform_below(std::uint64_t bound, std::uint64_t seed, std::uint64_t& counter) {
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % bound);
  for (;;) {
    const std::uint64_t r = mix64(seed ^ mix64(counter++));
    if (r < limit) return r % bound;
  }
}

// Copies the rows `indices[begin, end)` of `src` ([N, row] elements of `row_bytes` each) into
// consecutive rows of `dst`.
void gather_rows(void* dst, const void* src, std::size_t row_bytes, const std::int64_t* indices,
                 std::int64_t count) {
  if (row_bytes == 0) return;
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  for (std::int64_t i = 0; i < count; ++i)
    std::memcpy(d + static_cast<std::size_t>(i) * row_bytes,
                s + static_cast<std::size_t>(indices[i]) * row_bytes, row_bytes);
}

Dataset gather(const Dataset& data, const std::int64_t* indices, std::int64_t count,
               Device device) {
  Shape in_shape = data.inputs().shape();
  in_shape[0] = count;
  Shape label_shape = data.labels().shape();
  label_shape[0] = count;
  Tensor inputs = Tensor::empty(in_shape, data.inputs().dtype(), device);
  Tensor labels = Tensor::empty(label_shape, DType::i32, device);
  if (count > 0) {
    const std::int64_t n = data.size();
    for (std::int64_t i = 0; i < count; ++i)
      if (indices[i] < 0 || indices[i] >= n)
        throw Error("Dataset: sample index " + std::to_string(indices[i]) +
                    " out of range for a dataset of " + std::to_string(n) + " samples");
    gather_rows(inputs.data(), data.inputs().data(),
                static_cast<std::size_t>(data.sample_numel()) * dtype_size(data.inputs().dtype()),
                indices, count);
    gather_rows(labels.data(), data.labels().data(),
                static_cast<std::size_t>(data.label_numel()) * sizeof(std::int32_t), indices,
                count);
  }
  return Dataset(inputs, labels);
}

}  // namespace

Dataset::Dataset(Tensor inputs, Tensor labels)
    : inputs_(std::move(inputs)), labels_(std::move(labels)) {
  check(inputs_.defined() && labels_.defined(), "Dataset: inputs and labels must be defined");
  check(
      (inputs_.dtype() == DType::f32 || inputs_.dtype() == DType::i32) && inputs_.rank() >= 1 &&
          inputs_.is_contiguous() && inputs_.device().host_accessible(),
      "Dataset: inputs must be a contiguous host f32 or i32 tensor [N, ...], got " + inputs_.str());
  check(labels_.dtype() == DType::i32 && labels_.rank() >= 1 && labels_.is_contiguous() &&
            labels_.device().host_accessible(),
        "Dataset: labels must be a contiguous host i32 tensor [N, ...], got " + labels_.str());
  check(inputs_.dim(0) == labels_.dim(0),
        "Dataset: " + std::to_string(inputs_.dim(0)) + " inputs " + shape_str(inputs_.shape()) +
            " but " + std::to_string(labels_.dim(0)) + " labels " + shape_str(labels_.shape()));
}

Shape Dataset::sample_shape() const {
  if (!inputs_.defined()) return {};
  return Shape(inputs_.shape().begin() + 1, inputs_.shape().end());
}

std::int64_t Dataset::sample_numel() const {
  return inputs_.defined() ? shape_numel(sample_shape()) : 0;
}

Shape Dataset::label_shape() const {
  if (!labels_.defined()) return {};
  return Shape(labels_.shape().begin() + 1, labels_.shape().end());
}

std::int64_t Dataset::label_numel() const {
  return labels_.defined() ? shape_numel(label_shape()) : 0;
}

std::int64_t Dataset::num_classes() const {
  const std::int64_t n = labels_.defined() ? labels_.numel() : 0;
  if (n == 0) return 0;
  const std::int32_t* l = labels_.data_as<std::int32_t>();
  return std::int64_t{*std::max_element(l, l + n)} + 1;
}

Dataset Dataset::slice(std::int64_t begin, std::int64_t end) const {
  check(0 <= begin && begin <= end && end <= size(),
        "Dataset::slice(" + std::to_string(begin) + ", " + std::to_string(end) +
            ") out of range for a dataset of " + std::to_string(size()) + " samples");
  return Dataset(inputs_.slice(begin, end), labels_.slice(begin, end));
}

std::pair<Dataset, Dataset> Dataset::split(std::int64_t first) const {
  check(0 <= first && first <= size(), "Dataset::split(" + std::to_string(first) +
                                           ") out of range for a dataset of " +
                                           std::to_string(size()) + " samples");
  return {slice(0, first), slice(first, size())};
}

Dataset Dataset::subset(const std::vector<std::int64_t>& indices) const {
  check(inputs_.defined(), "Dataset::subset of an empty dataset");
  return gather(*this, indices.data(), static_cast<std::int64_t>(indices.size()), Device::host());
}

std::vector<std::int64_t> seeded_permutation(std::int64_t n, std::uint64_t seed) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
  std::iota(p.begin(), p.end(), std::int64_t{0});
  std::uint64_t counter = 0;
  const std::uint64_t s = mix64(seed);
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j =
        static_cast<std::int64_t>(uniform_below(static_cast<std::uint64_t>(i) + 1, s, counter));
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
  return p;
}

DataLoader::DataLoader(Dataset data, DataLoaderOptions options)
    : data_(std::move(data)), options_(options) {
  check(options_.batch_size >= 1,
        "DataLoader: batch_size must be at least 1, got " + std::to_string(options_.batch_size));
  check(options_.device.host_accessible(),
        "DataLoader: batches must live in host-accessible memory (host, pinned or cpu:N), got " +
            options_.device.str());
  start_epoch(0);
}

std::int64_t DataLoader::num_batches() const {
  const std::int64_t n = data_.size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::int64_t DataLoader::num_samples() const {
  return options_.drop_last ? num_batches() * options_.batch_size : data_.size();
}

void DataLoader::start_epoch(std::int64_t epoch) {
  epoch_ = epoch;
  cursor_ = 0;
  if (options_.shuffle) {
    // Distinct, well-mixed seeds per (seed, epoch).
    order_ = seeded_permutation(
        data_.size(),
        mix64(options_.seed) ^ mix64(static_cast<std::uint64_t>(epoch) + 0x5851f42d4c957f2dull));
  } else {
    order_.resize(static_cast<std::size_t>(data_.size()));
    std::iota(order_.begin(), order_.end(), std::int64_t{0});
  }
}

Batch DataLoader::batch(std::int64_t i) const {
  check(0 <= i && i < num_batches(), "DataLoader::batch(" + std::to_string(i) +
                                         ") out of range: the epoch has " +
                                         std::to_string(num_batches()) + " batches");
  const std::int64_t begin = i * options_.batch_size;
  const std::int64_t end = std::min(begin + options_.batch_size, data_.size());
  Batch out;
  out.index = i;
  if (!options_.shuffle && options_.device == data_.inputs().device()) {
    const Dataset part = data_.slice(begin, end);
    out.inputs = part.inputs();
    out.labels = part.labels();
  } else {
    const Dataset part = gather(data_, order_.data() + begin, end - begin, options_.device);
    out.inputs = part.inputs();
    out.labels = part.labels();
  }
  return out;
}

void DataLoader::seek(std::int64_t i) {
  check(i >= 0 && i <= num_batches(), "DataLoader::seek: batch " + std::to_string(i) +
                                          " outside 0.." + std::to_string(num_batches()));
  cursor_ = i;
}

bool DataLoader::next(Batch& out) {
  if (cursor_ >= num_batches()) return false;
  out = batch(cursor_++);
  return true;
}

}  // namespace hydra
