#include "runtime/cost_model.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "kernels/core/cuda_api.hpp"
#include "kernels/core/error.hpp"
#include "kernels/layers/embedding.hpp"
#include "kernels/loss.hpp"
#include "kernels/random.hpp"

namespace hydra {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::size_t stash_tree_bytes(const Stash& s) {
  std::size_t b = 0;
  for (const Tensor& t : s.tensors)
    if (t.defined()) b += t.nbytes();
  for (const Stash& c : s.children)
    b += stash_tree_bytes(c);
  return b;
}

std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(s[i]);
  }
  out += ']';
  return out;
}

const char* kind_key(DeviceKind k) {
  switch (k) {
    case DeviceKind::host:
      return "host";
    case DeviceKind::pinned:
      return "pinned";
    case DeviceKind::cpu:
      return "cpu";
    case DeviceKind::cuda:
      return "cuda";
  }
  return "unknown";
}

Tensor random_tensor(const Shape& shape, DType dtype, Device device, std::uint64_t seed) {
  if (dtype != DType::f32) return Tensor::zeros(shape, dtype, device);
  std::int64_t n = 1;
  for (std::int64_t d : shape)
    n *= d;
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = 2.0f * uniform01(seed, i) - 1.0f;
  return Tensor::from_vector(v, shape).to(device);
}

}  // namespace

CostModel::CostModel() : CostModel(Options{}) {}
CostModel::CostModel(Options options) : options_(options) {}

std::string CostModel::signature(const Model& model, std::size_t begin, std::size_t end,
                                 const Shape& input, DType dtype, DeviceKind device, bool last,
                                 const std::string& optimizer) {
  check(begin < end && end <= model.size(), "CostModel: invalid layer range");
  std::string s = kind_key(device);
  for (const std::string& part : {std::string(dtype_name(dtype)), shape_text(input),
                                  std::string(last ? "loss" : "-"), optimizer}) {
    s += '|';
    s += part;
  }
  s += '|';
  for (std::size_t i = begin; i < end; ++i) {
    if (i > begin) s += ';';
    s += model.layer(i).name();
  }
  return s;
}

const ShardCost* CostModel::find(const std::string& sig) const {
  auto it = shards_.find(sig);
  return it == shards_.end() ? nullptr : &it->second;
}

void CostModel::set(const std::string& sig, const ShardCost& cost) {
  shards_[sig] = cost;
}

const ShardCost& CostModel::shard(Model& model, std::size_t begin, std::size_t end,
                                  const Shape& input, Optimizer& optimizer, Device device,
                                  DType dtype) {
  const bool last = end == model.size();
  const std::string sig =
      signature(model, begin, end, input, dtype, device.kind, last, optimizer.name());
  auto it = shards_.find(sig);
  if (it != shards_.end()) return it->second;
  ShardCost c = measure(model, begin, end, input, optimizer, device, dtype);
  ++measured_;
  return shards_.emplace(sig, c).first->second;
}

