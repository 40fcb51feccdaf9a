#include "actors/device_actor.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
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
  bool overlapped = false;  // its load started on the copy thread while another task computed
  bool small = false;       // state below DeviceConfig::inline_load_bytes: not loaded ahead
  std::unique_ptr<LoadedShard> loaded;
  std::exception_ptr load_error;
};
using HeldPtr = std::shared_ptr<Held>;

// The state of a task's shard it loads (an estimate: parameters, gradients and optimizer state,
// input and labels). Read when the task reaches the device: no other task of the shard runs then.
std::size_t load_estimate(const ShardTask& t) {
  std::size_t n = t.state ? t.state->parameter_bytes() : 0;
  if (t.input.defined()) n += t.input.nbytes();
  if (t.labels.defined()) n += t.labels.nbytes();
  return n;
}

// A device's state and its threads. The actor's handlers (on CAF's workers) only queue work
// under `mutex`; the copy thread (`copier`) runs loads ahead and prefetches, the compute thread
// (`runner`) the kernels, one task at a time. All of them drive the same state machine: the copy
// thread hands a loaded task straight to the compute thread, the compute thread reports finished
// tasks to the scheduler itself (DeviceOutbox, batched) and starts the next queued task without a
// round trip through the actor, loading it first itself when nothing is being copied (a task
// reaching an idle device, or a small one). The members the threads use are declared before the
// engines, which are destroyed (joined) first.
class DeviceCore {
 public:
  DeviceCore(DeviceConfig cfg, caf::actor scheduler, std::shared_ptr<Trace> trace)
      : cfg_(std::move(cfg)),
        scheduler_(std::move(scheduler)),
        trace_(std::move(trace)),
        clock_(*trace_),
        capacity_(cfg_.slots),
        target_(cfg_.slots),
        copier_(cfg_.device) {
    outbox_->device = cfg_.index;
    // The compute thread creates the streams (a CUDA stream sets the creating thread's device).
    std::promise<void> started;
    auto ready = started.get_future();
    runner_ = std::thread([this, p = std::move(started)]() mutable { compute_loop(p); });
    try {
      ready.get();
    } catch (...) {
      runner_.join();
      throw;
    }
  }

  ~DeviceCore() {
    stop();
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    work_.notify_all();
    runner_.join();
  }
  DeviceCore(const DeviceCore&) = delete;
  DeviceCore& operator=(const DeviceCore&) = delete;

