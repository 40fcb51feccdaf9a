#include "actors/checkpoint.hpp"

#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
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

// --- Training state ------------------------------------------------------------------------------

namespace {

constexpr char kStateMagic[8] = {'H', 'Y', 'D', 'R', 'A', 'S', 'T', '1'};
constexpr std::uint32_t kStateVersion = 1;
constexpr std::uint64_t kFnvOffset = 14695981039346656037ull, kFnvPrime = 1099511628211ull;

std::uint64_t fnv1a(const char* data, std::size_t n, std::uint64_t h = kFnvOffset) {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= kFnvPrime;
  }
  return h;
}

// Writes to a file and hashes every byte written.
class StateWriter {
 public:
  explicit StateWriter(const std::string& path) : os_(path, std::ios::binary | std::ios::trunc) {
    if (!os_) throw Error("cannot write training state " + path);
  }
  void bytes(const void* p, std::size_t n) {
    hash_ = fnv1a(static_cast<const char*>(p), n, hash_);
    os_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
  }
  template <class T>
  void put(T v) {
    bytes(&v, sizeof v);
  }
  void str(const std::string& s) {
    put<std::uint32_t>(static_cast<std::uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  void tensor(const Tensor& t) {
    put<std::uint8_t>(static_cast<std::uint8_t>(t.dtype()));
    put<std::uint32_t>(static_cast<std::uint32_t>(t.rank()));
    for (std::int64_t d : t.shape())
      put<std::int64_t>(d);
    Tensor host = t.device().host_accessible() ? t.contiguous() : t.to(Device::host());
    put<std::uint64_t>(host.nbytes());
    bytes(host.data(), host.nbytes());
  }
  void finish() {
    const std::uint64_t h = hash_;
    os_.write(reinterpret_cast<const char*>(&h), sizeof h);
    os_.flush();
  }
  bool ok() const { return static_cast<bool>(os_); }

 private:
  std::ofstream os_;
  std::uint64_t hash_ = kFnvOffset;
};

// Reads from an in-memory file; running past the end throws "truncated".
class StateReader {
 public:
  StateReader(const std::vector<char>& data, std::size_t end, std::string where)
      : data_(data), end_(end), where_(std::move(where)) {}
  const char* bytes(std::size_t n) {
    if (n > end_ - at_) throw Error(where_ + "truncated or corrupt file (record past the end)");
    const char* p = data_.data() + at_;
    at_ += n;
    return p;
  }
  template <class T>
  T get() {
    T v{};
    std::memcpy(&v, bytes(sizeof v), sizeof v);
    return v;
  }
  std::string str() {
    const auto n = get<std::uint32_t>();
    const char* p = bytes(n);
    return std::string(p, n);
  }
  Shape shape() {
    Shape s(get<std::uint32_t>());
    for (auto& d : s)
      d = get<std::int64_t>();
    return s;
  }
  DType dtype() {
    const auto d = get<std::uint8_t>();
    if (d > static_cast<std::uint8_t>(DType::i32))
      throw Error(where_ + "corrupt file (dtype " + std::to_string(d) + ")");
    return static_cast<DType>(d);
  }
  // A tensor record into a new host tensor.
  Tensor tensor() {
    const DType dtype = this->dtype();
    const Shape shape = this->shape();
    for (std::int64_t d : shape)
      if (d < 0) throw Error(where_ + "corrupt file (negative dimension)");
    const auto n = get<std::uint64_t>();
    Tensor host = Tensor::empty(shape, dtype, Device::host());
    if (n != host.nbytes()) throw Error(where_ + "corrupt file (tensor byte count)");
    std::memcpy(host.data(), bytes(n), n);
    return host;
  }
  std::size_t at() const { return at_; }

 private:
  const std::vector<char>& data_;
  std::size_t end_, at_ = 0;
  std::string where_;
};

std::string num(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void same(const std::string& where, const std::string& what, const std::string& in_file,
          const std::string& in_job) {
  if (in_file != in_job)
    throw Error(where + what + " " + in_file + " in the state file, " + in_job + " in the job");
}

std::string describe_value(const Tensor& t) {
  return std::string(dtype_name(t.dtype())) + " " + shape_str(t.shape());
}
std::string describe(const Parameter& p) {
  return describe_value(p.value);
}

void write_curve(StateWriter& w, const std::vector<CurvePoint>& c) {
  w.put<std::uint64_t>(c.size());
  for (const CurvePoint& p : c) {
    w.put<std::int64_t>(p.step);
    w.put<double>(p.epoch);
    w.put<double>(p.value);
  }
}

std::vector<CurvePoint> read_curve(StateReader& r) {
  const auto n = r.get<std::uint64_t>();
  std::vector<CurvePoint> c;
  for (std::uint64_t i = 0; i < n; ++i) {
    CurvePoint p;
    p.step = r.get<std::int64_t>();
    p.epoch = r.get<double>();
    p.value = r.get<double>();
    c.push_back(p);
  }
  return c;
}

}  // namespace

void save_training_state(const std::string& path, const Model& model, const StateFingerprint& f,
                         const TrainingProgress& progress) {
  const std::string tmp = path + ".tmp";
  {
    StateWriter w(tmp);
    w.bytes(kStateMagic, sizeof kStateMagic);
    w.put<std::uint32_t>(kStateVersion);
    w.str(f.optimizer);
    w.put<double>(f.lr);
    w.put<std::int64_t>(f.batch_size);
    w.put<std::int64_t>(f.train_samples);
    w.put<std::int64_t>(f.val_samples);
    w.put<std::uint64_t>(f.seed);
    w.put<std::uint8_t>(f.shuffle ? 1 : 0);
    w.put<double>(f.clip_grad_norm);
    w.put<std::uint64_t>(model.size());
    for (std::size_t i = 0; i < model.size(); ++i) {
      const Layer& l = model.layer(i);
      w.str(l.name());
      w.put<std::uint64_t>(l.parameters().size());
      for (const Parameter& p : l.parameters()) {
        w.str(p.name);
        w.put<std::uint8_t>(static_cast<std::uint8_t>(p.value.dtype()));
        w.put<std::uint32_t>(static_cast<std::uint32_t>(p.value.rank()));
        for (std::int64_t d : p.value.shape())
          w.put<std::int64_t>(d);
      }
    }
    w.put<std::int64_t>(progress.step);
    w.put<std::int64_t>(progress.data.epoch);
    w.put<std::int64_t>(progress.data.batch);
    w.put<std::int64_t>(progress.samples);
    for (std::size_t i = 0; i < model.size(); ++i) {
      const std::vector<std::uint64_t> st = model.layer(i).save_state();
      w.put<std::uint64_t>(st.size());
      for (std::uint64_t v : st)
        w.put<std::uint64_t>(v);
    }
    for (std::size_t i = 0; i < model.size(); ++i) {
      for (const Parameter& p : model.layer(i).parameters()) {
        w.tensor(p.value);
        w.put<std::int64_t>(p.step);
        w.put<std::uint64_t>(p.state.size());
        for (const Tensor& s : p.state)
          w.tensor(s);
      }
    }
    const JobResult& r = progress.result;
    write_curve(w, r.train_loss);
    write_curve(w, r.val_loss);
    write_curve(w, r.val_accuracy);
    w.put<double>(r.best_val_accuracy);
    w.put<double>(r.best_val_loss);
    w.put<std::int64_t>(r.best_step);
    w.str(r.checkpoint_path);
    w.finish();
    if (!w.ok()) throw Error("error writing training state " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

TrainingProgress load_training_state(const std::string& path, Model& model,
                                     const StateFingerprint& f) {
  const std::string where = "resume from " + path + ": ";
  std::vector<char> data;
  {
    std::ifstream is(path, std::ios::binary);
    if (!is) throw Error(where + "cannot open the file");
    data.assign(std::istreambuf_iterator<char>(is), std::istreambuf_iterator<char>());
  }
  if (data.size() < sizeof kStateMagic ||
      std::memcmp(data.data(), kStateMagic, sizeof kStateMagic) != 0)
    throw Error(where + "not a Hydra training-state file (bad magic)");
  constexpr std::size_t kMin = sizeof kStateMagic + sizeof(std::uint32_t) + sizeof(std::uint64_t);
  if (data.size() < kMin)
    throw Error(where + "truncated file (" + std::to_string(data.size()) + " bytes)");
  const std::size_t end = data.size() - sizeof(std::uint64_t);
  std::uint64_t stored_hash;
  std::memcpy(&stored_hash, data.data() + end, sizeof stored_hash);
  if (fnv1a(data.data(), end) != stored_hash)
    throw Error(where + "truncated or corrupt file (checksum mismatch, " +
                std::to_string(data.size()) + " bytes)");
  StateReader r(data, end, where);
  r.bytes(sizeof kStateMagic);
  const auto version = r.get<std::uint32_t>();
  if (version != kStateVersion)
    throw Error(where + "unsupported format version " + std::to_string(version));

  // Fingerprint.
  const std::string optimizer = r.str();
  const double lr = r.get<double>();
  same(where, "lr", num(lr), num(f.lr));
  same(where, "optimizer", optimizer, f.optimizer);
  same(where, "batch_size", std::to_string(r.get<std::int64_t>()), std::to_string(f.batch_size));
  same(where, "training samples", std::to_string(r.get<std::int64_t>()),
       std::to_string(f.train_samples));
  same(where, "validation samples", std::to_string(r.get<std::int64_t>()),
       std::to_string(f.val_samples));
  same(where, "seed", std::to_string(r.get<std::uint64_t>()), std::to_string(f.seed));
  same(where, "shuffle", r.get<std::uint8_t>() ? "on" : "off", f.shuffle ? "on" : "off");
  same(where, "clip_grad_norm", num(r.get<double>()), num(f.clip_grad_norm));
  same(where, "layer count", std::to_string(r.get<std::uint64_t>()), std::to_string(model.size()));
  for (std::size_t i = 0; i < model.size(); ++i) {
    Layer& l = model.layer(i);
    const std::string layer = "layer " + std::to_string(i);
    same(where, layer, r.str(), l.name());
    same(where, layer + " parameter count", std::to_string(r.get<std::uint64_t>()),
         std::to_string(l.parameters().size()));
    for (const Parameter& p : l.parameters()) {
      const std::string name = r.str();
      const DType dtype = r.dtype();
      const Shape shape = r.shape();
      same(where, layer + " parameter", name + " " + dtype_name(dtype) + " " + shape_str(shape),
           p.name + " " + describe(p));
    }
  }

  TrainingProgress progress;
  progress.step = r.get<std::int64_t>();
  progress.data.epoch = r.get<std::int64_t>();
  progress.data.batch = r.get<std::int64_t>();
  progress.samples = r.get<std::int64_t>();
  if (progress.step < 0 || progress.data.epoch < 0 || progress.data.batch < 0 ||
      progress.samples < 0)
    throw Error(where + "corrupt file (negative step or data position)");

  // Read everything into temporaries; the model is changed only once all of it is read.
  std::vector<std::vector<std::uint64_t>> layer_states(model.size());
  for (auto& st : layer_states) {
    const auto n = r.get<std::uint64_t>();
    if (n > (end - r.at()) / sizeof(std::uint64_t))
      throw Error(where + "truncated or corrupt file (layer state)");
    st.resize(n);
    for (auto& v : st)
      v = r.get<std::uint64_t>();
  }
  struct Loaded {
    Parameter* param;
    Tensor value;
    std::int64_t step;
    std::vector<Tensor> state;
  };
  std::vector<Loaded> loaded;
  for (std::size_t i = 0; i < model.size(); ++i) {
    for (Parameter& p : model.layer(i).parameters()) {
      const std::string name = "parameter " + std::to_string(i) + "." + p.name;
      Loaded l{&p, r.tensor(), 0, {}};
      same(where, name, describe_value(l.value), describe(p));
      l.step = r.get<std::int64_t>();
      const auto slots = r.get<std::uint64_t>();
      if (slots > 16) throw Error(where + "corrupt file (" + name + " optimizer slots)");
      for (std::uint64_t k = 0; k < slots; ++k) {
        Tensor s = r.tensor();
        same(where, name + " optimizer state", shape_str(s.shape()), shape_str(p.value.shape()));
        l.state.push_back(std::move(s));
      }
      loaded.push_back(std::move(l));
    }
  }
  JobResult& res = progress.result;
  res.train_loss = read_curve(r);
  res.val_loss = read_curve(r);
  res.val_accuracy = read_curve(r);
  res.best_val_accuracy = r.get<double>();
  res.best_val_loss = r.get<double>();
  res.best_step = r.get<std::int64_t>();
  res.checkpoint_path = r.str();
  res.steps = progress.step;
  if (r.at() != end) throw Error(where + "corrupt file (unexpected bytes at the end)");

  // Apply: layer state first (it can still refuse a state that does not fit), then parameters.
  for (std::size_t i = 0; i < model.size(); ++i) {
    try {
      const std::vector<std::uint64_t> before = model.layer(i).save_state();
      if (before.size() != layer_states[i].size())
        throw Error(std::to_string(layer_states[i].size()) + " values in the state file, " +
                    std::to_string(before.size()) + " in the job");
    } catch (const std::exception& e) {
      throw Error(where + "layer " + std::to_string(i) + " state: " + e.what());
    }
  }
  for (std::size_t i = 0; i < model.size(); ++i)
    model.layer(i).restore_state(layer_states[i]);
  for (Loaded& l : loaded) {
    Parameter& p = *l.param;
    copy(p.value, l.value);
    p.step = l.step;
    p.state.clear();
    for (const Tensor& s : l.state) {
      Tensor home = Tensor::empty(s.shape(), s.dtype(), p.value.device());
      copy(home, s);
      p.state.push_back(home);
    }
  }
  return progress;
}

}  // namespace hydra
