#pragma once
// Counter-based random numbers: the same (seed, index) gives the same value on the host and on
// CUDA devices, so dropout masks and initialisations agree across backends.
#include <cstdint>

#if defined(__CUDACC__)
#define HYDRA_HD __host__ __device__ __forceinline__
#else
#define HYDRA_HD inline
#endif

namespace hydra {

HYDRA_HD std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in [0, 1) with 24 random bits (exactly representable in float and double).
HYDRA_HD float uniform01(std::uint64_t seed, std::uint64_t index) {
  const std::uint64_t h = splitmix64(seed ^ splitmix64(index));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

}  // namespace hydra