ShardCost CostModel::measure(Model& model, std::size_t begin, std::size_t end, const Shape& input,
                             Optimizer& optimizer, Device device, DType dtype) const {
  check(device.kind == DeviceKind::cpu || device.kind == DeviceKind::cuda ||
            device.kind == DeviceKind::host,
        "CostModel: cannot run tasks on " + device.str());
  const bool last = end == model.size();
  ShardCost c;
  for (std::size_t i = begin; i < end; ++i) {
    Shape in = input;
    for (std::size_t k = begin; k < i; ++k)
      in = model.layer(k).output_shape(in);
    c.forward_flops += model.layer(i).forward_flops(in);
  }
  model.to(device, dtype);
  ExecContext ctx = ExecContext::on(device);
  const bool ids = dynamic_cast<const TokenEmbedding*>(&model.layer(begin)) != nullptr;
  const Tensor x =
      ids ? Tensor::zeros(input, DType::i32, device) : random_tensor(input, dtype, device, 0x5eed);
  Shape out_shape = input;
  for (std::size_t k = begin; k < end; ++k)
    out_shape = model.layer(k).output_shape(out_shape);
  Shape label_shape(out_shape.begin(), out_shape.end() - 1);
  const Tensor labels = last ? Tensor::zeros(label_shape, DType::i32, device) : Tensor();
  const Tensor dy_mid = last ? Tensor() : random_tensor(out_shape, dtype, device, 0xd1);
  std::vector<Parameter*> params;
  for (std::size_t i = begin; i < end; ++i)
    for (Parameter& p : model.layer(i).parameters())
      params.push_back(&p);

  std::vector<double> fwd, bwd, upd, ev;
  const int runs = std::max(0, options_.warmup) + std::max(1, options_.repeats);
  for (int r = 0; r < runs; ++r) {
    const bool timed = r >= options_.warmup;
    std::vector<Stash> stashes;
    auto t0 = Clock::now();
    Tensor y = model.forward(ctx, x, stashes, true, begin, end);
    Tensor dlogits;
    if (last) dlogits = softmax_cross_entropy(ctx, y, labels, true).dlogits;
    ctx.synchronize();
    const double tf = since(t0);
    if (r == 0) {
      c.input_bytes = x.nbytes();
      c.output_bytes = y.nbytes();
      c.label_bytes = last ? labels.nbytes() : 0;
      for (const Stash& s : stashes)
        c.stash_bytes += stash_tree_bytes(s);
    }
    for (Parameter* p : params)
      p->grad = Tensor::zeros(p->value.shape(), p->value.dtype(), device);
    ctx.synchronize();
    t0 = Clock::now();
    model.backward(ctx, last ? dlogits : dy_mid, stashes, begin, end);
    ctx.synchronize();
    const double tb = since(t0);
    t0 = Clock::now();
    optimizer.step(params, ctx);
    ctx.synchronize();
    const double tu = since(t0);
    std::vector<Stash> eval_stashes;
    t0 = Clock::now();
    Tensor ye = model.forward(ctx, x, eval_stashes, false, begin, end);
    if (last) softmax_cross_entropy(ctx, ye, labels, false);
    ctx.synchronize();
    const double te = since(t0);
    if (timed) {
      fwd.push_back(tf);
      bwd.push_back(tb);
      upd.push_back(tu);
      ev.push_back(te);
    }
  }
  c.forward = median(fwd);
  c.backward = median(bwd);
  c.update = median(upd);
  c.eval = median(ev);
  for (Parameter* p : params) {
    c.value_bytes += p->value.nbytes();
    for (const Tensor& s : p->state)
      c.state_bytes += s.nbytes();
  }
  return c;
}

LinkCost CostModel::measure_link(Device device) const {
  const bool cuda = device.kind == DeviceKind::cuda;
  if (cuda && cuda::device_count() == 0) return options_.default_cuda_link;
  const Device home = cuda ? Device::pinned() : Device::host();
  const Device target = device.kind == DeviceKind::host ? Device::cpu(0) : device;
  auto time_copy = [&](std::size_t bytes) {
    const auto n = static_cast<std::int64_t>(bytes / 4);
    Tensor src = Tensor::zeros({n}, DType::f32, home);
    std::vector<double> t;
    for (int r = 0; r < 7; ++r) {
      auto t0 = Clock::now();
      Tensor d = src.to(target);
      if (cuda) ExecContext::on(target).synchronize();
      const double s = since(t0);
      if (r > 0) t.push_back(s);
    }
    return median(t);
  };
  const std::size_t small = 4096, big = std::size_t{16} << 20;
  const double ts = time_copy(small), tb = time_copy(big);
  LinkCost l;
  l.latency = ts;
  l.bandwidth = tb > ts ? static_cast<double>(big - small) / (tb - ts) : 1e10;
  return l;
}

