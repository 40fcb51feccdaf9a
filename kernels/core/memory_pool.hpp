#pragma once
// Per-device memory pools with a hard capacity. A pool caches freed blocks for reuse and counts
// both live and cached bytes against its capacity; when an allocation does not fit it first
// returns cached blocks to the system and then throws hydra::OutOfMemory (never crashes).
//
// One pool exists per Device (memory_pool(device)); pools live for the whole process.
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

#include "kernels/core/device.hpp"

namespace hydra {

class MemoryPool {
 public:
  static constexpr std::size_t kUnlimited = SIZE_MAX;
  static constexpr std::size_t kAlignment = 256;

  MemoryPool(Device device, std::size_t capacity);
  ~MemoryPool();
  MemoryPool(const MemoryPool&) = delete;
  MemoryPool& operator=(const MemoryPool&) = delete;

  // Returns a block of at least `bytes` bytes, aligned to kAlignment. Throws OutOfMemory.
  void* allocate(std::size_t bytes);
  void deallocate(void* p);

  Device device() const { return device_; }
  std::size_t capacity() const;
  std::size_t in_use() const;  // bytes in live blocks
  std::size_t peak() const;    // highest in_use() since creation or reset_peak()
  std::size_t cached() const;  // bytes in freed blocks kept for reuse
  std::size_t live_blocks() const;
  // Throws hydra::Error if `bytes` is smaller than what is in use now.
  void set_capacity(std::size_t bytes);
  void reset_peak();
  void release_cached();

 private:
  void* raw_allocate(std::size_t bytes);
  void raw_free(void* p);
  void release_cached_locked();

  Device device_;
  std::size_t capacity_;
  std::size_t in_use_ = 0, peak_ = 0, cached_ = 0;
  std::unordered_map<void*, std::size_t> live_;
  std::multimap<std::size_t, void*> free_;  // size -> block
  mutable std::mutex mutex_;
};

// The process-wide pool of `device`. Default capacities: host, pinned and cpu:N unlimited;
// cuda:N 95% of the GPU's memory. Throws hydra::Error for a cuda device that does not exist.
MemoryPool& memory_pool(Device device);

// Sets the capacity of `device`'s pool (creating it if needed), e.g. to make a 64 MiB virtual
// device in a test.
void set_memory_capacity(Device device, std::size_t bytes);

}  // namespace hydra
