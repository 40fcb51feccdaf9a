#include "actors/cluster/wire.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <limits>

namespace hydra::cluster {

void Writer::raw(const void* p, std::size_t n) {
  out_.append(static_cast<const char*>(p), n);
}

void Writer::str(const std::string& s) {
  check(s.size() <= max_string_bytes, "wire: string of " + std::to_string(s.size()) +
                                          " bytes exceeds the limit of " +
                                          std::to_string(max_string_bytes));
  u32(static_cast<std::uint32_t>(s.size()));
  raw(s.data(), s.size());
}

void Writer::tensor(const Tensor& t) {
  if (!t.defined()) {
    u8(0);
    return;
  }
  check(t.device().kind != DeviceKind::cuda,
        "wire: tensor on " + t.device().str() + " must be copied to host memory first");
  u8(1);
  u8(static_cast<std::uint8_t>(t.dtype()));
  u32(static_cast<std::uint32_t>(t.shape().size()));
  for (std::int64_t d : t.shape())
    i64(d);
  Tensor c = t.contiguous();
  u64(c.nbytes());
  raw(c.data(), c.nbytes());
}

void Reader::raw(void* p, std::size_t n) {
  if (n > left())
    throw WireError("wire: message truncated (needs " + std::to_string(n) + " more bytes, " +
                    std::to_string(left()) + " left)");
  std::memcpy(p, in_.data() + pos_, n);
  pos_ += n;
}

std::uint8_t Reader::u8() {
  std::uint8_t v;
  raw(&v, sizeof v);
  return v;
}
std::uint32_t Reader::u32() {
  std::uint32_t v;
  raw(&v, sizeof v);
  return v;
}
std::uint64_t Reader::u64() {
  std::uint64_t v;
  raw(&v, sizeof v);
  return v;
}
std::int64_t Reader::i64() {
  std::int64_t v;
  raw(&v, sizeof v);
  return v;
}
double Reader::f64() {
  double v;
  raw(&v, sizeof v);
  return v;
}

bool Reader::flag() {
  const std::uint8_t v = u8();
  if (v > 1) throw WireError("wire: flag byte " + std::to_string(v) + " is not 0 or 1");
  return v == 1;
}

std::size_t Reader::count(std::size_t max) {
  const std::uint32_t n = u32();
  if (n > max)
    throw WireError("wire: count " + std::to_string(n) + " exceeds the limit " +
                    std::to_string(max));
  return n;
}

std::string Reader::str() {
  const std::size_t n = count(max_string_bytes);
  if (n > left()) throw WireError("wire: string of " + std::to_string(n) + " bytes truncated");
  std::string s(in_.data() + pos_, n);
  pos_ += n;
  return s;
}

Tensor Reader::tensor() {
  if (!flag()) return Tensor();
  const std::uint8_t dt = u8();
  if (dt > static_cast<std::uint8_t>(DType::i32))
    throw WireError("wire: unknown dtype " + std::to_string(dt));
  const DType dtype = static_cast<DType>(dt);
  const std::size_t rank = count(max_tensor_rank);
  Shape shape(rank);
  std::uint64_t numel = 1;
  for (std::int64_t& d : shape) {
    d = i64();
    if (d < 0 || static_cast<std::uint64_t>(d) > left())  // each element needs >= 1 byte
      throw WireError("wire: tensor dimension " + std::to_string(d) + " is out of range");
    numel *= static_cast<std::uint64_t>(d);
    if (numel > left()) throw WireError("wire: tensor larger than the message");
  }
  const std::uint64_t nbytes = u64();
  if (nbytes != numel * dtype_size(dtype) || nbytes > left())
    throw WireError("wire: tensor of " + std::to_string(numel) + " elements declares " +
                    std::to_string(nbytes) + " bytes (" + std::to_string(left()) + " left)");
  Tensor t = Tensor::empty(shape, dtype, Device::host());
  raw(t.data(), nbytes);
  return t;
}

void Reader::expect_end() const {
  if (left() != 0)
    throw WireError("wire: " + std::to_string(left()) + " unexpected trailing bytes");
}

std::string hmac(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, sizeof out,
                &len) == nullptr)
    throw Error("cluster: HMAC-SHA256 failed in OpenSSL");
  return std::string(reinterpret_cast<const char*>(out), len);
}

bool same_mac(const std::string& a, const std::string& b) {
  return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_bytes(std::size_t n) {
  std::string s(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n)) != 1)
    throw Error("cluster: OpenSSL RAND_bytes failed");
  return s;
}

}  // namespace hydra::cluster