LinkCost CostModel::link(Device device) {
  const std::string key = kind_key(device.kind);
  auto it = links_.find(key);
  if (it != links_.end()) return it->second;
  const LinkCost l = measure_link(device);
  links_[key] = l;
  return l;
}

void CostModel::set_link(DeviceKind kind, LinkCost cost) {
  links_[kind_key(kind)] = cost;
}

double CostModel::host_parallelism(int threads) {
  threads = std::max(1, threads);
  // A dependent floating-point loop over a small array: CPU-bound, no shared memory traffic.
  auto work = [] {
    std::vector<float> v(4096, 1.0f);
    float acc = 0;
    for (int r = 0; r < 2000; ++r)
      for (float& x : v) {
        x = x * 0.999f + 0.001f;
        acc += x;
      }
    return acc;
  };
  auto run = [&](int n) {
    std::vector<double> times;
    for (int rep = 0; rep < 3; ++rep) {
      std::vector<std::thread> pool;
      std::vector<float> sink(static_cast<std::size_t>(n));
      const auto t0 = Clock::now();
      for (int i = 0; i < n; ++i)
        pool.emplace_back([&, i] { sink[static_cast<std::size_t>(i)] = work(); });
      for (std::thread& t : pool)
        t.join();
      times.push_back(since(t0));
    }
    return median(times);
  };
  const double t1 = run(1), tn = run(threads);
  if (tn <= 0) return threads;
  return std::clamp(threads * t1 / tn, 1.0, static_cast<double>(threads));
}

void CostModel::save(const std::string& path) const {
  nlohmann::json j;
  j["shards"] = nlohmann::json::object();
  for (const auto& [sig, c] : shards_)
    j["shards"][sig] = {{"forward", c.forward},
                        {"eval", c.eval},
                        {"backward", c.backward},
                        {"update", c.update},
                        {"value_bytes", c.value_bytes},
                        {"state_bytes", c.state_bytes},
                        {"stash_bytes", c.stash_bytes},
                        {"input_bytes", c.input_bytes},
                        {"output_bytes", c.output_bytes},
                        {"label_bytes", c.label_bytes},
                        {"forward_flops", c.forward_flops}};
  j["links"] = nlohmann::json::object();
  for (const auto& [kind, l] : links_)
    j["links"][kind] = {{"latency", l.latency}, {"bandwidth", l.bandwidth}};
  std::ofstream f(path);
  check(static_cast<bool>(f), "CostModel: cannot write " + path);
  f << j.dump(1) << "\n";
  check(static_cast<bool>(f), "CostModel: cannot write " + path);
}

void CostModel::load(const std::string& path) {
  std::ifstream f(path);
  check(static_cast<bool>(f), "CostModel: cannot read " + path);
  try {
    const nlohmann::json j = nlohmann::json::parse(f);
    for (const auto& [sig, v] : j.at("shards").items()) {
      ShardCost c;
      c.forward = v.at("forward").get<double>();
      c.eval = v.at("eval").get<double>();
      c.backward = v.at("backward").get<double>();
      c.update = v.at("update").get<double>();
      c.value_bytes = v.at("value_bytes").get<std::size_t>();
      c.state_bytes = v.at("state_bytes").get<std::size_t>();
      c.stash_bytes = v.at("stash_bytes").get<std::size_t>();
      c.input_bytes = v.at("input_bytes").get<std::size_t>();
      c.output_bytes = v.at("output_bytes").get<std::size_t>();
      c.label_bytes = v.at("label_bytes").get<std::size_t>();
      c.forward_flops = v.at("forward_flops").get<double>();
      shards_[sig] = c;
    }
    if (j.contains("links"))
      for (const auto& [kind, v] : j.at("links").items())
        links_[kind] = LinkCost{v.at("latency").get<double>(), v.at("bandwidth").get<double>()};
  } catch (const nlohmann::json::exception& e) {
    throw Error("CostModel: bad cost file " + path + ": " + e.what());
  }
}

}  // namespace hydra
