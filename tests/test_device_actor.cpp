// The device actor's deep queue for short tasks and its batched completions, driven through the
// real scheduler actor by a submitter that keeps one task in flight per job (as shard actors do).
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/device_actor.hpp"
#include "actors/messages.hpp"
#include "actors/scheduler_actor.hpp"
#include "kernels/core/memory_pool.hpp"
#include "kernels/model_zoo.hpp"

using namespace hydra;
using namespace hydra::actors;

namespace {

using go_atom = caf::atom_constant<caf::atom("go")>;
using finished_atom = caf::atom_constant<caf::atom("finished")>;

struct Submitter {
  caf::actor scheduler, report_to;
  std::vector<std::shared_ptr<ShardState>> shards;
  std::vector<TaskPtr> proto;  // per job: the task to copy (kind, input)
  std::vector<std::int64_t> sent;
  std::int64_t per_job = 0;
  std::vector<TaskPtr> returned;  // in the order the answers arrived
};

void submit_next(caf::event_based_actor* self, const std::shared_ptr<Submitter>& s,
                 std::size_t job) {
  auto t = std::make_shared<ShardTask>(*s->proto[job]);
  t->step = s->sent[job]++;
  self->request(s->scheduler, caf::infinite, submit_atom::value, std::move(t))
      .then([self, s, job](TaskPtr& done) {
        s->returned.push_back(done);
        if (s->sent[job] < s->per_job) submit_next(self, s, job);
        if (s->returned.size() == s->shards.size() * static_cast<std::size_t>(s->per_job))
          self->send(s->report_to, finished_atom::value);
      });
}

caf::behavior submitter(caf::event_based_actor* self, std::shared_ptr<Submitter> s) {
  return {[self, s](go_atom) {
    for (std::size_t j = 0; j < s->shards.size(); ++j)
      submit_next(self, s, j);
  }};
}

struct Result {
  std::vector<TaskPtr> returned;
  SchedulerStats stats;
  std::vector<TraceEvent> trace;
};

// Runs every job's tasks to the end on `devices` and returns the answers in arrival order.
Result run_tasks(const std::vector<DeviceConfig>& devices, std::shared_ptr<Submitter> s) {
  Result out;
  auto trace = std::make_shared<Trace>();
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto scheduler = sys.spawn(scheduler_actor, SchedulerConfig{"lrtf", 0, trace});
  std::vector<caf::actor> device_actors;
  for (const DeviceConfig& c : devices)
    device_actors.push_back(sys.spawn(device_actor, c, scheduler, trace));
  s->scheduler = scheduler;
  s->sent.assign(s->shards.size(), 0);
  {
    caf::scoped_actor self{sys};
    s->report_to = self;
    auto driver = sys.spawn(submitter, s);
    self->send(driver, go_atom::value);
    self->receive([](finished_atom) {});
    self->request(scheduler, caf::infinite, stats_atom::value)
        .receive([&](SchedulerStats& st) { out.stats = st; },
                 [&](caf::error& e) { FAIL("scheduler: " << sys.render(e)); });
    for (auto& d : device_actors)
      self->send(d, stop_atom::value);
    self->send_exit(driver, caf::exit_reason::user_shutdown);
    self->send_exit(scheduler, caf::exit_reason::user_shutdown);
  }
  out.returned = s->returned;
  out.trace = trace->events();
  return out;
}

std::shared_ptr<ShardState> shard_of(int job, std::shared_ptr<Model> model, int num_shards,
                                     std::int64_t steps) {
  auto st = std::make_shared<ShardState>();
  st->job = job;
  st->job_name = "job";
  st->job_name += std::to_string(job);
  st->model = std::move(model);
  st->begin = 0;
  st->end = st->model->size();
  st->num_shards = num_shards;
  st->home = home_device();
  st->total_steps = steps;
  st->forward_flops = 1e6;
  st->siblings = {st};
  return st;
}

DeviceConfig device(int index, int cpu) {
  DeviceConfig c;
  c.index = index;
  c.device = Device::cpu(cpu);
  c.budget = memory_pool(c.device).capacity();
  c.name = c.device.str();
  return c;
}

}  // namespace

TEST_CASE(
    "actors: short tasks get a deep device queue and batched completions keep every result in "
    "order") {
  auto s = std::make_shared<Submitter>();
  auto model = std::make_shared<Model>();  // no layers: empty kernels, far shorter than dispatch
  const int jobs = 16;
  s->per_job = 150;
  for (int j = 0; j < jobs; ++j) {
    s->shards.push_back(shard_of(j, model, 1, s->per_job));
    auto t = std::make_shared<ShardTask>();
    t->kind = TaskKind::forward;
    t->state = s->shards.back();
    s->proto.push_back(t);
  }
  const Result r = run_tasks({device(0, 6), device(1, 7)}, s);
  const std::size_t total = static_cast<std::size_t>(jobs * s->per_job);
  REQUIRE(r.returned.size() == total);
  // Every task came back once, finished, with its own job's steps in order.
  std::map<int, std::int64_t> next_step;
  for (const TaskPtr& t : r.returned) {
    INFO(t->error);
    CHECK(t->error.empty());
    CHECK(t->device >= 0);
    CHECK(t->step == next_step[t->state->job]++);
  }
  // Per device, the answers arrived in the order the device computed the tasks (a batch keeps
  // its completion order), and no two of its tasks computed at once.
  for (int d = 0; d < 2; ++d) {
    std::vector<const ShardTask*> on;
    for (const TaskPtr& t : r.returned)
      if (t->device == d) on.push_back(t.get());
    CHECK(!on.empty());
    for (std::size_t i = 1; i < on.size(); ++i) {
      CHECK(on[i - 1]->compute_start <= on[i]->compute_start);
      CHECK(on[i - 1]->store_end <= on[i]->compute_start);
    }
  }
  std::size_t computes = 0;
  for (const TraceEvent& e : r.trace)
    computes += e.kind == "forward" ? 1 : 0;
  CHECK(computes == total);
  CHECK(r.stats.completed == total);
  CHECK(r.stats.failed == 0);
  CHECK(r.stats.idle_while_ready == 0);
  // The devices asked for more than one task of lookahead, and every completion came through
  // the devices' outboxes.
  CHECK(r.stats.max_inflight > 2);
  CHECK(r.stats.done_batched_tasks == total);
  CHECK(r.stats.done_messages >= 1);
  CHECK(r.stats.done_messages <= total);
  std::printf("  %zu tasks: %llu completion messages, at most %llu tasks on a device\n", total,
              static_cast<unsigned long long>(r.stats.done_messages),
              static_cast<unsigned long long>(r.stats.max_inflight));
}

