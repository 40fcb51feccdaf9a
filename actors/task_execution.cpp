#include "actors/task_execution.hpp"

#include <cmath>
#include <cstring>
#include <mutex>

#include "kernels/backend.hpp"
#include "kernels/loss.hpp"

namespace hydra::actors {

namespace {

Tensor to_device(const Tensor& t, Device device, Stream& copy, std::size_t& bytes) {
  if (!t.defined() || t.device() == device) return t;
  bytes += t.nbytes();
  return t.to(device, &copy);
}

void move_stash(Stash& s, Device device, Stream& copy, std::size_t& bytes) {
  for (Tensor& t : s.tensors)
    t = to_device(t, device, copy, bytes);
  for (Stash& c : s.children)
    move_stash(c, device, copy, bytes);
}

// Swaps the device copies into the shard's parameters for the compute phase and puts the home
// tensors back when it ends, whatever happens.
class Resident {
 public:
  explicit Resident(LoadedShard& l) : loaded_(l) {
    for (std::size_t i = 0; i < l.params.size(); ++i) {
      Parameter& p = *l.params[i];
      home_values_.push_back(p.value);
      home_grads_.push_back(p.grad);
      home_states_.push_back(p.state);
      home_steps_.push_back(p.step);
      p.value = l.values[i];
      if (l.grads[i].defined()) p.grad = l.grads[i];
      if (!l.states[i].empty() || p.state.empty()) p.state = l.states[i];
    }
  }
  ~Resident() {
    for (std::size_t i = 0; i < loaded_.params.size(); ++i) {
      Parameter& p = *loaded_.params[i];
      p.value = home_values_[i];
      p.grad = home_grads_[i];
      p.state = home_states_[i];
      if (!committed_) p.step = home_steps_[i];  // a failed task applied no update
    }
  }
  // The task succeeded: its optimizer steps count.
  void commit() { committed_ = true; }
  Resident(const Resident&) = delete;
  Resident& operator=(const Resident&) = delete;

  // Copies the (device) values and optimizer state into home memory; the step count is plain
  // host data and stays as updated.
  void store_values_and_state(Device home, Stream& copy, std::size_t& bytes) {
    for (std::size_t i = 0; i < loaded_.params.size(); ++i) {
      Parameter& p = *loaded_.params[i];
      copy_home(home_values_[i], p.value, copy, bytes);
      if (home_states_[i].size() != p.state.size()) {
        home_states_[i].clear();
        for (const Tensor& s : p.state) {
          bytes += s.nbytes();
          home_states_[i].push_back(s.device() == home ? s : s.to(home, &copy));
        }
      } else {
        for (std::size_t k = 0; k < p.state.size(); ++k)
          copy_home(home_states_[i][k], p.state[k], copy, bytes);
      }
    }
  }
  void store_grads(Stream& copy, std::size_t& bytes) {
    for (std::size_t i = 0; i < loaded_.params.size(); ++i)
      copy_home(home_grads_[i], loaded_.params[i]->grad, copy, bytes);
  }
  void zero_home_grads() {
    for (Tensor& g : home_grads_)
      std::memset(g.data(), 0, g.nbytes());
  }

