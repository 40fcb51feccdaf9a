#pragma once
// Where a tensor lives and which backend computes on it.
//   host   : ordinary host memory (unlimited pool)
//   pinned : page-locked host memory for fast, asynchronous transfers to GPUs
//   cpu(i) : virtual CPU device i: host memory accounted in its own capped pool, CPU backend
//   cuda(i): GPU i, CUDA backend
#include <compare>
#include <cstdint>
#include <functional>
#include <string>

namespace hydra {

enum class DeviceKind : std::uint8_t { host, pinned, cpu, cuda };

struct Device {
  DeviceKind kind = DeviceKind::host;
  int index = 0;

  static Device host() { return {DeviceKind::host, 0}; }
  static Device pinned() { return {DeviceKind::pinned, 0}; }
  static Device cpu(int i) { return {DeviceKind::cpu, i}; }
  static Device cuda(int i) { return {DeviceKind::cuda, i}; }

  // True when the CPU can dereference the memory (everything but cuda).
  bool host_accessible() const { return kind != DeviceKind::cuda; }
  bool is_cuda() const { return kind == DeviceKind::cuda; }
  std::string str() const;  // "host", "pinned", "cpu:1", "cuda:0"

  auto operator<=>(const Device&) const = default;
};

// Parses "host", "pinned", "cpu:N", "cuda:N"; throws hydra::Error naming the allowed forms.
Device parse_device(const std::string& text);

}  // namespace hydra

template <>
struct std::hash<hydra::Device> {
  std::size_t operator()(const hydra::Device& d) const noexcept {
    return (static_cast<std::size_t>(d.kind) << 16) ^ static_cast<std::size_t>(d.index);
  }
};
