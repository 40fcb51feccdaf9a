#include "actors/cluster/remote_task.hpp"

#include <chrono>
#include <cstring>
#include <limits>
#include <mutex>

#include "actors/cluster/wire.hpp"
#include "actors/task_execution.hpp"
#include "kernels/model_spec.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"

namespace hydra::cluster {

namespace {

using actors::ShardState;
using actors::ShardTask;

constexpr std::size_t max_stash_depth = 8;
enum class OptKind : std::uint8_t { none = 0, sgd = 1, adamw = 2 };

// The home gradients travel for update tasks and for backwards that add to them (micro-batches).
bool sends_grads(const ShardTask& t) {
  return t.kind == TaskKind::update || (t.kind == TaskKind::backward && t.accumulate_grads);
}

// The parameters a task works on: the shard's, or for a sharded update its owned slices (as in
// task_execution.cpp).
std::vector<Parameter*> task_parameters(const ShardTask& t) {
  if (!t.owned_slices) return t.state->parameters();
  std::vector<Parameter*> out;
  for (Parameter& p : t.state->owned_slices)
    out.push_back(&p);
  return out;
}

bool needs_state(const ShardTask& t) {
  return t.kind == TaskKind::update || (t.kind == TaskKind::backward && t.fuse_update);
}

Tensor host_copy(const Tensor& t) {
  if (!t.defined() || t.device().kind != DeviceKind::cuda) return t;
  return t.to(Device::host());
}

void write_stash(Writer& w, const Stash& s, std::size_t depth) {
  check(depth < max_stash_depth, "cluster: stash nested deeper than the wire allows");
  w.u32(static_cast<std::uint32_t>(s.tensors.size()));
  for (const Tensor& t : s.tensors)
    w.tensor(host_copy(t));
  w.u32(static_cast<std::uint32_t>(s.input_shape.size()));
  for (std::int64_t d : s.input_shape)
    w.i64(d);
  w.u32(static_cast<std::uint32_t>(s.children.size()));
  for (const Stash& c : s.children)
    write_stash(w, c, depth + 1);
}

Stash read_stash(Reader& r, std::size_t depth) {
  if (depth >= max_stash_depth) throw WireError("wire: stash nested too deep");
  Stash s;
  const std::size_t n = r.count(max_count);
  for (std::size_t i = 0; i < n; ++i)
    s.tensors.push_back(r.tensor());
  const std::size_t rank = r.count(max_tensor_rank);
  for (std::size_t i = 0; i < rank; ++i)
    s.input_shape.push_back(r.i64());
  const std::size_t c = r.count(max_count);
  for (std::size_t i = 0; i < c; ++i)
    s.children.push_back(read_stash(r, depth + 1));
  return s;
}

void write_stashes(Writer& w, const std::vector<Stash>& v) {
  w.u32(static_cast<std::uint32_t>(v.size()));
  for (const Stash& s : v)
    write_stash(w, s, 0);
}

std::vector<Stash> read_stashes(Reader& r) {
  std::vector<Stash> v(r.count(max_count));
  for (Stash& s : v)
    s = read_stash(r, 0);
  return v;
}

void write_optimizer(Writer& w, const Optimizer* opt) {
  if (!opt) {
    w.u8(static_cast<std::uint8_t>(OptKind::none));
  } else if (auto* s = dynamic_cast<const SGD*>(opt)) {
    w.u8(static_cast<std::uint8_t>(OptKind::sgd));
    for (double v : {s->lr, s->momentum, s->weight_decay, s->dampening})
      w.f64(v);
    w.u8(s->nesterov ? 1 : 0);
  } else if (auto* a = dynamic_cast<const AdamW*>(opt)) {
    w.u8(static_cast<std::uint8_t>(OptKind::adamw));
    for (double v : {a->lr, a->beta1, a->beta2, a->eps, a->weight_decay})
      w.f64(v);
  } else {
    throw Error("cluster: optimizer " + opt->name() +
                " cannot run on a remote device (SGD and AdamW can)");
  }
}

std::shared_ptr<Optimizer> read_optimizer(Reader& r) {
  const std::uint8_t k = r.u8();
  if (k == static_cast<std::uint8_t>(OptKind::none)) return nullptr;
  if (k == static_cast<std::uint8_t>(OptKind::sgd)) {
    const double lr = r.f64(), momentum = r.f64(), wd = r.f64(), dampening = r.f64();
    const bool nesterov = r.flag();
    return std::make_shared<SGD>(lr, momentum, wd, nesterov, dampening);
  }
  if (k == static_cast<std::uint8_t>(OptKind::adamw)) {
    const double lr = r.f64(), b1 = r.f64(), b2 = r.f64(), eps = r.f64(), wd = r.f64();
    return std::make_shared<AdamW>(lr, b1, b2, eps, wd);
  }
  throw WireError("wire: unknown optimizer kind " + std::to_string(k));
}

void check_like(const Tensor& got, const Tensor& home, const std::string& what) {
  if (!got.defined() || got.shape() != home.shape() || got.dtype() != home.dtype())
    throw WireError("wire: " + what + " does not match the shard's tensor");
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::string encode_request(const ShardTask& t) {
  const ShardState& st = *t.state;
  check(!st.model_spec.empty(), "job " + st.job_name +
                                    ": remote devices need JobSpec::model_spec (a model the "
                                    "nodes can build; see kernels/model_spec.hpp)");
  Writer w;
  w.u32(protocol_version);
  w.str(st.model_spec);
  w.u64(st.begin);
  w.u64(st.end);
  w.u32(static_cast<std::uint32_t>(st.shard));
  w.u32(static_cast<std::uint32_t>(st.num_shards));
  w.u8(static_cast<std::uint8_t>(t.kind));
  w.u8(t.training ? 1 : 0);
  w.i64(t.step);
  w.u8(t.fuse_update ? 1 : 0);
  w.f64(t.grad_scale);
  w.u8(t.accumulate_grads ? 1 : 0);
  w.f64(t.loss_weight);
  w.u8(t.owned_slices ? 1 : 0);
  const bool with_opt =
      t.kind == TaskKind::update || (t.kind == TaskKind::backward && t.fuse_update);
  write_optimizer(w, with_opt ? t.optimizer.get() : nullptr);
  auto& shard = const_cast<ShardState&>(st);
  std::lock_guard lock(shard.resident);
  const std::vector<Parameter*> params = task_parameters(t);
  w.u32(static_cast<std::uint32_t>(params.size()));
  for (const Parameter* p : params) {
    w.tensor(host_copy(p->value));
    w.i64(p->step);
    w.tensor(sends_grads(t) ? host_copy(p->grad) : Tensor());
    const bool state = needs_state(t);
    w.u32(state ? static_cast<std::uint32_t>(p->state.size()) : 0);
    if (state)
      for (const Tensor& s : p->state)
        w.tensor(host_copy(s));
  }
  if (t.kind == TaskKind::backward) {
    check(st.has_stash(t.micro_batch), "backward of shard " + std::to_string(st.shard) +
                                           " without a preceding training forward");
    const actors::StashSlot& slot = st.stash_slots[static_cast<std::size_t>(t.micro_batch)];
    w.u8(1);
    write_stashes(w, slot.stashes);
    w.tensor(host_copy(slot.dlogits));
  } else {
    w.u8(0);
  }
  w.tensor(host_copy(t.input));
  w.tensor(host_copy(t.labels));
  return std::move(w.bytes());
}

std::string run_request(const std::string& request, Device device, Stream& compute, Stream& copy,
                        NodeModels& models) {
  Reader r(request);
  const std::uint32_t version = r.u32();
  if (version != protocol_version)
    throw WireError("wire: protocol version " + std::to_string(version) + " (this node speaks " +
                    std::to_string(protocol_version) + ")");
  const std::string spec = r.str();
  const std::uint64_t begin = r.u64(), end = r.u64();
  const std::uint32_t shard = r.u32(), num_shards = r.u32();
  const std::uint8_t kind = r.u8();
  if (kind > static_cast<std::uint8_t>(TaskKind::update))
    throw WireError("wire: unknown task kind " + std::to_string(kind));
  auto task = std::make_shared<ShardTask>();
  ShardTask& t = *task;
  t.kind = static_cast<TaskKind>(kind);
  t.training = r.flag();
  t.step = r.i64();
  t.fuse_update = r.flag();
  t.grad_scale = r.f64();
  t.accumulate_grads = r.flag();
  t.loss_weight = r.f64();
  t.owned_slices = r.flag();
  if (t.owned_slices && t.kind != TaskKind::update)
    throw WireError("wire: owned slices outside an update task");
  t.micro_batch = 0;  // the node holds one stash: the one sent with the task
  t.optimizer = read_optimizer(r);

  std::shared_ptr<Model>& model = models.by_spec[spec];
  if (!model) {
    try {
      model = std::make_shared<Model>(make_model_from_spec(spec));
    } catch (const Error& e) {
      models.by_spec.erase(spec);
      throw WireError(std::string("wire: ") + e.what());
    }
    if (models.by_spec.size() > 64) {  // bounded: forget the others
      auto keep = model;
      models.by_spec.clear();
      models.by_spec[spec] = keep;
    }
  }
  std::shared_ptr<Model> keep_model = models.by_spec[spec];
  if (begin >= end || end > keep_model->size() || num_shards == 0 || num_shards > max_count ||
      shard >= num_shards)
    throw WireError("wire: layer range [" + std::to_string(begin) + ", " + std::to_string(end) +
                    ") or shard " + std::to_string(shard) + "/" + std::to_string(num_shards) +
                    " does not fit the model");
  auto st = std::make_shared<ShardState>();
  st->shard = static_cast<int>(shard);
  st->num_shards = static_cast<int>(num_shards);
  st->model = keep_model;
  st->begin = begin;
  st->end = end;
  st->home = Device::host();
  st->model_spec = spec;
  t.state = st;
  std::vector<Parameter*> params = st->parameters();
  const std::size_t n_params = r.count(max_count);
  if (t.owned_slices) {  // sharded update: flat f32 slices, checked against each other below
    st->owned_slices.resize(n_params);
    params = task_parameters(t);
  } else if (n_params != params.size()) {
    throw WireError("wire: parameter count does not match the model's layer range");
  }
  for (Parameter* p : params) {
    Tensor value = r.tensor();
    if (t.owned_slices) {
      if (!value.defined() || value.shape().size() != 1 || value.dtype() != DType::f32)
        throw WireError("wire: an owned slice must be a flat f32 tensor");
      p->name = "slice";
      p->value = value;
    }
    check_like(value, p->value, "parameter " + p->name);
    p->value = value;
    p->step = r.i64();
    Tensor grad = r.tensor();
    if (grad.defined()) {
      check_like(grad, value, "gradient of " + p->name);
      p->grad = grad;
    } else {
      p->grad = Tensor::zeros(value.shape(), value.dtype(), Device::host());
    }
    p->state.clear();
    const std::size_t ns = r.count(8);
    for (std::size_t k = 0; k < ns; ++k) {
      Tensor s = r.tensor();
      check_like(s, value, "optimizer state of " + p->name);
      p->state.push_back(s);
    }
  }
  if (r.flag()) {
    actors::StashSlot& slot = st->stash_slot(0);
    slot.stashes = read_stashes(r);
    slot.dlogits = r.tensor();
    slot.full = true;
    if (slot.stashes.size() != end - begin)
      throw WireError("wire: stash count does not match the layer range");
  }
  t.input = r.tensor();
  t.labels = r.tensor();
  r.expect_end();

  // The same phases as a local device (actors/task_execution.hpp).
  Trace clock;
  NodeSeconds secs;
  auto t0 = std::chrono::steady_clock::now();
  try {
    auto loaded = actors::load_shard(t, device, copy);
    loaded->ready->synchronize();
    secs.load = seconds_since(t0);
    ExecContext ctx{device, &compute};
    t0 = std::chrono::steady_clock::now();
    t.compute_start = clock.now();
    actors::execute_task(t, *loaded, ctx, copy, clock);
    secs.compute = t.compute_end - t.compute_start;
    secs.store = clock.now() - t.store_start;
  } catch (const std::exception& e) {
    t.error = e.what();
  }

  Writer w;
  w.str(t.error.substr(0, max_string_bytes));
  w.f64(t.loss);
  w.i64(t.correct);
  w.i64(t.count);
  w.f64(t.grad_squares);
  w.f64(secs.load);
  w.f64(secs.compute);
  w.f64(secs.store);
  const bool ok = t.error.empty();
  w.tensor(ok ? t.output : Tensor());
  const bool values = ok && needs_state(t);
  w.u8(values ? 1 : 0);
  if (values) {
    for (const Parameter* p : params) {
      w.tensor(p->value);
      w.i64(p->step);
      w.u32(static_cast<std::uint32_t>(p->state.size()));
      for (const Tensor& s : p->state)
        w.tensor(s);
    }
  }
  const bool grads = ok && t.kind == TaskKind::backward && !t.fuse_update;
  w.u8(grads ? 1 : 0);
  if (grads)
    for (const Parameter* p : params)
      w.tensor(p->grad);
  const bool stash = ok && t.kind == TaskKind::forward && t.training;
  w.u8(stash ? 1 : 0);
  if (stash) {
    write_stashes(w, st->stash_slots.at(0).stashes);
    w.tensor(st->stash_slots.at(0).dlogits);
  }
  return std::move(w.bytes());
}

NodeSeconds apply_result(const std::string& result, ShardTask& t) {
  ShardState& st = *t.state;
  Reader r(result);
  std::string error = r.str();
  const double loss = r.f64();
  const std::int64_t correct = r.i64(), count = r.i64();
  const double grad_squares = r.f64();
  NodeSeconds secs;
  secs.load = r.f64();
  secs.compute = r.f64();
  secs.store = r.f64();
  Tensor output = r.tensor();
  std::lock_guard lock(st.resident);
  const std::vector<Parameter*> params = task_parameters(t);
  struct NewState {
    Tensor value;
    std::int64_t step = 0;
    std::vector<Tensor> state;
  };
  std::vector<NewState> values;
  if (r.flag()) {
    if (!error.empty() || !needs_state(t)) throw WireError("wire: unexpected parameter values");
    for (const Parameter* p : params) {
      NewState n;
      n.value = r.tensor();
      check_like(n.value, p->value, "parameter " + p->name);
      n.step = r.i64();
      if (n.step != p->step + 1) throw WireError("wire: optimizer step count out of sequence");
      const std::size_t ns = r.count(8);
      for (std::size_t k = 0; k < ns; ++k) {
        n.state.push_back(r.tensor());
        check_like(n.state.back(), p->value, "optimizer state of " + p->name);
      }
      if (!p->state.empty() && ns != p->state.size())
        throw WireError("wire: optimizer state count changed");
      values.push_back(std::move(n));
    }
  } else if (error.empty() && needs_state(t)) {
    throw WireError("wire: result without the updated parameters");
  }
  std::vector<Tensor> grads;
  if (r.flag()) {
    if (!error.empty() || t.kind != TaskKind::backward || t.fuse_update)
      throw WireError("wire: unexpected gradients");
    for (const Parameter* p : params) {
      grads.push_back(r.tensor());
      check_like(grads.back(), p->grad, "gradient of " + p->name);
    }
  } else if (error.empty() && t.kind == TaskKind::backward && !t.fuse_update) {
    throw WireError("wire: result without the gradients");
  }
  bool has_stash = false;
  std::vector<Stash> stashes;
  Tensor dlogits;
  if (r.flag()) {
    if (!error.empty() || t.kind != TaskKind::forward || !t.training)
      throw WireError("wire: unexpected stash");
    stashes = read_stashes(r);
    dlogits = r.tensor();
    if (stashes.size() != st.end - st.begin) throw WireError("wire: stash count mismatch");
    has_stash = true;
  } else if (error.empty() && t.kind == TaskKind::forward && t.training) {
    throw WireError("wire: result without the stash");
  }
  r.expect_end();
  const bool wants_output = error.empty() && ((t.kind == TaskKind::forward && !st.last()) ||
                                              (t.kind == TaskKind::backward && st.shard > 0));
  if (wants_output != output.defined()) throw WireError("wire: output present where not expected");

  // Everything checked: apply.
  t.error = std::move(error);
  t.loss = loss;
  t.correct = correct;
  t.count = count;
  t.grad_squares = grad_squares;
  if (!t.error.empty()) return secs;
  const Device home = st.home;
  t.output = output.defined() && output.device() != home ? output.to(home) : output;
  for (std::size_t i = 0; i < values.size(); ++i) {
    Parameter& p = *params[i];
    copy(p.value, values[i].value);
    p.step = values[i].step;
    if (p.state.size() != values[i].state.size()) {
      p.state.clear();
      for (const Tensor& s : values[i].state)
        p.state.push_back(s.device() == home ? s : s.to(home));
    } else {
      for (std::size_t k = 0; k < p.state.size(); ++k)
        copy(p.state[k], values[i].state[k]);
    }
  }
  if (t.kind == TaskKind::update)
    for (Parameter* p : params)
      std::memset(p->grad.data(), 0, p->grad.nbytes());  // home memory is host-accessible
  for (std::size_t i = 0; i < grads.size(); ++i)
    copy(params[i]->grad, grads[i]);
  if (t.kind == TaskKind::forward && t.training) {
    actors::StashSlot& slot = st.stash_slot(t.micro_batch);
    slot.stashes = std::move(stashes);
    slot.dlogits = dlogits;
    slot.full = has_stash;
  } else if (t.kind == TaskKind::backward) {
    st.stash_slot(t.micro_batch) = actors::StashSlot{};
  }
  return secs;
}

}  // namespace hydra::cluster

namespace hydra::cluster {

std::string encode_error_result(const std::string& error) {
  Writer w;
  w.str(error.substr(0, max_string_bytes));
  w.f64(std::numeric_limits<double>::quiet_NaN());
  w.i64(0);
  w.i64(0);
  w.f64(0);
  for (int i = 0; i < 3; ++i)
    w.f64(0);
  w.tensor(Tensor());
  for (int i = 0; i < 3; ++i)
    w.u8(0);
  return std::move(w.bytes());
}

}  // namespace hydra::cluster
