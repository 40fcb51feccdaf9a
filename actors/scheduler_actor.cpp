#include "actors/scheduler_actor.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <vector>

#include "actors/messages.hpp"
#include "runtime/task_estimator.hpp"

namespace hydra::actors {

namespace {

struct DeviceSlot {
  caf::actor actor;
  int credits = 0;                  // tasks it asked for and has not been sent
  int inflight = 0;                 // tasks sent and not finished
  std::uint64_t last_dispatch = 0;  // dispatch counter value when it last got a task
  bool steal_pending = false;       // asked to give back a queued task
  TaskPtr hint;                     // the next task of a job it prefetches for (null: none)
  bool lost = false;                // its actor terminated
};

// Whether `t` is the task `hint` announced (same shard and kind: the same state to load).
bool same_work(const ShardTask& hint, const ShardTask& t) {
  return hint.state == t.state && hint.kind == t.kind &&
         (t.kind != TaskKind::backward || hint.fuse_update == t.fuse_update);
}

struct Waiting {
  TaskPtr task;
  caf::response_promise promise;
  int device = -1;  // the device it was sent to (-1: still in the ready queue)
  std::uint64_t ready_seq = 0;
};

struct SchedulerState {
  SchedulerConfig config;
  std::unique_ptr<SchedulingPolicy> policy;
  // Task-time estimates for the policy: each job is added when its first task arrives (FLOPs of
  // all its shards, its planned steps), training tasks' compute times refine them, and the speed
  // for tasks not measured yet is learnt from the measured ones.
  TaskEstimator estimates{1e10, estimator_options()};
  std::unordered_map<int, std::int64_t> steps_seen;  // per job: training steps done (estimates)
  std::vector<DeviceSlot> devices;
  std::vector<ReadyTask> ready;
  std::unordered_map<std::uint64_t, Waiting> waiting;  // submitted and not finished
  std::uint64_t next_id = 1, next_seq = 0, dispatches = 0;
  int devices_lost = 0;
  SchedulerStats stats;

  // Whether device d may run the ready task (JobSpec::device_affinity).
  static bool allowed(const ReadyTask& rt, int d) {
    return rt.device_affinity < 0 || rt.device_affinity == d;
  }
  bool any_pinned() const {
    for (const ReadyTask& rt : ready)
      if (rt.device_affinity >= 0) return true;
    return false;
  }
  // Whether device d may run some ready task.
  bool can_take(int d) const {
    for (const ReadyTask& rt : ready)
      if (allowed(rt, d)) return true;
    return false;
  }

