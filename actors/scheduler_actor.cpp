#include "actors/scheduler_actor.hpp"

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "actors/messages.hpp"
#include "actors/task_estimates.hpp"

namespace hydra::actors {

namespace {

struct DeviceSlot {
  caf::actor actor;
  int credits = 0;                  // tasks it asked for and has not been sent
  int inflight = 0;                 // tasks sent and not finished
  std::uint64_t last_dispatch = 0;  // dispatch counter value when it last got a task
  bool steal_pending = false;       // asked to give back a queued task
};

struct Waiting {
  TaskPtr task;
  caf::response_promise promise;
  int device = -1;  // the device it was sent to (-1: still in the ready queue)
  std::uint64_t ready_seq = 0;
};

struct SchedulerState {
  SchedulerConfig config;
  std::unique_ptr<SchedulingPolicy> policy;
  MeasuredEstimates estimates;
  std::vector<DeviceSlot> devices;
  std::vector<ReadyTask> ready;
  std::unordered_map<std::uint64_t, Waiting> waiting;  // submitted and not finished
  std::uint64_t next_id = 1, next_seq = 0, dispatches = 0;
  int devices_lost = 0;
  SchedulerStats stats;

  void dispatch(caf::event_based_actor* self) {
    while (!ready.empty()) {
      int best = -1;
      for (int d = 0; d < static_cast<int>(devices.size()); ++d) {
        const DeviceSlot& s = devices[d];
        if (!s.actor || s.credits <= 0) continue;
        // Fewest tasks first (idle devices before lookahead slots); among equals the one that
        // got work least recently, so a lone job's tasks spread over the idle devices.
        if (best < 0 || s.inflight < devices[best].inflight ||
            (s.inflight == devices[best].inflight && s.last_dispatch < devices[best].last_dispatch))
          best = d;
      }
      if (best < 0) break;
      const std::size_t i = policy->pick(ready, best, estimates);
      const ReadyTask rt = ready.at(i);
      ready.erase(ready.begin() + static_cast<std::ptrdiff_t>(i));
      DeviceSlot& s = devices[best];
      if (s.inflight == 0)
        ++stats.dispatched_to_idle;
      else
        ++stats.dispatched_lookahead;
      ++s.inflight;
      --s.credits;
      s.last_dispatch = ++dispatches;
      Waiting& w = waiting.at(rt.id);
      w.device = best;
      self->send(s.actor, run_atom::value, w.task);
    }
    for (const DeviceSlot& s : devices)
      if (s.actor && s.inflight == 0 && !ready.empty()) ++stats.idle_while_ready;
    if (ready.empty()) steal(self);
    // Without any device left, nothing can run: fail what waits instead of hanging.
    if (!ready.empty() && devices_lost > 0 && live_devices() == 0) {
      for (const ReadyTask& rt : ready)
        fail(rt.id, "no device left to run it");
      ready.clear();
    }
  }

  // A device is idle while another holds a task it has not started (its lookahead slot): ask
  // that device to give the task back so the idle one runs it now.
  void steal(caf::event_based_actor* self) {
    int idle = 0;
    for (const DeviceSlot& s : devices)
      idle += (s.actor && s.inflight == 0) ? 1 : 0;
    for (DeviceSlot& s : devices) {
      if (idle == 0) return;
      if (!s.actor || s.inflight < 2 || s.steal_pending) continue;
      s.steal_pending = true;
      ++stats.steal_attempts;
      self->send(s.actor, steal_atom::value);
      --idle;
    }
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

  // A device actor terminated (it should not: tasks catch their errors): its tasks fail, the
  // others carry on without it.
  void device_down(caf::event_based_actor* self, const caf::actor_addr& who,
                   const std::string& reason) {
    for (int d = 0; d < static_cast<int>(devices.size()); ++d) {
      if (!devices[d].actor || devices[d].actor.address() != who) continue;
      devices[d] = DeviceSlot{};
      ++devices_lost;
      std::vector<std::uint64_t> lost;
      for (const auto& [id, w] : waiting)
        if (w.device == d) lost.push_back(id);
      for (std::uint64_t id : lost)
        fail(id, "device " + std::to_string(d) + " terminated: " + reason);
    }
    dispatch(self);
  }

  void record(const ShardTask& t) {
    Trace& trace = *config.trace;
    const std::string& job = t.state->job_name;
    const int shard = t.state->shard;
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
  self->set_down_handler([self, st](caf::down_msg& dm) {
    st->device_down(self, dm.source, self->system().render(dm.reason));
  });
  return {
      [self, st](submit_atom, TaskPtr& t) -> caf::result<TaskPtr> {
        auto rp = self->make_response_promise();
        t->id = st->next_id++;
        ++st->stats.submitted;
        st->estimates.note(*t);
        ReadyTask rt;
        rt.id = t->id;
        rt.job = t->state->job;
        rt.shard = t->state->shard;
        rt.kind = t->kind;
        rt.ready_seq = st->next_seq++;
        rt.last_device = t->state->last_device;
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
        if (t->device >= 0 && t->device < static_cast<int>(st->devices.size()))
          --st->devices[t->device].inflight;
        ++st->stats.completed;
        if (!t->error.empty()) ++st->stats.failed;
        if (t->prefetched) ++st->stats.prefetched;
        if (t->error.empty()) {
          st->estimates.observe(*t, t->compute_end - t->compute_start);
          t->state->last_device = t->device;
        }
        st->record(*t);
        auto it = st->waiting.find(t->id);
        if (it != st->waiting.end()) {
          auto promise = std::move(it->second.promise);
          st->waiting.erase(it);
          promise.deliver(t);
        }
        st->dispatch(self);
      },
      [self, st](stolen_atom, int device, TaskPtr& t) { st->stolen(self, device, t); },
      [st](stats_atom) { return st->stats; },
  };
}

}  // namespace hydra::actors