  // --- the actor's messages (CAF worker)
  void on_run(const TaskPtr& t) {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    auto h = std::make_shared<Held>();
    h->task = t;
    h->small = load_estimate(*t) < cfg_.inline_load_bytes;
    if (prefetch_ && same_work(*prefetch_->hint, *t)) {
      h->prefetch = std::move(prefetch_);
      prefetch_ = nullptr;
    }
    queue_.push_back(h);
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

  // The scheduler wants work back for an idle device: give the newest queued tasks whose state is
  // not being copied right now (half of them, at least one; a finished prefetch is dropped), one
  // stolen_atom each, or one with none (the scheduler's counts do not depend on whether they
  // reach it before or after completions in flight).
  void on_steal(caf::event_based_actor* self) {
    std::lock_guard lock(mutex_);
    std::size_t candidates = 0;
    for (const HeldPtr& h : queue_)
      candidates += (h->load_started && !h->load_done) ? 0 : 1;
    const std::size_t want = std::max<std::size_t>(1, candidates / 2);
    std::vector<TaskPtr> given;
    for (auto it = queue_.rbegin(); it != queue_.rend() && given.size() < want;) {
      HeldPtr h = *it;
      if (h->load_started && !h->load_done) {
        ++it;
        continue;
      }
      TaskPtr t = h->task;
      if (h->prefetch) h->prefetch->cancelled = true;  // freed on the copy thread
      t->load_start = t->load_end = 0;
      t->load_bytes = 0;
      clear_prefetch_hit(*t);
      given.push_back(std::move(t));
      it = std::make_reverse_iterator(queue_.erase(std::next(it).base()));
    }
    if (given.empty()) self->send(scheduler_, stolen_atom::value, cfg_.index, TaskPtr());
    for (TaskPtr& t : given)
      self->send(scheduler_, stolen_atom::value, cfg_.index, std::move(t));
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
      h.loaded = load_shard(t, cfg_.device, *copy_stream_, std::move(pre));
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
    h->overlapped = running_ != nullptr;
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
        p->loaded = prefetch_shard(*p->hint, cfg_.device, *copy_stream_);
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
    ShardTask& t = *h->task;
    t.device = cfg_.index;
    t.device_name = cfg_.name;
    t.prefetched = h->overlapped && !h->load_error;
    running_ = h;
    next_ = std::move(h);
    next_load_too_ = load_too;
    work_.notify_one();  // no system call unless the compute thread sleeps
  }

  // The compute thread: takes the task start_compute() handed it (the next queued task is handed
  // over by finished() on this same thread, so a busy device never sleeps between tasks).
  void compute_loop(std::promise<void>& started) {
    try {
      if (cfg_.device.is_cuda()) cuda::set_device(cfg_.device.index);
      compute_.emplace(cfg_.device);
      copy_stream_.emplace(cfg_.device);
    } catch (...) {
      started.set_exception(std::current_exception());
      return;
    }
    started.set_value();
    std::unique_lock lock(mutex_);
    for (;;) {
      work_.wait(lock, [this] { return next_ != nullptr || quit_; });
      if (!next_) return;
      HeldPtr h = std::move(next_);
      next_ = nullptr;
      const bool load_too = next_load_too_;
      lock.unlock();
      if (load_too) load(*h);
      const bool oom = compute(*h);
      const ShardTask& t = *h->task;
      const double busy = t.store_end - (load_too ? t.load_start : t.compute_start);
      lock.lock();
      if (finished(std::move(h), oom, busy, lock)) {
        // Outside the lock, so the actor's handlers do not wait for the message's delivery.
        lock.unlock();
        caf::anon_send(scheduler_, done_atom::value, outbox_);
        lock.lock();
      }
    }
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
      ExecContext ctx{cfg_.device, &*compute_};
      t.compute_start = clock_.now();
      execute_task(t, *h.loaded, ctx, *copy_stream_, clock_);
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

  // On the compute thread, after h computed (`busy`: seconds the compute thread spent on it):
  // after running out of memory, run it once more with the device to itself; else report it to
  // the scheduler with the slots it grants back, and start the next queued task (queued on this
  // same thread: no wake-up).
  // Returns whether the outbox needs a message to the scheduler (none on its way).
  bool finished(HeldPtr h, bool oom, double busy, std::unique_lock<std::mutex>& lock) {
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
      return false;
    }
    retrying_ = false;
    running_ = nullptr;
    // The device keeps no reference to the task once the scheduler may hand it back (the job may
    // end and release its shards' state right after).
    TaskPtr task = h->task;
    h.reset();
    note_task_time(busy);
    --capacity_;
    const int credit = std::max(0, target_ - capacity_);
    capacity_ += credit;
    const bool send = post(std::move(task), credit);
    if (stopping_) idle_.notify_all();
    advance();
    return send;
  }

  // Under the lock: the queue depth the device asks for, from the mean time of its recent tasks:
  // enough tasks queued to cover the dispatch latency (slots - 1 + latency / task time), within
  // [slots, max_slots]. Tasks of a millisecond or more keep `slots`.
  void note_task_time(double seconds) {
    seconds = std::max(seconds, 1e-7);
    mean_task_ = mean_task_ <= 0 ? seconds : 0.9 * mean_task_ + 0.1 * seconds;
    const int most = std::max(cfg_.slots, cfg_.max_slots);
    const double extra = std::ceil(cfg_.dispatch_latency / mean_task_);
    target_ =
        static_cast<int>(std::clamp(static_cast<double>(cfg_.slots - 1) + extra,
                                    static_cast<double>(cfg_.slots), static_cast<double>(most)));
  }

  // Hands a finished task and `credit` slots to the scheduler through the outbox. True when no
  // message naming the outbox is on its way: the caller sends one (the scheduler takes everything
  // appended until it reads the outbox).
  bool post(TaskPtr task, int credit) {
    std::lock_guard lock(outbox_->mutex);
    outbox_->done.push_back(std::move(task));
    outbox_->credit += credit;
    const bool send = !outbox_->posted;
    outbox_->posted = true;
    return send;
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

  // Under the lock: the front task computes if nothing does (loaded by then; or loaded first by
  // the compute thread when it has no prefetch and nothing is being copied, so no hand-off to the
  // copy thread), then the new front task's load starts ahead.
  void advance() {
    if (stopping_ || queue_.empty()) return;
    if (!running_) {
      HeldPtr h = queue_.front();
      if (!h->load_started && !h->prefetch && copy_pending_ == 0) {
        queue_.pop_front();
        h->load_started = h->load_done = true;
        start_compute(h, true);
      } else if (h->load_done) {
        queue_.pop_front();
        start_compute(h);
      }
    }
    load_ahead();
  }

  // Under the lock: loads stay at most one task ahead: only the front queued task is loaded
  // ahead, on the copy thread, unless its shard is in use (the running task's, or its state being
  // loaded) or it is small (the compute thread loads it when its turn comes).
  void load_ahead() {
    if (retrying_ || stopping_ || queue_.empty()) return;
    const HeldPtr& h = queue_.front();
    if (h->load_started || (h->small && running_ && !h->prefetch) || shard_busy(h)) return;
    start_load(h);
  }

  DeviceConfig cfg_;
  caf::actor scheduler_;
  std::shared_ptr<Trace> trace_;
  const Trace& clock_;
  std::optional<Stream> compute_, copy_stream_;
  DeviceOutboxPtr outbox_ = std::make_shared<DeviceOutbox>();
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
  // Slots the scheduler may fill (tasks held plus credit granted), the depth the device asks for
  // (note_task_time) and the mean compute-thread time of its recent tasks.
  int capacity_, target_;
  double mean_task_ = 0;
  // The compute thread's next task (start_compute), and the end of the device (quit_).
  std::condition_variable work_;
  HeldPtr next_;
  bool next_load_too_ = false;
  bool quit_ = false;
  // Destroyed first: finishes its queued work and is joined while the state above lives. The
  // compute thread is joined by the destructor.
  CopyEngine copier_;
  std::thread runner_;
};

}  // namespace

caf::behavior device_actor(caf::event_based_actor* self, DeviceConfig cfg, caf::actor scheduler,
                           std::shared_ptr<Trace> trace) {
  const int index = cfg.index, slots = cfg.slots;
  auto core = std::make_shared<DeviceCore>(std::move(cfg), scheduler, std::move(trace));
  self->send(scheduler, pull_atom::value, index, slots);
  // The core (its threads) ends with the behavior, when the actor quits for any reason.
  return {
      [core](run_atom, TaskPtr& t) { core->on_run(t); },
      [core](prefetch_atom, TaskPtr& hint) { core->on_prefetch(hint); },
      [core](drop_atom) { core->on_drop(); },
      [self, core](steal_atom) { core->on_steal(self); },
      [self, core](stop_atom) {
        core->stop();
        self->quit();
      },
  };
}

}  // namespace hydra::actors