TEST_CASE("actors: a deep device queue loads at most one task ahead of the running one") {
  const Device dev = Device::cpu(6);
  MemoryPool& pool = memory_pool(dev);
  auto make_jobs = [](int jobs, std::int64_t per_job) {
    auto s = std::make_shared<Submitter>();
    s->per_job = per_job;
    for (int j = 0; j < jobs; ++j) {
      // Shard 0 of 2 (no loss), evaluation forwards: parameters and input are loaded, the output
      // goes back home. Each job has its own parameters (64 x 64: 16 KiB, loaded ahead).
      auto model = std::make_shared<Model>(make_mlp(64, {}, 64));
      model->init(static_cast<std::uint64_t>(j + 1));
      s->shards.push_back(shard_of(j, model, 2, per_job));
      auto t = std::make_shared<ShardTask>();
      t->kind = TaskKind::forward;
      t->training = false;
      t->state = s->shards.back();
      t->input = Tensor::zeros({8, 64}, DType::f32, home_device());
      s->proto.push_back(t);
    }
    return s;
  };
  DeviceConfig c = device(0, 6);
  c.max_slots = 8;
  c.dispatch_latency = 10.0;  // every task counts as short: the deepest queue
  // One task at a time: what one task needs on the device.
  pool.reset_peak();
  const Result alone = run_tasks({c}, make_jobs(1, 3));
  REQUIRE(alone.returned.size() == 3);
  const std::size_t one = pool.peak();
  REQUIRE(one > 0);

  pool.reset_peak();
  const Result deep = run_tasks({c}, make_jobs(12, 10));
  REQUIRE(deep.returned.size() == 120);
  for (const TaskPtr& t : deep.returned) {
    INFO(t->error);
    CHECK(t->error.empty());
  }
  std::printf("  one task %zu bytes, deep queue (up to %llu tasks) peak %zu bytes\n", one,
              static_cast<unsigned long long>(deep.stats.max_inflight), pool.peak());
  CHECK(deep.stats.max_inflight > 2);
  CHECK(deep.stats.oom_retries == 0);
  // The running task and at most one loaded ahead (its parameters and input, no output yet).
  CHECK(pool.peak() <= 2 * one);
  // Loads still overlapped the running task's compute.
  CHECK(deep.stats.prefetched > 0);
}

TEST_CASE("actors: a device asked to steal gives back the newest half of its deep queue") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};  // stands in for the scheduler
  auto trace = std::make_shared<Trace>();
  DeviceConfig c = device(0, 7);
  c.max_slots = 8;
  c.dispatch_latency = 10.0;  // every task counts as short
  auto dev = sys.spawn(device_actor, c, caf::actor_cast<caf::actor>(self), trace);
  self->receive([](pull_atom, int index, int slots) {
    CHECK(index == 0);
    CHECK(slots == 2);
  });
  auto model = std::make_shared<Model>();
  std::vector<TaskPtr> tasks;
  for (int j = 0; j < 5; ++j) {
    auto t = std::make_shared<ShardTask>();
    t->id = static_cast<std::uint64_t>(j + 1);
    t->kind = TaskKind::forward;
    t->state = shard_of(j, model, 1, 1);
    tasks.push_back(t);
  }
  {
    // The first task cannot compute while its shard's state is held here, so the other four stay
    // queued (unstarted) when the steal request arrives.
    std::unique_lock hold(tasks[0]->state->resident);
    for (const TaskPtr& t : tasks)
      self->send(dev, run_atom::value, t);
    self->send(dev, steal_atom::value);
    std::vector<std::uint64_t> stolen;
    for (int i = 0; i < 2; ++i)
      self->receive([&](stolen_atom, int index, TaskPtr& t) {
        CHECK(index == 0);
        REQUIRE(t != nullptr);
        stolen.push_back(t->id);
      });
    CHECK(stolen == std::vector<std::uint64_t>{5, 4});
  }
  // The rest complete in order through the outbox; the device grants itself a deep queue.
  std::vector<std::uint64_t> done;
  int credit = 0;
  while (done.size() < 3)
    self->receive([&](done_atom, const DeviceOutboxPtr& box) {
      std::lock_guard lock(box->mutex);
      for (const TaskPtr& t : box->done) {
        CHECK(t->error.empty());
        done.push_back(t->id);
      }
      box->done.clear();
      credit += box->credit;
      box->credit = 0;
      box->posted = false;
    });
  CHECK(done == std::vector<std::uint64_t>{1, 2, 3});
  // Capacity 2 at the start, 3 finished, and a target of max_slots = 8 after the first.
  CHECK(credit == 9);
  CHECK(tasks[3]->compute_start == 0);
  CHECK(tasks[4]->compute_start == 0);
  self->send(dev, stop_atom::value);
}
