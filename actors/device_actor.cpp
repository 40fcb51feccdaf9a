#include "actors/device_actor.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "actors/copy_engine.hpp"
#include "actors/messages.hpp"
#include "actors/task_execution.hpp"
#include "kernels/core/cuda_api.hpp"
#include "kernels/core/stream.hpp"

namespace hydra::actors {

namespace {

// The state of a job's next shard, loaded ahead on a scheduler's hint before its task exists.
// `loaded` and `start` are only touched on the copy thread.
struct Prefetch {
  TaskPtr hint;  // shard, kind and fuse_update of the announced task
  std::unique_ptr<LoadedShard> loaded;
  double start = 0, end = 0;
  std::atomic<bool> cancelled{false};
};
using PrefetchPtr = std::shared_ptr<Prefetch>;

// The task's state was not (or no longer) loaded from a prefetch.
void clear_prefetch_hit(ShardTask& t) {
  t.prefetch_hit = false;
  t.prefetch_start = t.prefetch_end = 0;
  t.prefetch_bytes = 0;
}

bool same_work(const ShardTask& hint, const ShardTask& t) {
  return hint.state == t.state && hint.kind == t.kind &&
         (t.kind != TaskKind::backward || hint.fuse_update == t.fuse_update);
}

// A task held by the device, from receipt to completion.
struct Held {
  TaskPtr task;
  PrefetchPtr prefetch;  // its shard's state loaded ahead (claimed on the copy thread)
  bool load_started = false, load_done = false;
  bool overlapped = false;  // its load started while another task was computing or queued
  std::unique_ptr<LoadedShard> loaded;
  std::exception_ptr load_error;
};
using HeldPtr = std::shared_ptr<Held>;

// A device's state and its three threads. The actor's thread handles the scheduler's messages;
// the copy thread (`copier`) runs loads and prefetches, the compute thread (`runner`) the
// kernels, one task at a time. All three drive the same state machine under `mutex`: the copy
// thread hands a loaded task straight to the compute thread, the compute thread reports `done`
// to the scheduler itself and starts the next loaded task without a round trip through the
// actor's thread, and a task that reaches an idle device with nothing in flight on the copy
// thread is loaded and computed by the compute thread in one go. The members the threads use
// are declared before the engines, which are destroyed (joined) first.
class DeviceCore {
 public:
  DeviceCore(DeviceConfig cfg, caf::actor me, caf::actor scheduler, const Trace& clock)
      : cfg_(std::move(cfg)),
        me_(std::move(me)),
        scheduler_(std::move(scheduler)),
        clock_(clock),
        compute_(cfg_.device),
        copy_stream_(cfg_.device),
        runner_(cfg_.device),
        copier_(cfg_.device) {}

  ~DeviceCore() { stop(); }  // also when the actor's thread leaves by an exception
  DeviceCore(const DeviceCore&) = delete;
  DeviceCore& operator=(const DeviceCore&) = delete;

  // --- the actor's messages (actor thread)
  void on_run(const TaskPtr& t) {
    std::lock_guard lock(mutex_);
    auto h = std::make_shared<Held>();
    h->task = t;
    h->overlapped = running_ != nullptr || !queue_.empty();
    if (prefetch_ && same_work(*prefetch_->hint, *t)) {
      h->prefetch = std::move(prefetch_);
      prefetch_ = nullptr;
    }
    if (!running_ && queue_.empty() && !h->prefetch && copy_pending_ == 0) {
      // Idle and nothing being copied: nothing to overlap, so the compute thread loads it too.
      h->load_started = h->load_done = true;
      start_compute(h, true);
      return;
    }
    queue_.push_back(h);
    if (!retrying_ && !shard_busy(h)) start_load(h);
    advance();
  }

  void on_prefetch(const TaskPtr& hint) {
    // The scheduler announces the next task of a job this device runs: load its shard's state
    // into the lookahead slot (the scheduler withdraws the hint with drop_atom before it puts
    // another task there).
    std::lock_guard lock(mutex_);
    cancel_prefetch();
    if (!stopping_ && !retrying_) start_prefetch(hint);
  }

  void on_drop() {
    std::lock_guard lock(mutex_);
    cancel_prefetch();
  }

  // The scheduler wants a task back for an idle device: give the newest queued one whose state
  // is not being copied right now (a finished prefetch is dropped). The answer is sent under the
  // lock, so it reaches the scheduler in order with the compute thread's `done` messages.
  void on_steal() {
    std::lock_guard lock(mutex_);
    TaskPtr given;
    for (auto it = queue_.rbegin(); it != queue_.rend(); ++it) {
      HeldPtr h = *it;
      if (h->load_started && !h->load_done) continue;
      given = h->task;
      if (h->prefetch) h->prefetch->cancelled = true;  // freed on the copy thread
      given->load_start = given->load_end = 0;
      given->load_bytes = 0;
      clear_prefetch_hit(*given);
      queue_.erase(std::next(it).base());
      break;
    }
    caf::send_as(me_, scheduler_, stolen_atom::value, cfg_.index, given);
    advance();
  }

