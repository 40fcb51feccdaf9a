#include "kernels/core/device.hpp"

#include <cstdlib>

#include "kernels/core/error.hpp"

namespace hydra {

std::string Device::str() const {
  switch (kind) {
    case DeviceKind::host: return "host";
    case DeviceKind::pinned: return "pinned";
    case DeviceKind::cpu: return "cpu:" + std::to_string(index);
    case DeviceKind::cuda: return "cuda:" + std::to_string(index);
  }
  return "?";
}

Device parse_device(const std::string& text) {
  if (text == "host") return Device::host();
  if (text == "pinned") return Device::pinned();
  auto colon = text.find(':');
  if (colon != std::string::npos) {
    std::string kind = text.substr(0, colon), num = text.substr(colon + 1);
    char* end = nullptr;
    long idx = std::strtol(num.c_str(), &end, 10);
    if (!num.empty() && *end == '\0' && idx >= 0 && idx < 1024) {
      if (kind == "cpu") return Device::cpu(static_cast<int>(idx));
      if (kind == "cuda") return Device::cuda(static_cast<int>(idx));
    }
  }
  throw Error("bad device '" + text + "': expected host, pinned, cpu:N or cuda:N");
}

}  // namespace hydra