  void dispatch(caf::event_based_actor* self) {
    while (!ready.empty()) {
      // With pinned tasks in the queue, only devices that may run one of the ready tasks count,
      // and the policy picks among the tasks the chosen device may run.
      const bool pinned = any_pinned();
      int best = -1;
      for (int d = 0; d < static_cast<int>(devices.size()); ++d) {
        const DeviceSlot& s = devices[d];
        if (!s.actor || s.credits <= 0) continue;
        if (pinned && !can_take(d)) continue;
        // Fewest tasks first (idle devices before lookahead slots); among equals the one that
        // got work least recently, so a lone job's tasks spread over the idle devices.
        // Among equals a device that prefetched a ready task comes first.
        if (best < 0 || s.inflight < devices[best].inflight) {
          best = d;
          continue;
        }
        if (s.inflight > devices[best].inflight) continue;
        const bool hit = holds_ready(s), best_hit = holds_ready(devices[best]);
        if ((hit && !best_hit) ||
            (hit == best_hit && s.last_dispatch < devices[best].last_dispatch))
          best = d;
      }
      if (best < 0) break;
      // A ready task whose state the device prefetched runs there (affinity); otherwise the
      // policy picks.
      std::size_t i = ready.size();
      if (devices[best].hint)
        for (std::size_t k = 0; k < ready.size(); ++k)
          if (allowed(ready[k], best) &&
              same_work(*devices[best].hint, *waiting.at(ready[k].id).task))
            i = k;
      if (i == ready.size()) i = pinned ? pick_allowed(best) : policy->pick(ready, best, estimates);
      const ReadyTask rt = ready.at(i);
      ready.erase(ready.begin() + static_cast<std::ptrdiff_t>(i));
      DeviceSlot& s = devices[best];
      if (s.inflight == 0)
        ++stats.dispatched_to_idle;
      else
        ++stats.dispatched_lookahead;
      Waiting& w = waiting.at(rt.id);
      w.device = best;
      withdraw_hints(self, best, *w.task);
      ++s.inflight;
      --s.credits;
      stats.max_inflight = std::max<std::uint64_t>(stats.max_inflight, s.inflight);
      s.last_dispatch = ++dispatches;
      self->send(s.actor, run_atom::value, w.task);
      announce_next(self, best, *w.task);
    }
    for (int d = 0; d < static_cast<int>(devices.size()); ++d)
      if (devices[d].actor && devices[d].inflight == 0 && can_take(d)) ++stats.idle_while_ready;
    if (ready.empty()) steal(self);
    // Without any device left, nothing can run: fail what waits instead of hanging.
    if (!ready.empty() && devices_lost > 0 && live_devices() == 0) {
      for (const ReadyTask& rt : ready)
        fail(rt.id, "no device left to run it");
      ready.clear();
    }
    // Likewise a task pinned to a device that terminated.
    if (!ready.empty() && devices_lost > 0) fail_orphans();
  }

  // Fails the ready tasks pinned (device_affinity) to a device whose actor terminated.
  void fail_orphans() {
    std::vector<ReadyTask> keep;
    for (const ReadyTask& rt : ready) {
      const int d = rt.device_affinity;
      if (d >= 0 && d < static_cast<int>(devices.size()) && devices[d].lost)
        fail(rt.id, "device " + std::to_string(d) + " of its device_affinity terminated");
      else
        keep.push_back(rt);
    }
    ready.swap(keep);
  }

  // The policy's pick among the ready tasks device d may run (at least one).
  std::size_t pick_allowed(int d) {
    std::vector<ReadyTask> sub;
    std::vector<std::size_t> index;
    for (std::size_t k = 0; k < ready.size(); ++k)
      if (allowed(ready[k], d)) {
        sub.push_back(ready[k]);
        index.push_back(k);
      }
    return index.at(policy->pick(sub, d, estimates));
  }

  static TaskEstimator::Options estimator_options() {
    TaskEstimator::Options o;
    o.learn_speed = true;
    return o;
  }

  // A task was submitted: add its job to the estimates, and count the steps it finished since.
  void note(const ShardTask& t) {
    const ShardState& st = *t.state;
    if (!estimates.has_job(st.job)) {
      std::vector<double> flops(static_cast<std::size_t>(std::max(1, st.num_shards)), 0.0);
      for (std::size_t i = 0; i < flops.size() && i < st.siblings.size(); ++i)
        if (auto sib = st.siblings[i].lock()) flops[i] = sib->forward_flops;
      if (static_cast<std::size_t>(st.shard) < flops.size())
        flops[static_cast<std::size_t>(st.shard)] = st.forward_flops;
      estimates.add_job(st.job, flops, std::max<std::int64_t>(0, st.total_steps));
      steps_seen[st.job] = 0;
    }
    if (!t.training) return;
    std::int64_t& seen = steps_seen[st.job];
    for (; seen < t.step; ++seen)
      estimates.step_done(st.job);
  }

  // A task finished after `seconds` of compute (evaluation forwards are not training forwards).
  void observe(const ShardTask& t, double seconds) {
    if (t.training && std::isfinite(seconds))
      estimates.record(t.state->job, t.state->shard, t.kind, std::max(0.0, seconds));
  }