  // Tasks still held are abandoned (the run is over); waits for the running one to finish, so
  // nothing submits to an engine once they are destroyed.
  void stop() {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    queue_.clear();
    idle_.wait(lock, [this] { return running_ == nullptr; });
  }

 private:
  // Runs `fn` on the copy thread; `copy_pending_` counts the jobs not finished yet.
  template <class F>
  auto on_copier(F fn) {
    ++copy_pending_;
    return copier_.submit([this, fn = std::move(fn)]() mutable {
      fn();
      --copy_pending_;
    });
  }

  // Loads h's state (copy thread, or compute thread for a task that found the device idle).
  void load(Held& h) {
    ShardTask& t = *h.task;
    t.load_start = clock_.now();
    std::unique_ptr<LoadedShard> pre;
    clear_prefetch_hit(t);
    if (h.prefetch) {
      pre = std::move(h.prefetch->loaded);
      if (pre) {
        t.prefetch_hit = true;
        t.prefetch_start = h.prefetch->start;
        t.prefetch_end = h.prefetch->end;
        t.prefetch_bytes = pre->bytes;
      }
      h.prefetch.reset();
    }
    try {
      h.loaded = load_shard(t, cfg_.device, copy_stream_, std::move(pre));
      h.loaded->ready->synchronize();
      if (!h.loaded->prefetched) clear_prefetch_hit(t);  // not usable: everything was loaded now
      t.load_bytes = h.loaded->bytes - t.prefetch_bytes;
    } catch (...) {
      h.load_error = std::current_exception();
      h.loaded.reset();
    }
    t.load_end = clock_.now();
  }

  void start_load(const HeldPtr& h) {
    h->load_started = true;
    on_copier([this, h = HeldPtr(h)]() mutable {
      load(*h);
      std::lock_guard lock(mutex_);
      if (h->load_started) h->load_done = true;  // (given back or abandoned: no longer queued)
      advance();
      h.reset();  // under the lock: before the compute thread can report the task done
    });
  }

  // Loads the hinted shard's state on the copy thread, after the loads queued before it.
  void start_prefetch(const TaskPtr& hint) {
    auto p = std::make_shared<Prefetch>();
    p->hint = hint;
    prefetch_ = p;
    on_copier([p, this] {
      if (p->cancelled) return;
      p->start = clock_.now();
      try {
        p->loaded = prefetch_shard(*p->hint, cfg_.device, copy_stream_);
      } catch (...) {
        p->loaded.reset();  // out of memory: the task loads everything when it runs
      }
      p->end = clock_.now();
      if (p->cancelled) p->loaded.reset();
    });
  }

  // Frees the unclaimed prefetch on the copy thread (after its load); the future tells when.
  std::optional<std::future<void>> cancel_prefetch() {
    if (!prefetch_) return std::nullopt;
    PrefetchPtr p = std::move(prefetch_);
    prefetch_ = nullptr;
    p->cancelled = true;
    return on_copier([p] { p->loaded.reset(); });
  }

  bool shard_busy(const HeldPtr& h) const {
    if (running_ && running_->task->state == h->task->state) return true;
    for (const HeldPtr& q : queue_)
      if (q != h && q->load_started && q->task->state == h->task->state) return true;
    return false;
  }

  // Under the lock: h becomes the running task and goes to the compute thread (`load_too`: it
  // was not loaded yet; the compute thread loads it first).
  void start_compute(HeldPtr h, bool load_too = false) {
    running_ = h;
    ShardTask& t = *h->task;
    t.device = cfg_.index;
    t.device_name = cfg_.name;
    t.prefetched = h->overlapped && !h->load_error;
    runner_.submit([this, h, load_too]() mutable {
      if (load_too) load(*h);
      const bool oom = compute(*h);
      finished(std::move(h), oom);
    });
  }

  // Computes h on the compute thread; true if it ran out of device memory.
  bool compute(Held& h) {
    ShardTask& t = *h.task;
    bool oom = false;
    try {
      if (h.load_error) {
        try {
          std::rethrow_exception(h.load_error);
        } catch (const OutOfMemory&) {
          // Loaded while another task held memory: load everything again now that it is freed.
          h.load_error = nullptr;
          ++t.oom_retries;
          h.prefetch.reset();
          load(h);
          if (h.load_error) std::rethrow_exception(h.load_error);
        }
      }
      ExecContext ctx{cfg_.device, &compute_};
      t.compute_start = clock_.now();
      execute_task(t, *h.loaded, ctx, copy_stream_, clock_);
      t.store_end = clock_.now();
    } catch (const OutOfMemory& e) {
      oom = true;
      t.error = e.what();
    } catch (const std::exception& e) {
      t.error = e.what();
    }
    if (!t.error.empty()) {
      if (t.compute_start <= 0) t.compute_start = clock_.now();
      t.compute_end = t.store_start = t.store_end = clock_.now();
    }
    h.loaded.reset();  // frees the device copies
    return oom;
  }

