#include "kernels/core/tensor.hpp"

#include <cstring>
#include <sstream>

#include "kernels/core/memory_pool.hpp"
#include "kernels/core/stream.hpp"

namespace hydra {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

std::int64_t shape_numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Storage::~Storage() {
  if (pool_) pool_->deallocate(data_);
}

namespace {
std::vector<std::int64_t> contiguous_strides(const Shape& shape) {
  std::vector<std::int64_t> st(shape.size());
  std::int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}
void check_shape(const Shape& shape) {
  for (auto d : shape)
    if (d < 0) throw Error("negative dimension in shape " + shape_str(shape));
}
}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape(shape);
  Tensor t;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  MemoryPool& pool = memory_pool(device);
  const std::size_t bytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  void* p = pool.allocate(bytes);
  t.storage_ = std::make_shared<Storage>(p, bytes, device, &pool);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device, Stream* stream) {
  Tensor t = empty(shape, dtype, device);
  if (device.is_cuda()) {
    Stream& s = stream ? *stream : default_stream(device);
    cuda::memset_async(t.data(), 0, t.nbytes(), s.handle());
    if (!stream) s.synchronize();
  } else {
    std::memset(t.data(), 0, t.nbytes());
  }
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, DType dtype) {
  return from_vector(std::vector<double>(values.begin(), values.end()), shape, dtype);
}

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  if (static_cast<std::int64_t>(values.size()) != shape_numel(shape))
    throw Error("from_vector: " + std::to_string(values.size()) + " values for shape " +
                shape_str(shape));
  Tensor t = empty(shape, dtype, Device::host());
  const std::size_t n = values.size();
  switch (dtype) {
    case DType::f32:
      for (std::size_t i = 0; i < n; ++i) t.data_as<float>()[i] = static_cast<float>(values[i]);
      break;
    case DType::f64:
      for (std::size_t i = 0; i < n; ++i) t.data_as<double>()[i] = values[i];
      break;
    case DType::bf16:
      for (std::size_t i = 0; i < n; ++i)
        t.data_as<std::uint16_t>()[i] = f32_to_bf16(static_cast<float>(values[i]));
      break;
    case DType::i32:
      for (std::size_t i = 0; i < n; ++i)
        t.data_as<std::int32_t>()[i] = static_cast<std::int32_t>(values[i]);
      break;
  }
  return t;
}

Tensor Tensor::from_ints(const std::vector<std::int32_t>& values, const Shape& shape) {
  if (static_cast<std::int64_t>(values.size()) != shape_numel(shape))
    throw Error("from_ints: " + std::to_string(values.size()) + " values for shape " +
                shape_str(shape));
  Tensor t = empty(shape, DType::i32, Device::host());
  if (!values.empty()) std::memcpy(t.data(), values.data(), values.size() * 4);
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, Device device) {
  check_shape(shape);
  Tensor t;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = std::make_shared<Storage>(
      data, static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype), device, nullptr);
  return t;
}