  // Whether the device prefetched the state of a task in the ready queue.
  bool holds_ready(const DeviceSlot& s) const {
    if (!s.hint) return false;
    for (const ReadyTask& rt : ready)
      if (same_work(*s.hint, *waiting.at(rt.id).task)) return true;
    return false;
  }

  void drop_hint(caf::event_based_actor* self, DeviceSlot& s) {
    if (!s.hint) return;
    s.hint = nullptr;
    ++stats.prefetch_dropped;
    self->send(s.actor, drop_atom::value);
  }

  // Before `t` goes to device `dev`: a hint for t's shard elsewhere (or for another kind) is
  // withdrawn, as it would go stale (the task may change the shard's state) and must not be read
  // while t computes; dev's own hint for t is claimed; dev's hint for other work is withdrawn if
  // t takes dev's lookahead slot (the device then holds two shards: the running one and t).
  void withdraw_hints(caf::event_based_actor* self, int dev, const ShardTask& t) {
    for (int d = 0; d < static_cast<int>(devices.size()); ++d) {
      DeviceSlot& s = devices[d];
      if (!s.hint) continue;
      if (d == dev && same_work(*s.hint, t))
        s.hint = nullptr;  // claimed: the device uses the prefetched state
      else if (s.hint->state == t.state || (d == dev && s.inflight > 0))
        drop_hint(self, s);
    }
  }

  // The next task of t's job in the default training flow, when it belongs to another shard:
  // forward s+1 after forward s; after the last shard's forward (whose backward is the same
  // shard) the backward of the shard before it; backward s-1 after backward s.
  TaskPtr next_task(const ShardTask& t) const {
    const ShardState& st = *t.state;
    int shard = -1;
    TaskKind kind = TaskKind::forward;
    if (t.kind == TaskKind::forward) {
      if (st.shard + 1 < st.num_shards)
        shard = st.shard + 1;
      else if (t.training && st.shard >= 1)
        shard = st.shard - 1, kind = TaskKind::backward;
    } else if (t.kind == TaskKind::backward && st.shard >= 1) {
      shard = st.shard - 1, kind = TaskKind::backward;
    }
    if (shard < 0 || static_cast<std::size_t>(shard) >= st.siblings.size()) return nullptr;
    auto next = std::make_shared<ShardTask>();
    next->state = st.siblings[static_cast<std::size_t>(shard)].lock();
    if (!next->state) return nullptr;
    next->kind = kind;
    next->training = t.training;
    next->step = t.step;
    next->fuse_update = t.kind == TaskKind::backward ? t.fuse_update : next->state->fused_update;
    return next;
  }

  // t was just sent to device `dev`. If that is all dev holds, its lookahead slot is free: announce
  // the job's next shard task so dev loads that shard's state while t computes. Not while a task
  // of that shard is submitted (its state is in use) or another device prefetches it.
  void announce_next(caf::event_based_actor* self, int dev, const ShardTask& t) {
    DeviceSlot& s = devices[dev];
    if (s.hint || s.inflight != 1) return;
    TaskPtr next = next_task(t);
    if (!next || (next->state->device_affinity >= 0 && next->state->device_affinity != dev)) return;
    for (const auto& [id, w] : waiting)
      if (w.task->state == next->state) return;
    for (const DeviceSlot& o : devices)
      if (o.hint && o.hint->state == next->state) return;
    s.hint = next;
    ++stats.prefetch_hints;
    self->send(s.actor, prefetch_atom::value, next);
  }

  // A device is idle while another holds a task it has not started (its lookahead slot): ask
  // that device to give the task back so the idle one runs it now.
  void steal(caf::event_based_actor* self) {
    int idle = 0;
    for (const DeviceSlot& s : devices)
      idle += (s.actor && s.inflight == 0) ? 1 : 0;
    for (int d = 0; d < static_cast<int>(devices.size()); ++d) {
      DeviceSlot& s = devices[d];
      if (idle == 0) return;
      if (!s.actor || s.inflight < 2 || s.steal_pending || holds_pinned(d)) continue;
      s.steal_pending = true;
      ++stats.steal_attempts;
      self->send(s.actor, steal_atom::value);
      --idle;
    }
  }

