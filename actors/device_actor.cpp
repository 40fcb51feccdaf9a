#include "actors/device_actor.hpp"

#include <atomic>
#include <deque>
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

}  // namespace

// The actor's own thread only handles messages, so a task that arrives while another computes is
// loaded at once: the loads run on the copy thread (`copier`), the kernels on the compute thread
// (`runner`), one task at a time, and both report back to the actor by message.
void device_actor(caf::blocking_actor* self, DeviceConfig cfg, caf::actor scheduler,
                  std::shared_ptr<Trace> trace) {
  if (cfg.device.is_cuda()) cuda::set_device(cfg.device.index);
  Stream compute(cfg.device), copy_stream(cfg.device);
  const Trace& clock = *trace;
  caf::actor me = caf::actor_cast<caf::actor>(self);
  std::deque<HeldPtr> queue;  // received, not yet computing
  HeldPtr running;            // computing
  // The running task ran out of memory and runs again with the device to itself: no other load
  // or prefetch starts until it ends.
  bool retrying = false;
  CopyEngine copier(cfg.device), runner(cfg.device);
  PrefetchPtr prefetch;  // hinted by the scheduler, not claimed by a task yet

  auto start_load = [&](const HeldPtr& h) {
    h->load_started = true;
    copier.submit([h, me, &cfg, &copy_stream, &clock] {
      ShardTask& t = *h->task;
      t.load_start = clock.now();
      std::unique_ptr<LoadedShard> pre;
      t.prefetch_hit = false;
      t.prefetch_start = t.prefetch_end = 0;
      t.prefetch_bytes = 0;
      if (h->prefetch) {
        pre = std::move(h->prefetch->loaded);
        if (pre) {
          t.prefetch_hit = true;
          t.prefetch_start = h->prefetch->start;
          t.prefetch_end = h->prefetch->end;
          t.prefetch_bytes = pre->bytes;
        }
        h->prefetch.reset();
      }
      try {
        h->loaded = load_shard(t, cfg.device, copy_stream, std::move(pre));
        h->loaded->ready->synchronize();
        if (!h->loaded->prefetched) {  // not usable: everything was loaded now
          t.prefetch_hit = false;
          t.prefetch_start = t.prefetch_end = 0;
          t.prefetch_bytes = 0;
        }
        t.load_bytes = h->loaded->bytes - t.prefetch_bytes;
      } catch (...) {
        h->load_error = std::current_exception();
        h->loaded.reset();
      }
      t.load_end = clock.now();
      caf::anon_send(me, loaded_atom::value, t.id);
    });
  };
  // Loads the hinted shard's state on the copy thread, after the loads queued before it.
  auto start_prefetch = [&](const TaskPtr& hint) {
    auto p = std::make_shared<Prefetch>();
    p->hint = hint;
    prefetch = p;
    copier.submit([p, &cfg, &copy_stream, &clock] {
      if (p->cancelled) return;
      p->start = clock.now();
      try {
        p->loaded = prefetch_shard(*p->hint, cfg.device, copy_stream);
      } catch (...) {
        p->loaded.reset();  // out of memory: the task loads everything when it runs
      }
      p->end = clock.now();
      if (p->cancelled) p->loaded.reset();
    });
  };
  // Frees the unclaimed prefetch on the copy thread (after its load); `wait`: before returning.
  auto cancel_prefetch = [&](bool wait) -> bool {
    if (!prefetch) return false;
    PrefetchPtr p = std::move(prefetch);
    prefetch = nullptr;
    p->cancelled = true;
    auto done = copier.submit([p] { p->loaded.reset(); });
    if (wait) done.wait();
    return true;
  };
  auto shard_busy = [&](const HeldPtr& h) {
    if (running && running->task->state == h->task->state) return true;
    for (const HeldPtr& q : queue)
      if (q != h && q->load_started && q->task->state == h->task->state) return true;
    return false;
  };
  auto start_compute = [&](HeldPtr h) {
    running = h;
    ShardTask& t = *h->task;
    t.device = cfg.index;
    t.device_name = cfg.name;
    t.prefetched = h->overlapped && !h->load_error;
    runner.submit([h, me, &cfg, &compute, &copy_stream, &clock] {
      ShardTask& t = *h->task;
      bool oom = false;
      try {
        if (h->load_error) {
          try {
            std::rethrow_exception(h->load_error);
          } catch (const OutOfMemory&) {
            // Loaded while another task held memory: load again now that it is freed.
            h->load_error = nullptr;
            ++t.oom_retries;
            t.prefetch_hit = false;  // whatever was prefetched is loaded again
            t.prefetch_start = t.prefetch_end = 0;
            t.prefetch_bytes = 0;
            t.load_start = clock.now();
            h->loaded = load_shard(t, cfg.device, copy_stream);
            h->loaded->ready->synchronize();
            t.load_bytes = h->loaded->bytes;
            t.load_end = clock.now();
          }
        }
        ExecContext ctx{cfg.device, &compute};
        t.compute_start = clock.now();
        execute_task(t, *h->loaded, ctx, copy_stream, clock);
        t.store_end = clock.now();
      } catch (const OutOfMemory& e) {
        oom = true;
        t.error = e.what();
      } catch (const std::exception& e) {
        t.error = e.what();
      }
      if (!t.error.empty()) {
        if (t.compute_start <= 0) t.compute_start = clock.now();
        t.compute_end = t.store_start = t.store_end = clock.now();
      }
      h->loaded.reset();  // frees the device copies
      caf::anon_send(me, computed_atom::value, oom);
    });
  };
  auto advance = [&] {
    if (running || queue.empty()) return;
    HeldPtr h = queue.front();
    if (!h->load_started) {
      if (shard_busy(h)) return;
      start_load(h);
    }
    if (!h->load_done) return;  // loaded_atom comes back
    queue.pop_front();
    start_compute(h);
  };
  // Frees every device copy the device holds besides the running task's (queued tasks' loads,
  // finished or in progress, claimed and unclaimed prefetches), so the running task can be retried
  // alone after running out of memory. The freed tasks load again when their turn comes.
  auto free_other_memory = [&] {
    std::vector<HeldPtr> held(queue.begin(), queue.end());
    PrefetchPtr unclaimed = std::move(prefetch);
    prefetch = nullptr;
    if (unclaimed) unclaimed->cancelled = true;
    // On the copy thread, after the loads queued before (device copies are only touched there).
    copier
        .submit([&held, unclaimed] {
          if (unclaimed) unclaimed->loaded.reset();
          for (const HeldPtr& h : held) {
            h->loaded.reset();
            if (h->prefetch) h->prefetch->loaded.reset();
          }
        })
        .wait();
    // Their loaded_atom messages, if still in the mailbox, find load_started false and are
    // ignored; no load starts again before the retried task ends (`retrying`).
    for (const HeldPtr& h : held) {
      h->load_started = h->load_done = false;
      h->overlapped = false;
      h->load_error = nullptr;
    }
  };

  self->send(scheduler, pull_atom::value, cfg.index, cfg.slots);
  bool stopping = false;
  self->receive_while([&] { return !stopping || running || !queue.empty(); })(
      [&](run_atom, TaskPtr& t) {
        auto h = std::make_shared<Held>();
        h->task = t;
        h->overlapped = running != nullptr || !queue.empty();
        if (prefetch && same_work(*prefetch->hint, *t)) {
          h->prefetch = std::move(prefetch);
          prefetch = nullptr;
        }
        queue.push_back(h);
        if (!retrying && !shard_busy(h)) start_load(h);
        advance();
      },
      [&](loaded_atom, std::uint64_t id) {
        for (const HeldPtr& q : queue)
          if (q->task->id == id && q->load_started) q->load_done = true;
        advance();
      },
      [&](computed_atom, bool oom) {
        HeldPtr h = std::move(running);
        running = nullptr;
        if (oom && !retrying) {
          // Out of memory, perhaps while other tasks' state was on the device (or being loaded):
          // run it once more with the device to itself; it fails only if it does not fit alone.
          free_other_memory();
          ShardTask& t = *h->task;
          t.error.clear();
          t.compute_start = t.compute_end = t.store_start = t.store_end = 0;
          h->load_error = std::make_exception_ptr(OutOfMemory(cfg.name, 0, 0, 0));
          retrying = true;
          start_compute(h);
          return;
        }
        retrying = false;
        self->send(scheduler, done_atom::value, h->task);
        self->send(scheduler, pull_atom::value, cfg.index, 1);
        advance();
      },
      [&](prefetch_atom, TaskPtr& hint) {
        // The scheduler announces the next task of a job this device runs: load its shard's
        // state into the lookahead slot (the scheduler withdraws the hint with drop_atom before
        // it puts another task there).
        cancel_prefetch(false);
        if (!stopping && !retrying) start_prefetch(hint);
      },
      [&](drop_atom) { cancel_prefetch(false); },
      [&](steal_atom) {
        // The scheduler wants a task back for an idle device: give the newest queued one whose
        // state is not being copied right now (a finished prefetch is dropped).
        TaskPtr given;
        for (auto it = queue.rbegin(); it != queue.rend(); ++it) {
          HeldPtr h = *it;
          if (h->load_started && !h->load_done) continue;
          given = h->task;
          if (h->prefetch) h->prefetch->cancelled = true;  // freed on the copy thread
          given->load_start = given->load_end = 0;
          given->load_bytes = 0;
          given->prefetch_hit = false;
          given->prefetch_start = given->prefetch_end = 0;
          given->prefetch_bytes = 0;
          queue.erase(std::next(it).base());
          break;
        }
        self->send(scheduler, stolen_atom::value, cfg.index, given);
        advance();
      },
      [&](stop_atom) {
        // Tasks still held are abandoned: the run is over.
        stopping = true;
        queue.clear();
      });
  // The engines finish their queued work (and are joined) before the streams go away.
}

}  // namespace hydra::actors
