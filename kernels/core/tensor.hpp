#pragma once
// A strided, reference-counted n-d array on some Device. Copying a Tensor shares its storage;
// view(), slice(), narrow() and transpose() make views without copying. Kernels work on
// contiguous tensors; contiguous() copies only when needed.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/core/device.hpp"
#include "kernels/core/dtype.hpp"
#include "kernels/core/error.hpp"

namespace hydra {

class Stream;
class MemoryPool;

using Shape = std::vector<std::int64_t>;
std::string shape_str(const Shape& s);   // "[2, 3]"
std::int64_t shape_numel(const Shape& s);

// Owns (or, for wrapped external memory, borrows) one block of device memory.
class Storage {
 public:
  Storage(void* data, std::size_t bytes, Device device, MemoryPool* pool)
      : data_(data), bytes_(bytes), device_(device), pool_(pool) {}
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_;
  std::size_t bytes_;
  Device device_;
  MemoryPool* pool_;  // nullptr: not owned
};

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::f32; }
template <>
constexpr DType dtype_of<double>() { return DType::f64; }
template <>
constexpr DType dtype_of<std::int32_t>() { return DType::i32; }
template <>
constexpr DType dtype_of<std::uint16_t>() { return DType::bf16; }

class Tensor {
 public:
  Tensor() = default;

  // Uninitialised memory from `device`'s pool (throws OutOfMemory).
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::host());
  // Zero-filled (all dtypes: zero bits). On CUDA the fill is queued on `stream` (default stream
  // of the device when null).
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::host(),
                      Stream* stream = nullptr);
  // Host tensors from values (converted to `dtype`).
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            DType dtype = DType::f32);
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape,
                            DType dtype = DType::f64);
  static Tensor from_ints(const std::vector<std::int32_t>& values, const Shape& shape);
  // Borrow external memory (not freed by the tensor).
  static Tensor wrap(void* data, const Shape& shape, DType dtype, Device device);

  bool defined() const { return static_cast<bool>(storage_); }
  const Shape& shape() const { return shape_; }
  const std::vector<std::int64_t>& strides() const { return strides_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  std::int64_t dim(int i) const;  // negative counts from the end
  std::int64_t numel() const { return shape_numel(shape_); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool is_contiguous() const;
  std::int64_t offset() const { return offset_; }  // in elements, into the storage

  void* data();
  const void* data() const;
  template <class T>
  T* data_as() {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(data());
  }
  template <class T>
  const T* data_as() const {
    check_dtype(dtype_of<T>());
    return static_cast<const T*>(data());
  }

  // Views (no copy).
  Tensor view(const Shape& shape) const;  // contiguous only; one dimension may be -1
  Tensor slice(std::int64_t begin, std::int64_t end) const;  // rows [begin, end) of dim 0
  Tensor narrow(int dim, std::int64_t start, std::int64_t length) const;
  Tensor transpose(int a, int b) const;

  // Copies.
  Tensor contiguous(Stream* stream = nullptr) const;  // *this when already contiguous
  // Copy to `device`. Asynchronous on CUDA when `stream` is given; otherwise synchronous.
  Tensor to(Device device, Stream* stream = nullptr) const;
  Tensor clone(Stream* stream = nullptr) const;
  // Copy of the values to the host as doubles / floats (synchronous).
  std::vector<double> to_doubles() const;
  std::vector<float> to_floats() const;
  std::vector<std::int32_t> to_ints() const;

  bool shares_storage_with(const Tensor& other) const { return storage_ == other.storage_; }
  std::string str() const;  // "Tensor(f32 [2, 3] on cpu:0)"

 private:
  void check_dtype(DType expected) const;

  std::shared_ptr<Storage> storage_;
  std::int64_t offset_ = 0;
  Shape shape_;
  std::vector<std::int64_t> strides_;
  DType dtype_ = DType::f32;
  Device device_;
};

// Copies src into dst (same shape and dtype, both contiguous, any devices). On CUDA, or between
// host and CUDA, the copy is queued on `stream` (which must belong to one of the two devices);
// with stream == nullptr it runs on that device's default stream and waits for completion.
void copy(Tensor& dst, const Tensor& src, Stream* stream = nullptr);

}  // namespace hydra