 private:
  static void copy_home(Tensor& home, const Tensor& dev, Stream& copy, std::size_t& bytes) {
    if (home.shares_storage_with(dev)) return;
    bytes += dev.nbytes();
    hydra::copy(home, dev, &copy);
  }
  LoadedShard& loaded_;
  std::vector<Tensor> home_values_, home_grads_;
  std::vector<std::vector<Tensor>> home_states_;
  std::vector<std::int64_t> home_steps_;
  bool committed_ = false;
};

bool starts_with_loss_error(const std::string& what, const char* tail) {
  return what.find(std::string("loss is ") + tail) != std::string::npos;
}

}  // namespace

namespace {

// The parameters a task works on: the shard's, or for a sharded update its owned slices.
std::vector<Parameter*> task_parameters(const ShardTask& task) {
  if (!task.owned_slices) return task.state->parameters();
  std::vector<Parameter*> out;
  for (Parameter& p : task.state->owned_slices)
    out.push_back(&p);
  return out;
}

bool needs_optimizer_state(const ShardTask& task) {
  return task.kind == TaskKind::update || (task.kind == TaskKind::backward && task.fuse_update);
}

// Parameter values and (when the task needs it) optimizer state of the task's shard.
void load_values_and_state(const ShardTask& task, LoadedShard& l, Stream& copy) {
  const bool needs_state = needs_optimizer_state(task);
  for (Parameter* p : l.params) {
    l.values.push_back(to_device(p->value, l.device, copy, l.bytes));
    std::vector<Tensor> s;
    if (needs_state)
      for (const Tensor& t : p->state)
        s.push_back(to_device(t, l.device, copy, l.bytes));
    l.states.push_back(std::move(s));
  }
}

}  // namespace

std::unique_ptr<LoadedShard> prefetch_shard(const ShardTask& hint, Device device, Stream& copy) {
  ShardState& st = *hint.state;
  std::unique_lock lock(st.resident, std::try_to_lock);
  if (!lock.owns_lock()) return nullptr;
  auto l = std::make_unique<LoadedShard>();
  l->device = device;
  l->params = task_parameters(hint);
  l->prefetched = true;
  load_values_and_state(hint, *l, copy);
  l->ready = std::make_unique<Event>(device);
  l->ready->record(copy);
  l->ready->synchronize();  // the home state may change once the lock is released
  return l;
}

std::unique_ptr<LoadedShard> load_shard(const ShardTask& task, Device device, Stream& copy,
                                        std::unique_ptr<LoadedShard> prefetched) {
  const ShardState& st = *task.state;
  std::unique_ptr<LoadedShard> l;
  if (prefetched && prefetched->device == device && prefetched->params == task_parameters(task)) {
    l = std::move(prefetched);
  } else {
    l = std::make_unique<LoadedShard>();
    l->device = device;
    l->params = task_parameters(task);
    load_values_and_state(task, *l, copy);
  }
  const bool backward = task.kind == TaskKind::backward;
  const bool update = task.kind == TaskKind::update;
  for (Parameter* p : l->params) {
    if (backward && task.accumulate_grads)  // micro-batches: add to the gradients so far
      l->grads.push_back(to_device(p->grad, device, copy, l->bytes));
    else if (backward)  // gradients are zero at the start of each step's backward
      l->grads.push_back(Tensor::zeros(p->grad.shape(), p->grad.dtype(), device, &copy));
    else if (update)
      l->grads.push_back(to_device(p->grad, device, copy, l->bytes));
    else
      l->grads.emplace_back();
  }
  if (backward) {
    check(st.has_stash(task.micro_batch), "backward of shard " + std::to_string(st.shard) +
                                              " without a preceding training forward");
    const StashSlot& slot = st.stash_slots[static_cast<std::size_t>(task.micro_batch)];
    l->stashes = slot.stashes;  // copies of the handles; the home stash stays until success
    for (Stash& s : l->stashes)
      move_stash(s, device, copy, l->bytes);
    if (st.last()) l->dlogits = to_device(slot.dlogits, device, copy, l->bytes);
  }
  l->input = to_device(task.input, device, copy, l->bytes);
  l->labels = to_device(task.labels, device, copy, l->bytes);
  l->ready = std::make_unique<Event>(device);
  l->ready->record(copy);
  return l;
}

void execute_task(ShardTask& t, LoadedShard& l, ExecContext& ctx, Stream& copy,
                  const Trace& clock) {
  ShardState& st = *t.state;
  const Device home = st.home;
  Model& model = *st.model;
  l.ready->wait(*ctx.stream);
  std::lock_guard resident_lock(st.resident);
  Resident resident(l);
  std::size_t stored = 0;
  if (t.kind == TaskKind::forward) {
    std::vector<Stash> stashes;
    Tensor y = model.forward(ctx, l.input, stashes, t.training, st.begin, st.end);
    Tensor dlogits;
    if (l.labels.defined()) {
      try {
        LossResult r = softmax_cross_entropy(ctx, y, l.labels, t.training);
        t.loss = r.loss;
        t.correct = r.correct;
        t.count = r.count;
        dlogits = r.dlogits;
        if (t.training && t.loss_weight != 1.0) ctx.backend().scale(dlogits, t.loss_weight, ctx);
      } catch (const Error& e) {
        const std::string what = e.what();
        if (starts_with_loss_error(what, "NaN"))
          t.loss = std::numeric_limits<double>::quiet_NaN();
        else if (starts_with_loss_error(what, "inf"))
          t.loss = std::numeric_limits<double>::infinity();
        else
          throw;
        t.count = l.labels.numel();
      }
    }
    ctx.synchronize();
    t.compute_end = clock.now();
    t.store_start = t.compute_end;
    if (!st.last()) t.output = to_device(y, home, copy, stored);
    if (t.training) {
      for (Stash& s : stashes)
        move_stash(s, home, copy, stored);
      Tensor home_dlogits = to_device(dlogits, home, copy, stored);
      copy.synchronize();
      StashSlot& slot = st.stash_slot(t.micro_batch);
      slot.stashes = std::move(stashes);
      slot.dlogits = home_dlogits;
      slot.full = true;
    }
  } else if (t.kind == TaskKind::backward) {
    const Tensor& dy = st.last() ? l.dlogits : l.input;
    check(dy.defined(), "backward of shard " + std::to_string(st.shard) + " without d(output)");
    Tensor dx = model.backward(ctx, dy, l.stashes, st.begin, st.end);
    Backend& be = ctx.backend();
    if (t.fuse_update) {
      check(t.optimizer != nullptr, "backward with fused update but no optimizer");
      t.optimizer->step(l.params, ctx);
    } else {
      double squares = 0;
      for (Parameter* p : l.params)
        squares += be.sum_squares(p->grad, ctx);
      t.grad_squares = squares;
    }
    ctx.synchronize();
    t.compute_end = clock.now();
    t.store_start = t.compute_end;
    if (st.shard > 0) t.output = to_device(dx, home, copy, stored);
    if (t.fuse_update)
      resident.store_values_and_state(home, copy, stored);
    else
      resident.store_grads(copy, stored);
    copy.synchronize();
    st.stash_slot(t.micro_batch) = StashSlot{};
  } else {
    check(t.optimizer != nullptr, "update task without an optimizer");
    Backend& be = ctx.backend();
    if (t.grad_scale != 1.0)
      for (Parameter* p : l.params)
        be.scale(p->grad, t.grad_scale, ctx);
    t.optimizer->step(l.params, ctx);
    ctx.synchronize();
    t.compute_end = clock.now();
    t.store_start = t.compute_end;
    resident.store_values_and_state(home, copy, stored);
    copy.synchronize();
    resident.zero_home_grads();
  }
  copy.synchronize();
  t.store_bytes = stored;
  resident.commit();
}

}  // namespace hydra::actors