  // Whether a task sent to device d is pinned there (whichever task it gave back could not run
  // on an idle device, so it is not asked for one).
  bool holds_pinned(int d) const {
    for (const auto& [id, w] : waiting)
      if (w.device == d && w.task->state->device_affinity >= 0) return true;
    return false;
  }

  void stolen(caf::event_based_actor* self, int device, TaskPtr t) {
    if (device < 0 || device >= static_cast<int>(devices.size())) return;
    DeviceSlot& s = devices[device];
    s.steal_pending = false;
    if (t) {
      auto it = waiting.find(t->id);
      if (it != waiting.end()) {
        --s.inflight;
        ++s.credits;
        ++stats.stolen;
        it->second.device = -1;
        ReadyTask rt;
        rt.id = t->id;
        rt.job = t->state->job;
        rt.shard = t->state->shard;
        rt.kind = t->kind;
        rt.ready_seq = it->second.ready_seq;
        rt.last_device = t->state->last_device;
        rt.device_affinity = t->state->device_affinity;
        ready.insert(ready.begin(), rt);
      }
    }
    dispatch(self);
  }

  int live_devices() const {
    int n = 0;
    for (const DeviceSlot& s : devices)
      n += s.actor ? 1 : 0;
    return n;
  }

  void fail(std::uint64_t id, const std::string& why) {
    auto it = waiting.find(id);
    if (it == waiting.end()) return;
    it->second.task->error = why;
    ++stats.completed;
    ++stats.failed;
    auto promise = std::move(it->second.promise);
    TaskPtr t = it->second.task;
    waiting.erase(it);
    promise.deliver(t);
  }

  // A device actor terminated. A remote device that lost its link (exit reason
  // remote_link_unreachable) changed no home state for the tasks it held: they go back to the
  // ready queue. Any other device should not terminate (tasks catch their errors): its tasks
  // fail. The others carry on without it; a device that pulls again with the same index later
  // (a node that rejoined) takes the slot back.
  void device_down(caf::event_based_actor* self, const caf::actor_addr& who,
                   const caf::error& reason) {
    const bool requeue = reason == caf::exit_reason::remote_link_unreachable;
    for (int d = 0; d < static_cast<int>(devices.size()); ++d) {
      if (!devices[d].actor || devices[d].actor.address() != who) continue;
      devices[d] = DeviceSlot{};
      devices[d].lost = true;
      ++devices_lost;
      std::vector<std::uint64_t> lost;
      for (const auto& [id, w] : waiting)
        if (w.device == d) lost.push_back(id);
      for (std::uint64_t id : lost) {
        if (!requeue) {
          fail(id, "device " + std::to_string(d) + " terminated: " + self->system().render(reason));
          continue;
        }
        Waiting& w = waiting.at(id);
        w.device = -1;
        ++stats.requeued;
        ReadyTask rt;
        rt.id = id;
        rt.job = w.task->state->job;
        rt.shard = w.task->state->shard;
        rt.kind = w.task->kind;
        rt.ready_seq = w.ready_seq;
        rt.last_device = w.task->state->last_device;
        rt.device_affinity = w.task->state->device_affinity;
        ready.insert(ready.begin(), rt);
      }
    }
    dispatch(self);
  }

  // A device finished t: counters, estimates, trace, and the answer to its submitter.
  void complete(const TaskPtr& t) {
    if (t->device >= 0 && t->device < static_cast<int>(devices.size()))
      --devices[t->device].inflight;
    ++stats.completed;
    if (!t->error.empty()) ++stats.failed;
    if (t->prefetched) ++stats.prefetched;
    if (t->prefetch_hit) ++stats.prefetch_hits;
    stats.oom_retries += static_cast<std::uint64_t>(t->oom_retries);
    if (t->error.empty()) {
      observe(*t, t->compute_end - t->compute_start);
      t->state->last_device = t->device;
    }
    record(*t);
    auto it = waiting.find(t->id);
    if (it != waiting.end()) {
      auto promise = std::move(it->second.promise);
      waiting.erase(it);
      promise.deliver(t);
    }
  }