std::int64_t Tensor::dim(int i) const {
  const int r = rank();
  if (i < 0) i += r;
  if (i < 0 || i >= r)
    throw Error("dimension " + std::to_string(i) + " out of range for " + str());
  return shape_[i];
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

void* Tensor::data() {
  if (!storage_) throw Error("data() of an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_ * static_cast<std::int64_t>(dtype_size(dtype_));
}
const void* Tensor::data() const { return const_cast<Tensor*>(this)->data(); }

void Tensor::check_dtype(DType expected) const {
  if (dtype_ != expected)
    throw Error(std::string("tensor has dtype ") + dtype_name(dtype_) + ", expected " +
                dtype_name(expected));
}

Tensor Tensor::view(const Shape& shape) const {
  if (!is_contiguous()) throw Error("view() of a non-contiguous " + str());
  Shape s = shape;
  int infer = -1;
  std::int64_t known = 1;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) throw Error("view(): more than one -1 in " + shape_str(shape));
      infer = static_cast<int>(i);
    } else if (s[i] < 0) {
      throw Error("view(): bad shape " + shape_str(shape));
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel() % known != 0)
      throw Error("view(): cannot view " + str() + " as " + shape_str(shape));
    s[infer] = numel() / known;
  }
  if (shape_numel(s) != numel())
    throw Error("view(): cannot view " + str() + " as " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::slice(std::int64_t begin, std::int64_t end) const {
  if (rank() == 0) throw Error("slice() of a scalar tensor");
  return narrow(0, begin, end - begin);
}

Tensor Tensor::narrow(int d, std::int64_t start, std::int64_t length) const {
  const int r = rank();
  if (d < 0) d += r;
  if (d < 0 || d >= r) throw Error("narrow(): dimension out of range for " + str());
  if (start < 0 || length < 0 || start + length > shape_[d])
    throw Error("narrow(): [" + std::to_string(start) + ", " + std::to_string(start + length) +
                ") out of range for dimension " + std::to_string(d) + " of " + str());
  Tensor t = *this;
  t.offset_ += start * strides_[d];
  t.shape_[d] = length;
  return t;
}

Tensor Tensor::transpose(int a, int b) const {
  const int r = rank();
  if (a < 0) a += r;
  if (b < 0) b += r;
  if (a < 0 || a >= r || b < 0 || b >= r) throw Error("transpose(): bad dimensions for " + str());
  Tensor t = *this;
  std::swap(t.shape_[a], t.shape_[b]);
  std::swap(t.strides_[a], t.strides_[b]);
  return t;
}

Tensor Tensor::contiguous(Stream* stream) const {
  if (is_contiguous()) return *this;
  if (!device_.host_accessible())
    throw Error("contiguous(): strided copies of CUDA tensors are not supported (" + str() + ")");
  (void)stream;
  Tensor out = empty(shape_, dtype_, device_);
  const std::size_t es = dtype_size(dtype_);
  const int r = rank();
  std::vector<std::int64_t> idx(r, 0);
  const char* src = static_cast<const char*>(data());
  char* dst = static_cast<char*>(out.data());
  const std::int64_t n = numel();
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t off = 0;
    for (int k = 0; k < r; ++k) off += idx[k] * strides_[k];
    std::memcpy(dst + i * es, src + off * static_cast<std::int64_t>(es), es);
    for (int k = r - 1; k >= 0; --k) {
      if (++idx[k] < shape_[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

Tensor Tensor::to(Device device, Stream* stream) const {
  Tensor src = contiguous();
  Tensor out = empty(shape_, dtype_, device);
  copy(out, src, stream);
  return out;
}

Tensor Tensor::clone(Stream* stream) const { return to(device_, stream); }

std::vector<double> Tensor::to_doubles() const {
  Tensor h = device_.host_accessible() ? contiguous() : to(Device::host());
  const std::size_t n = static_cast<std::size_t>(numel());
  std::vector<double> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (dtype_) {
      case DType::f32: out[i] = h.data_as<float>()[i]; break;
      case DType::f64: out[i] = h.data_as<double>()[i]; break;
      case DType::bf16: out[i] = bf16_to_f32(h.data_as<std::uint16_t>()[i]); break;
      case DType::i32: out[i] = h.data_as<std::int32_t>()[i]; break;
    }
  }
  return out;
}

std::vector<float> Tensor::to_floats() const {
  auto d = to_doubles();
  return std::vector<float>(d.begin(), d.end());
}

std::vector<std::int32_t> Tensor::to_ints() const {
  check_dtype(DType::i32);
  Tensor h = device_.host_accessible() ? contiguous() : to(Device::host());
  const auto* p = h.data_as<std::int32_t>();
  return std::vector<std::int32_t>(p, p + numel());
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  return std::string("Tensor(") + dtype_name(dtype_) + " " + shape_str(shape_) + " on " +
         device_.str() + ")";
}

void copy(Tensor& dst, const Tensor& src, Stream* stream) {
  if (dst.shape() != src.shape() || dst.dtype() != src.dtype())
    throw Error("copy(): " + src.str() + " into " + dst.str() + ": shapes or dtypes differ");
  if (!dst.is_contiguous() || !src.is_contiguous())
    throw Error("copy(): both tensors must be contiguous (" + src.str() + " into " + dst.str() +
                ")");
  const std::size_t bytes = src.nbytes();
  if (bytes == 0) return;
  if (dst.device().host_accessible() && src.device().host_accessible()) {
    std::memmove(dst.data(), src.data(), bytes);
    return;
  }
  Device cuda_side = dst.device().is_cuda() ? dst.device() : src.device();
  if (stream && stream->device() != dst.device() && stream->device() != src.device())
    throw Error("copy(): stream of " + stream->device().str() + " used to copy " + src.str() +
                " into " + dst.str());
  Stream& s = stream ? *stream : default_stream(cuda_side);
  cuda::memcpy_async(dst.data(), src.data(), bytes, s.handle());
  if (!stream) s.synchronize();
}

}  // namespace hydra
