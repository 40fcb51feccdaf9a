#include "runtime/text_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "kernels/core/error.hpp"

namespace hydra {

void write_text_file(const std::string& path, std::string_view text, const std::string& what) {
  errno = 0;
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file)
    throw Error(what + ": cannot open " + path +
                " for writing: " + (errno ? std::strerror(errno) : "unknown error"));
  file.write(text.data(), static_cast<std::streamsize>(text.size()));
  file.close();
  if (!file)
    throw Error(what + ": writing " + path +
                " failed: " + (errno ? std::strerror(errno) : "unknown error"));
}

}  // namespace hydra