  void record(const ShardTask& t) {
    Trace& trace = *config.trace;
    const std::string& job = t.state->job_name;
    const int shard = t.state->shard;
    if (t.prefetch_hit && t.prefetch_end > t.prefetch_start)
      trace.add(
          {t.device_name, job, shard, "load", t.prefetch_start, t.prefetch_end, t.prefetch_bytes});
    if (t.load_end > t.load_start)
      trace.add({t.device_name, job, shard, "load", t.load_start, t.load_end, t.load_bytes});
    const std::string kind = t.training ? task_kind_name(t.kind) : "eval";
    trace.add({t.device_name, job, shard, kind, t.compute_start, t.compute_end, 0});
    if (t.store_end > t.store_start && t.store_bytes > 0)
      trace.add({t.device_name, job, shard, "store", t.store_start, t.store_end, t.store_bytes});
  }
};

}  // namespace

caf::behavior scheduler_actor(caf::event_based_actor* self, SchedulerConfig config) {
  auto st = std::make_shared<SchedulerState>();
  st->policy = make_policy(config.policy, config.seed);
  st->stats.policy = st->policy->name();
  st->config = std::move(config);
  self->set_down_handler(
      [self, st](caf::down_msg& dm) { st->device_down(self, dm.source, dm.reason); });
  return {
      [self, st](submit_atom, TaskPtr& t) -> caf::result<TaskPtr> {
        auto rp = self->make_response_promise();
        t->id = st->next_id++;
        ++st->stats.submitted;
        st->note(*t);
        ReadyTask rt;
        rt.id = t->id;
        rt.job = t->state->job;
        rt.shard = t->state->shard;
        rt.kind = t->kind;
        rt.ready_seq = st->next_seq++;
        rt.last_device = t->state->last_device;
        rt.device_affinity = t->state->device_affinity;
        st->waiting.emplace(t->id, Waiting{t, rp, -1, rt.ready_seq});
        st->ready.push_back(rt);
        st->stats.max_ready = std::max<std::uint64_t>(st->stats.max_ready, st->ready.size());
        st->dispatch(self);
        return rp;
      },
      [self, st](pull_atom, int device, int slots) {
        if (device >= static_cast<int>(st->devices.size())) st->devices.resize(device + 1);
        DeviceSlot& s = st->devices[device];
        if (!s.actor) {
          s.actor = caf::actor_cast<caf::actor>(self->current_sender());
          self->monitor(s.actor);
        }
        s.credits += slots;
        st->dispatch(self);
      },
      [self, st](done_atom, TaskPtr& t) {
        st->complete(t);
        st->dispatch(self);
      },
      [self, st](done_atom, const DeviceOutboxPtr& box) {
        // A local device's finished tasks (in the order they finished) and the slots it grants.
        std::vector<TaskPtr> done;
        int credit = 0;
        {
          std::lock_guard lock(box->mutex);
          done.swap(box->done);
          credit = box->credit;
          box->credit = 0;
          box->posted = false;
        }
        ++st->stats.done_messages;
        st->stats.done_batched_tasks += done.size();
        for (TaskPtr& t : done)
          st->complete(t);
        if (box->device >= 0 && box->device < static_cast<int>(st->devices.size()) &&
            st->devices[box->device].actor)
          st->devices[box->device].credits += credit;
        st->dispatch(self);
      },
      [self, st](stolen_atom, int device, TaskPtr& t) { st->stolen(self, device, t); },
      [st](stats_atom) { return st->stats; },
  };
}

}  // namespace hydra::actors
