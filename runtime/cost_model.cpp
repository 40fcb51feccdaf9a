#include "runtime/cost_model.hpp"

#include <algorithm>
#include <array>
#include <barrier>
#include <chrono>
#include <exception>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "kernels/core/cuda_api.hpp"
#include "kernels/core/error.hpp"
#include "kernels/layers/embedding.hpp"
#include "kernels/loss.hpp"
#include "kernels/random.hpp"
#include "runtime/median.hpp"

namespace hydra {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
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

namespace {

// One shard of one model prepared for timing its tasks on `device`: inputs, labels and an
// output gradient of the right shapes, the shard's parameters.
class ShardBench {
 public:
  ShardBench(Model& model, std::size_t begin, std::size_t end, const Shape& input, DType dtype,
             Device device)
      : model_(model),
        begin_(begin),
        end_(end),
        last_(end == model.size()),
        device_(device),
        ctx_(ExecContext::on(device)) {
    model.to(device, dtype);
    const bool ids = dynamic_cast<const TokenEmbedding*>(&model.layer(begin)) != nullptr;
    x_ = ids ? Tensor::zeros(input, DType::i32, device)
             : random_tensor(input, dtype, device, 0x5eed);
    Shape out_shape = input;
    for (std::size_t k = begin; k < end; ++k)
      out_shape = model.layer(k).output_shape(out_shape);
    const Shape label_shape(out_shape.begin(), out_shape.end() - 1);
    if (last_)
      labels_ = Tensor::zeros(label_shape, DType::i32, device);
    else
      dy_mid_ = random_tensor(out_shape, dtype, device, 0xd1);
    for (std::size_t i = begin; i < end; ++i)
      for (Parameter& p : model.layer(i).parameters())
        params_.push_back(&p);
  }

  // Training forward (loss fused when last): seconds.
  double forward() {
    stashes_.clear();
    const auto t0 = Clock::now();
    y_ = model_.forward(ctx_, x_, stashes_, true, begin_, end_);
    if (last_) dlogits_ = softmax_cross_entropy(ctx_, y_, labels_, true).dlogits;
    ctx_.synchronize();
    return since(t0);
  }
  // Untimed: fresh zero gradients before a backward.
  void zero_grads() {
    for (Parameter* p : params_)
      p->grad = Tensor::zeros(p->value.shape(), p->value.dtype(), device_);
    ctx_.synchronize();
  }
  double backward() {
    const auto t0 = Clock::now();
    model_.backward(ctx_, last_ ? dlogits_ : dy_mid_, stashes_, begin_, end_);
    ctx_.synchronize();
    return since(t0);
  }
  double update(Optimizer& optimizer) {
    const auto t0 = Clock::now();
    optimizer.step(params_, ctx_);
    ctx_.synchronize();
    return since(t0);
  }
  double eval() {
    std::vector<Stash> eval_stashes;
    const auto t0 = Clock::now();
    Tensor ye = model_.forward(ctx_, x_, eval_stashes, false, begin_, end_);
    if (last_) softmax_cross_entropy(ctx_, ye, labels_, false);
    ctx_.synchronize();
    return since(t0);
  }

  // Sizes after a forward (and, for the state, an update).
  void fill_bytes(ShardCost& c) const {
    c.input_bytes = x_.nbytes();
    c.output_bytes = y_.nbytes();
    c.label_bytes = last_ ? labels_.nbytes() : 0;
    c.stash_bytes = 0;
    for (const Stash& s : stashes_)
      c.stash_bytes += stash_tree_bytes(s);
  }
  void fill_parameter_bytes(ShardCost& c) const {
    c.value_bytes = c.state_bytes = 0;
    for (const Parameter* p : params_) {
      c.value_bytes += p->value.nbytes();
      for (const Tensor& s : p->state)
        c.state_bytes += s.nbytes();
    }
  }

