#pragma once
// Errors raised by the Hydra runtime. Every failure is a typed exception with a message that
// names what went wrong and what the caller can do; nothing fails silently.
#include <cstddef>
#include <stdexcept>
#include <string>

namespace hydra {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A memory pool could not satisfy an allocation within its capacity.
class OutOfMemory : public Error {
 public:
  OutOfMemory(const std::string& device, std::size_t requested, std::size_t in_use,
              std::size_t capacity);
  std::size_t requested() const { return requested_; }
  std::size_t in_use() const { return in_use_; }
  std::size_t capacity() const { return capacity_; }

 private:
  std::size_t requested_, in_use_, capacity_;
};

// Throws hydra::Error with `message` when `condition` is false.
inline void check(bool condition, const std::string& message) {
  if (!condition) throw Error(message);
}

std::string format_bytes(std::size_t bytes);

}  // namespace hydra
