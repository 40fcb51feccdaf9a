#include "kernels/core/error.hpp"

#include <cstdio>

namespace hydra {

std::string format_bytes(std::size_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (bytes >= (std::size_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1u << 30));
  else if (bytes >= (std::size_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / (1u << 20));
  else if (bytes >= 1024)
    std::snprintf(buf, sizeof buf, "%.2f KiB", b / 1024);
  else
    std::snprintf(buf, sizeof buf, "%zu B", bytes);
  return buf;
}

OutOfMemory::OutOfMemory(const std::string& device, std::size_t requested, std::size_t in_use,
                         std::size_t capacity)
    : Error("out of memory on " + device + ": requested " + format_bytes(requested) + " with " +
            format_bytes(in_use) + " in use of a " + format_bytes(capacity) + " capacity"),
      requested_(requested),
      in_use_(in_use),
      capacity_(capacity) {}

}  // namespace hydra