 private:
  Model& model_;
  std::size_t begin_, end_;
  bool last_;
  Device device_;
  ExecContext ctx_;
  Tensor x_, labels_, dy_mid_, y_, dlogits_;
  std::vector<Parameter*> params_;
  std::vector<Stash> stashes_;
};

}  // namespace

Slowdown ShardCost::slowdown(int k) const {
  if (k <= 1 || concurrent.empty()) return {};
  const auto n = static_cast<int>(concurrent.size());
  if (k - 2 < n) return concurrent[static_cast<std::size_t>(k - 2)];
  const double scale = static_cast<double>(k) / static_cast<double>(n + 1);
  Slowdown s = concurrent.back();
  s.forward *= scale;
  s.eval *= scale;
  s.backward *= scale;
  s.update *= scale;
  return s;
}

ShardCost CostModel::measure(Model& model, std::size_t begin, std::size_t end, const Shape& input,
                             Optimizer& optimizer, Device device, DType dtype) const {
  check(device.kind == DeviceKind::cpu || device.kind == DeviceKind::cuda ||
            device.kind == DeviceKind::host,
        "CostModel: cannot run tasks on " + device.str());
  ShardCost c;
  for (std::size_t i = begin; i < end; ++i) {
    Shape in = input;
    for (std::size_t k = begin; k < i; ++k)
      in = model.layer(k).output_shape(in);
    c.forward_flops += model.layer(i).forward_flops(in);
  }
  ShardBench b(model, begin, end, input, dtype, device);
  std::vector<double> fwd, bwd, upd, ev;
  const int runs = std::max(0, options_.warmup) + std::max(1, options_.repeats);
  for (int r = 0; r < runs; ++r) {
    const bool timed = r >= options_.warmup;
    const double tf = b.forward();
    if (r == 0) b.fill_bytes(c);
    b.zero_grads();
    const double tb = b.backward();
    const double tu = b.update(optimizer);
    const double te = b.eval();
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
  b.fill_parameter_bytes(c);
  return c;
}

std::vector<Slowdown> CostModel::measure_contention(std::vector<Model*> models, std::size_t begin,
                                                    std::size_t end, const Shape& input,
                                                    Optimizer& optimizer, Device device,
                                                    DType dtype) const {
  check(device.kind == DeviceKind::cpu || device.kind == DeviceKind::host,
        "CostModel: contention is measured for CPU devices, not " + device.str());
  const int most = static_cast<int>(models.size());
  std::vector<std::unique_ptr<ShardBench>> benches;
  for (int i = 0; i < most; ++i)
    benches.push_back(std::make_unique<ShardBench>(*models[static_cast<std::size_t>(i)], begin, end,
                                                   input, dtype, Device{device.kind, i}));
  // samples[k - 1][kind]: every thread's times with k threads (kinds: forward, eval, backward,
  // update).
  std::vector<std::array<std::vector<double>, 4>> samples(static_cast<std::size_t>(most));
  const int runs = std::max(0, options_.warmup) + std::max(1, options_.repeats);
  for (int r = 0; r < runs; ++r) {
    const bool timed = r >= options_.warmup;
    for (int k = 1; k <= most; ++k) {
      std::barrier sync(k);
      std::vector<std::array<double, 4>> times(static_cast<std::size_t>(k));
      std::vector<std::exception_ptr> errors(static_cast<std::size_t>(k));
      auto body = [&](int i) {
        try {
          ShardBench& b = *benches[static_cast<std::size_t>(i)];
          std::array<double, 4>& t = times[static_cast<std::size_t>(i)];
          sync.arrive_and_wait();
          t[0] = b.forward();
          b.zero_grads();
          sync.arrive_and_wait();
          t[2] = b.backward();
          sync.arrive_and_wait();
          t[3] = b.update(optimizer);
          sync.arrive_and_wait();
          t[1] = b.eval();
        } catch (...) {
          // The others go on without this thread; the error is rethrown once all have ended.
          errors[static_cast<std::size_t>(i)] = std::current_exception();
          sync.arrive_and_drop();
        }
      };
      std::vector<std::thread> pool;
      for (int i = 1; i < k; ++i)
        pool.emplace_back(body, i);
      body(0);
      for (std::thread& t : pool)
        t.join();
      for (const std::exception_ptr& e : errors)
        if (e) std::rethrow_exception(e);
      if (!timed) continue;
      for (const std::array<double, 4>& t : times)
        for (std::size_t kind = 0; kind < 4; ++kind)
          samples[static_cast<std::size_t>(k - 1)][kind].push_back(t[kind]);
    }
  }
  std::array<double, 4> alone{};
  for (std::size_t kind = 0; kind < 4; ++kind)
    alone[kind] = median(samples[0][kind]);
  const auto ratio = [&](int k, std::size_t kind) {
    const double t = median(samples[static_cast<std::size_t>(k - 1)][kind]);
    return alone[kind] > 0 ? std::max(1.0, t / alone[kind]) : 1.0;
  };
  std::vector<Slowdown> out;
  for (int k = 2; k <= most; ++k)
    out.push_back({ratio(k, 0), ratio(k, 1), ratio(k, 2), ratio(k, 3)});
  return out;
}

const ShardCost& CostModel::contention(Model& model, const std::vector<Model*>& copies,
                                       std::size_t begin, std::size_t end, const Shape& input,
                                       Optimizer& optimizer, Device device, DType dtype) {
  shard(model, begin, end, input, optimizer, device, dtype);
  ShardCost& c = shards_.at(signature(model, begin, end, input, dtype, device.kind,
                                      end == model.size(), optimizer.name()));
  if (copies.empty() || c.concurrent.size() >= copies.size()) return c;
  std::vector<Model*> models = {&model};
  for (Model* m : copies) {
    check(m != nullptr && m != &model && m->size() == model.size(),
          "CostModel::contention: each copy must be another model of the same layers");
    models.push_back(m);
  }
  c.concurrent = measure_contention(models, begin, end, input, optimizer, device, dtype);
  ++contended_;
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
  for (const auto& [sig, c] : shards_) {
    if (c.concurrent.empty()) continue;
    nlohmann::json k = nlohmann::json::array();
    for (const Slowdown& s : c.concurrent)
      k.push_back({s.forward, s.eval, s.backward, s.update});
    j["shards"][sig]["concurrent"] = k;
  }
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
      if (v.contains("concurrent"))
        for (const nlohmann::json& k : v.at("concurrent")) {
          if (!k.is_array() || k.size() != 4)
            throw Error("CostModel: bad cost file " + path + ": " + sig +
                        ": each \"concurrent\" entry must be [forward, eval, backward, update]");
          c.concurrent.push_back({k.at(0).get<double>(), k.at(1).get<double>(),
                                  k.at(2).get<double>(), k.at(3).get<double>()});
        }
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
