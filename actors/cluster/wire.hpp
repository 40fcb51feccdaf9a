#pragma once
// Byte encoding of what travels between a coordinator and a cluster node, and the message
// authentication both sides use. Everything read from the wire is checked before use: a Reader
// never reads past its buffer, lengths and shapes are checked against the bytes actually present
// and against fixed limits, and any violation throws WireError (the message is then dropped and
// logged; nothing it says is acted on).
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/core/error.hpp"
#include "kernels/core/tensor.hpp"

namespace hydra::cluster {

class WireError : public Error {
 public:
  using Error::Error;
};

inline constexpr std::size_t max_tensor_rank = 8;
inline constexpr std::size_t max_string_bytes = 1 << 16;
inline constexpr std::size_t max_count = 1 << 16;  // list lengths (parameters, stash tensors)

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) { raw(&v, sizeof v); }
  void u64(std::uint64_t v) { raw(&v, sizeof v); }
  void i64(std::int64_t v) { raw(&v, sizeof v); }
  void f64(double v) { raw(&v, sizeof v); }
  void str(const std::string& s);
  // Undefined tensors are encoded as such; defined ones are copied out contiguous, from host
  // memory (the caller brings device tensors home first).
  void tensor(const Tensor& t);
  void raw(const void* p, std::size_t n);
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(const std::string& in) : in_(in) {}
  std::uint8_t u8();
  std::uint32_t u32();
  std::uint64_t u64();
  std::int64_t i64();
  double f64();
  bool flag();                         // a u8 that must be 0 or 1
  std::string str();                   // at most max_string_bytes
  std::size_t count(std::size_t max);  // a u32 list length <= max
  Tensor tensor();                     // host tensor; shape and bytes checked
  void expect_end() const;             // no trailing bytes
  std::size_t left() const { return in_.size() - pos_; }

 private:
  void raw(void* p, std::size_t n);
  const std::string& in_;
  std::size_t pos_ = 0;
};

// HMAC-SHA256 of `data` under `key` (32 bytes), from OpenSSL's libcrypto.
std::string hmac(const std::string& key, const std::string& data);
// Constant-time comparison of two MACs.
bool same_mac(const std::string& a, const std::string& b);
// `n` bytes from OpenSSL's CSPRNG.
std::string random_bytes(std::size_t n);

}  // namespace hydra::cluster
