#pragma once
// Element types. f32 is supported everywhere; f64 on the CPU backend (used for gradient checks);
// bf16 on CUDA devices; i32 holds token ids and class labels.
#include <cstddef>
#include <cstdint>
#include <string>

namespace hydra {

enum class DType : std::uint8_t { f32, f64, bf16, i32 };

constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::bf16: return 2;
    case DType::i32: return 4;
  }
  return 0;
}

const char* dtype_name(DType t);

// bf16 <-> f32 on the host (round to nearest even), for tests and host-side conversion.
std::uint16_t f32_to_bf16(float f);
float bf16_to_f32(std::uint16_t b);

}  // namespace hydra