  // On the compute thread, after h computed: after running out of memory, run it once more with
  // the device to itself; else report it to the scheduler and start the next loaded task (queued
  // on this same thread: no wake-up).
  void finished(HeldPtr h, bool oom) {
    std::unique_lock lock(mutex_);
    if (oom && !retrying_ && !stopping_) {
      // Out of memory, perhaps while other tasks' state was on the device (or being loaded): it
      // fails only if it does not fit alone. `running_` stays h, so nothing else computes, and
      // `retrying_` keeps loads and prefetches from starting until it ends.
      retrying_ = true;
      free_other_memory(lock);
      ShardTask& t = *h->task;
      t.error.clear();
      t.compute_start = t.compute_end = t.store_start = t.store_end = 0;
      h->load_error = std::make_exception_ptr(OutOfMemory(cfg_.name, 0, 0, 0));
      start_compute(h);
      return;
    }
    retrying_ = false;
    running_ = nullptr;
    // The device keeps no reference to the task once the scheduler may hand it back (the job may
    // end and release its shards' state right after).
    TaskPtr task = h->task;
    h.reset();
    caf::send_as(me_, scheduler_, done_atom::value, std::move(task));
    caf::send_as(me_, scheduler_, pull_atom::value, cfg_.index, 1);
    if (stopping_) idle_.notify_all();
    advance();
  }

  // Frees every device copy the device holds besides the running task's (queued tasks' loads,
  // finished or in progress, claimed and unclaimed prefetches), so the running task can be retried
  // alone. The freed tasks load again when their turn comes. Waits (without the lock: the copy
  // thread takes it when a load ends) for the copy thread, where device copies are touched, to
  // free them after the loads queued before.
  void free_other_memory(std::unique_lock<std::mutex>& lock) {
    std::vector<HeldPtr> held(queue_.begin(), queue_.end());
    PrefetchPtr unclaimed = std::move(prefetch_);
    prefetch_ = nullptr;
    if (unclaimed) unclaimed->cancelled = true;
    auto freed = on_copier([held, unclaimed] {
      if (unclaimed) unclaimed->loaded.reset();
      for (const HeldPtr& q : held) {
        q->loaded.reset();
        if (q->prefetch) q->prefetch->loaded.reset();
      }
    });
    lock.unlock();
    freed.wait();
    lock.lock();
    // No load started since (`retrying_`), and the ones queued before have ended.
    for (const HeldPtr& q : held) {
      q->load_started = q->load_done = false;
      q->overlapped = false;
      q->load_error = nullptr;
    }
  }

  // Under the lock: the front task computes next if it is loaded; its load starts if its shard
  // is free.
  void advance() {
    if (running_ || queue_.empty() || stopping_) return;
    HeldPtr h = queue_.front();
    if (!h->load_started) {
      if (shard_busy(h)) return;
      start_load(h);
    }
    if (!h->load_done) return;  // the copy thread calls advance() when it is
    queue_.pop_front();
    start_compute(h);
  }

  DeviceConfig cfg_;
  caf::actor me_, scheduler_;
  const Trace& clock_;
  Stream compute_, copy_stream_;
  std::mutex mutex_;
  std::condition_variable idle_;  // stop() waits for the running task
  std::deque<HeldPtr> queue_;     // received, not yet computing
  HeldPtr running_;               // computing
  // The running task ran out of memory and runs again with the device to itself: no other load
  // or prefetch starts until it ends.
  bool retrying_ = false;
  bool stopping_ = false;
  PrefetchPtr prefetch_;  // hinted by the scheduler, not claimed by a task yet
  std::atomic<int> copy_pending_{0};
  // Destroyed first: each finishes its queued work and is joined while the state above lives.
  CopyEngine runner_, copier_;
};

}  // namespace

void device_actor(caf::blocking_actor* self, DeviceConfig cfg, caf::actor scheduler,
                  std::shared_ptr<Trace> trace) {
  if (cfg.device.is_cuda()) cuda::set_device(cfg.device.index);
  const int index = cfg.index, slots = cfg.slots;
  DeviceCore core(std::move(cfg), caf::actor_cast<caf::actor>(self), scheduler, *trace);
  self->send(scheduler, pull_atom::value, index, slots);
  bool stopping = false;
  self->receive_while([&] { return !stopping; })(
      [&](run_atom, TaskPtr& t) { core.on_run(t); },
      [&](prefetch_atom, TaskPtr& hint) { core.on_prefetch(hint); },
      [&](drop_atom) { core.on_drop(); }, [&](steal_atom) { core.on_steal(); },
      [&](stop_atom) { stopping = true; });
  core.stop();
}

}  // namespace hydra::actors
