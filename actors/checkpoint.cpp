#include "actors/checkpoint.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace hydra {

namespace {

constexpr char kMagic[8] = {'H', 'Y', 'D', 'R', 'A', 'C', 'K', '1'};
constexpr std::uint32_t kVersion = 1;

template <class T>
void put(std::ostream& os, T v) {
  os.write(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T>
T get(std::istream& is, const std::string& path) {
  T v{};
  is.read(reinterpret_cast<char*>(&v), sizeof v);
  if (!is) throw Error("checkpoint " + path + ": truncated file");
  return v;
}

}  // namespace

void save_checkpoint(const std::string& path, const Model& model, std::int64_t step) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream os(tmp, std::ios::binary | std::ios::trunc);
    if (!os) throw Error("cannot write checkpoint " + tmp);
    os.write(kMagic, sizeof kMagic);
    put<std::uint32_t>(os, kVersion);
    put<std::int64_t>(os, step);
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < model.size(); ++i)
      n += model.layer(i).parameters().size();
    put<std::uint64_t>(os, n);
    for (std::size_t i = 0; i < model.size(); ++i) {
      for (const Parameter& p : model.layer(i).parameters()) {
        const std::string name = std::to_string(i) + "." + p.name;
        put<std::uint32_t>(os, static_cast<std::uint32_t>(name.size()));
        os.write(name.data(), static_cast<std::streamsize>(name.size()));
        put<std::uint8_t>(os, static_cast<std::uint8_t>(p.value.dtype()));
        put<std::uint32_t>(os, static_cast<std::uint32_t>(p.value.rank()));
        for (std::int64_t d : p.value.shape())
          put<std::int64_t>(os, d);
        Tensor host =
            p.value.device().host_accessible() ? p.value.contiguous() : p.value.to(Device::host());
        put<std::uint64_t>(os, host.nbytes());
        os.write(static_cast<const char*>(host.data()),
                 static_cast<std::streamsize>(host.nbytes()));
      }
    }
    if (!os) throw Error("error writing checkpoint " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

std::int64_t load_checkpoint(const std::string& path, Model& model) {
  std::ifstream is(path, std::ios::binary);
  if (!is) throw Error("cannot open checkpoint " + path);
  char magic[8];
  is.read(magic, sizeof magic);
  if (!is || std::memcmp(magic, kMagic, sizeof magic) != 0)
    throw Error("checkpoint " + path + ": not a Hydra checkpoint (bad magic)");
  const auto version = get<std::uint32_t>(is, path);
  if (version != kVersion)
    throw Error("checkpoint " + path + ": unsupported version " + std::to_string(version));
  const auto step = get<std::int64_t>(is, path);
  const auto n = get<std::uint64_t>(is, path);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < model.size(); ++i) {
    for (Parameter& p : model.layer(i).parameters()) {
      const std::string expected = std::to_string(i) + "." + p.name;
      if (seen++ >= n) throw Error("checkpoint " + path + ": missing parameter " + expected);
      std::string name(get<std::uint32_t>(is, path), '\0');
      is.read(name.data(), static_cast<std::streamsize>(name.size()));
      const auto dtype = static_cast<DType>(get<std::uint8_t>(is, path));
      Shape shape(get<std::uint32_t>(is, path));
      for (auto& d : shape)
        d = get<std::int64_t>(is, path);
      const auto bytes = get<std::uint64_t>(is, path);
      if (name != expected || dtype != p.value.dtype() || shape != p.value.shape())
        throw Error("checkpoint " + path + ": parameter " + name + " " + shape_str(shape) +
                    " does not match the model's " + expected + " " + shape_str(p.value.shape()));
      Tensor host = Tensor::empty(shape, dtype, Device::host());
      if (bytes != host.nbytes()) throw Error("checkpoint " + path + ": bad size for " + name);
      is.read(static_cast<char*>(host.data()), static_cast<std::streamsize>(bytes));
      if (!is) throw Error("checkpoint " + path + ": truncated file");
      copy(p.value, host);
    }
  }
  if (seen != n) throw Error("checkpoint " + path + ": has more parameters than the model");
  return step;
}

}  // namespace hydra
