#include "kernels/core/memory_pool.hpp"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>

#include "kernels/core/cuda_api.hpp"
#include "kernels/core/error.hpp"

namespace hydra {

namespace {
std::size_t round_up(std::size_t n) {
  if (n == 0) n = 1;
  return (n + MemoryPool::kAlignment - 1) / MemoryPool::kAlignment * MemoryPool::kAlignment;
}
}  // namespace

MemoryPool::MemoryPool(Device device, std::size_t capacity)
    : device_(device), capacity_(capacity) {}

MemoryPool::~MemoryPool() {
  std::lock_guard lock(mutex_);
  release_cached_locked();
  if (!live_.empty())
    std::fprintf(stderr, "hydra: memory pool %s destroyed with %zu live blocks\n",
                 device_.str().c_str(), live_.size());
}

void* MemoryPool::raw_allocate(std::size_t bytes) {
  switch (device_.kind) {
    case DeviceKind::host:
    case DeviceKind::cpu: return std::aligned_alloc(kAlignment, bytes);
    case DeviceKind::pinned:
      return cuda::available() ? cuda::malloc_pinned(bytes) : std::aligned_alloc(kAlignment, bytes);
    case DeviceKind::cuda: return cuda::malloc_device(bytes, device_.index);
  }
  return nullptr;
}

void MemoryPool::raw_free(void* p) {
  switch (device_.kind) {
    case DeviceKind::host:
    case DeviceKind::cpu: std::free(p); return;
    case DeviceKind::pinned:
      if (cuda::available())
        cuda::free_pinned(p);
      else
        std::free(p);
      return;
    case DeviceKind::cuda: cuda::free_device(p, device_.index); return;
  }
}

void MemoryPool::release_cached_locked() {
  for (auto& [size, p] : free_) raw_free(p);
  free_.clear();
  cached_ = 0;
}

void* MemoryPool::allocate(std::size_t bytes) {
  const std::size_t n = round_up(bytes);
  std::lock_guard lock(mutex_);
  // Reuse a cached block of a close size (at most twice as large, to bound waste).
  auto it = free_.lower_bound(n);
  if (it != free_.end() && it->first <= 2 * n) {
    auto [size, p] = *it;
    free_.erase(it);
    cached_ -= size;
    live_.emplace(p, size);
    in_use_ += size;
    if (in_use_ > peak_) peak_ = in_use_;
    return p;
  }
  if (capacity_ != kUnlimited && in_use_ + cached_ + n > capacity_) release_cached_locked();
  if (capacity_ != kUnlimited && in_use_ + n > capacity_)
    throw OutOfMemory(device_.str(), bytes, in_use_, capacity_);
  void* p = nullptr;
  try {
    p = raw_allocate(n);
  } catch (const Error&) {
    p = nullptr;
  }
  if (!p) {  // the system itself is out of memory: give back the cache and try once more
    release_cached_locked();
    try {
      p = raw_allocate(n);
    } catch (const Error&) {
      p = nullptr;
    }
    if (!p) throw OutOfMemory(device_.str() + " (system allocator)", bytes, in_use_, capacity_);
  }
  live_.emplace(p, n);
  in_use_ += n;
  if (in_use_ > peak_) peak_ = in_use_;
  return p;
}

void MemoryPool::deallocate(void* p) {
  if (!p) return;
  std::lock_guard lock(mutex_);
  auto it = live_.find(p);
  if (it == live_.end()) {
    std::fprintf(stderr, "hydra: pool %s asked to free a pointer it does not own\n",
                 device_.str().c_str());
    std::abort();
  }
  const std::size_t size = it->second;
  live_.erase(it);
  in_use_ -= size;
  free_.emplace(size, p);
  cached_ += size;
}

std::size_t MemoryPool::capacity() const {
  std::lock_guard lock(mutex_);
  return capacity_;
}
std::size_t MemoryPool::in_use() const {
  std::lock_guard lock(mutex_);
  return in_use_;
}
std::size_t MemoryPool::peak() const {
  std::lock_guard lock(mutex_);
  return peak_;
}
std::size_t MemoryPool::cached() const {
  std::lock_guard lock(mutex_);
  return cached_;
}
std::size_t MemoryPool::live_blocks() const {
  std::lock_guard lock(mutex_);
  return live_.size();
}
void MemoryPool::set_capacity(std::size_t bytes) {
  std::lock_guard lock(mutex_);
  if (bytes < in_use_)
    throw Error("cannot set the capacity of " + device_.str() + " to " + format_bytes(bytes) +
                ": " + format_bytes(in_use_) + " are in use");
  capacity_ = bytes;
  if (in_use_ + cached_ > capacity_) release_cached_locked();
}
void MemoryPool::reset_peak() {
  std::lock_guard lock(mutex_);
  peak_ = in_use_;
}
void MemoryPool::release_cached() {
  std::lock_guard lock(mutex_);
  release_cached_locked();
}

namespace {
struct PoolRegistry {
  std::mutex mutex;
  std::unordered_map<Device, std::unique_ptr<MemoryPool>> pools;
};
// Intentionally leaked: tensors held in static objects may outlive any destruction order.
PoolRegistry& registry() {
  static auto* r = new PoolRegistry;
  return *r;
}
std::size_t default_capacity(Device d) {
  if (d.kind != DeviceKind::cuda) return MemoryPool::kUnlimited;
  if (d.index < 0 || d.index >= cuda::device_count())
    throw Error("device " + d.str() + " does not exist (" + std::to_string(cuda::device_count()) +
                " CUDA GPU(s) available)");
  return cuda::total_memory(d.index) / 100 * 95;
}
}  // namespace

MemoryPool& memory_pool(Device device) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.pools.find(device);
  if (it != r.pools.end()) return *it->second;
  if (device.index < 0) throw Error("bad device index in " + device.str());
  auto pool = std::make_unique<MemoryPool>(device, default_capacity(device));
  return *r.pools.emplace(device, std::move(pool)).first->second;
}

void set_memory_capacity(Device device, std::size_t bytes) {
  memory_pool(device).set_capacity(bytes);
}

}  // namespace hydra
