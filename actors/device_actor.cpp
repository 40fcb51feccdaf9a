#include "actors/device_actor.hpp"

#include <chrono>
#include <deque>
#include <future>

#include "actors/copy_engine.hpp"
#include "actors/messages.hpp"
#include "actors/task_execution.hpp"
#include "kernels/core/cuda_api.hpp"
#include "kernels/core/stream.hpp"

namespace hydra::actors {

namespace {

struct Pending {
  TaskPtr task;
  std::future<std::unique_ptr<LoadedShard>> loaded;  // invalid: load when it runs
};

}  // namespace

void device_actor(caf::blocking_actor* self, DeviceConfig cfg, caf::actor scheduler,
                  std::shared_ptr<Trace> trace) {
  if (cfg.device.is_cuda()) cuda::set_device(cfg.device.index);
  Stream compute(cfg.device), copy_stream(cfg.device);
  CopyEngine copier(cfg.device);
  const Trace& clock = *trace;

  auto start_load = [&](Pending& p) {
    TaskPtr t = p.task;
    p.loaded = copier.submit([t, &cfg, &copy_stream, &clock] {
      t->load_start = clock.now();
      auto l = load_shard(*t, cfg.device, copy_stream);
      l->ready->synchronize();
      t->load_end = clock.now();
      t->load_bytes = l->bytes;
      return l;
    });
  };

  std::deque<Pending> queue;
  bool running = true;
  auto on_task = [&](run_atom, TaskPtr& t) {
    Pending p{t, {}};
    // Prefetch, unless the same shard is already queued (its state is about to change).
    bool same_shard = false;
    for (const Pending& q : queue)
      same_shard = same_shard || q.task->state == t->state;
    if (!same_shard) start_load(p);
    queue.push_back(std::move(p));
  };
  auto on_stop = [&](stop_atom) { running = false; };

  self->send(scheduler, pull_atom::value, cfg.index, cfg.slots);
  while (running) {
    if (queue.empty()) {
      self->receive(on_task, on_stop);
    } else {
      bool got = true;
      while (got && running) {
        got = false;
        self->receive([&](run_atom a, TaskPtr& t) { on_task(a, t), got = true; }, on_stop,
                      caf::after(std::chrono::seconds(0)) >> [] {});
      }
    }
    if (!running || queue.empty()) continue;
    Pending cur = std::move(queue.front());
    queue.pop_front();
    TaskPtr t = cur.task;
    t->device = cfg.index;
    t->device_name = cfg.name;
    t->prefetched = cur.loaded.valid() &&
                    cur.loaded.wait_for(std::chrono::seconds(0)) == std::future_status::ready &&
                    t->load_end > 0;
    std::unique_ptr<LoadedShard> loaded;
    auto load_now = [&] {
      t->load_start = clock.now();
      loaded = load_shard(*t, cfg.device, copy_stream);
      loaded->ready->synchronize();
      t->load_end = clock.now();
      t->load_bytes = loaded->bytes;
    };
    // The next task's prefetched state uses memory this task may need; give it back and reload
    // it later.
    auto drop_prefetch = [&]() -> bool {
      if (queue.empty() || !queue.front().loaded.valid()) return false;
      try {
        queue.front().loaded.get();
      } catch (...) {
      }
      queue.front().loaded = {};
      return true;
    };
    try {
      if (cur.loaded.valid()) {
        try {
          loaded = cur.loaded.get();
        } catch (const OutOfMemory&) {
          // Loaded while the previous task held memory: try again now that it is freed.
          t->prefetched = false;
          load_now();
        }
      } else {
        load_now();
      }
      for (int attempt = 0;; ++attempt) {
        ExecContext ctx{cfg.device, &compute};
        t->compute_start = clock.now();
        try {
          execute_task(*t, *loaded, ctx, copy_stream, clock);
          t->store_end = clock.now();
          break;
        } catch (const OutOfMemory&) {
          if (attempt > 0 || !drop_prefetch()) throw;
        }
      }
    } catch (const std::exception& e) {
      t->error = e.what();
      if (t->compute_start == 0) t->compute_start = clock.now();
      t->compute_end = t->store_start = t->store_end = clock.now();
    }
    loaded.reset();  // frees the device copies
    if (!queue.empty() && !queue.front().loaded.valid()) {
      bool same_shard = queue.front().task->state == t->state;
      if (!same_shard) start_load(queue.front());
    }
    self->send(scheduler, done_atom::value, t);
    self->send(scheduler, pull_atom::value, cfg.index, 1);
  }
  // Let any load still queued on the helper thread finish before the streams go away.
  for (Pending& p : queue)
    if (p.loaded.valid()) p.loaded.wait();
}

}  // namespace hydra::actors
