// Scheduler and runtime overhead under stress:
//   1. dispatch rate: shard tasks with empty kernels through the real scheduler actor and real
//      device actors (tasks/s);
//   2. actor message round trips: request/response between two actors, event-based, blocking
//      and through the coroutine `co_await request<R>(...)` path (microseconds per round trip);
//   3. many concurrent jobs (tiny MLPs, a few steps each) on virtual CPU devices under memory
//      pressure, run wave after wave for a fixed duration, with the process RSS sampled every
//      few seconds (the goal: flat memory use) and the tasks/s of each wave.
//
//   stress [--quick] [--seconds S] [--jobs N] [--devices D] [--tasks T] [--only PART]
//   (PART: dispatch, trips or jobs)
//
// What the dispatch rate includes, per task: the submitter's request to the scheduler
// (submit_atom; the submitter is an event-based actor standing in for the shard actors, one task
// in flight per job like a real shard), the scheduler's bookkeeping (task-time estimates, the
// ready queue, the device choice, the policy's pick, prefetch-hint checks), run_atom to the
// device actor (event-based, on CAF's workers: it queues the task for its compute thread), its
// load_shard (a shard without layers, no input: nothing is copied) and execute_task (a training
// forward over zero layers: no kernel runs) on its compute thread (such small loads are never
// handed to the copy thread), the completion through the device's outbox to the scheduler (one
// done_atom for the tasks that finished before the scheduler read the last, with the credit the
// device grants back; trace events recorded, estimates refined) and the response to the
// submitter. Tasks this short make the device ask for a deep queue (DeviceConfig::max_slots).
// Not included: the shard actor and job coroutine of a real job (one more actor hop each way) and
// any kernel or copy.
#include <caf/all.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "actors/coroutine.hpp"
#include "actors/device_actor.hpp"
#include "actors/hydra.hpp"
#include "actors/messages.hpp"
#include "actors/scheduler_actor.hpp"
#include "kernels/core/memory_pool.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "runtime/data/synthetic.hpp"
#include "runtime/process_memory.hpp"

using namespace hydra;
using namespace hydra::actors;

using ping_atom = caf::atom_constant<caf::atom("ping")>;
using go_atom = caf::atom_constant<caf::atom("go")>;
using finished_atom = caf::atom_constant<caf::atom("finished")>;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string numbered(const char* prefix, long long i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

double mib(std::size_t bytes) {
  return static_cast<double>(bytes) / (1 << 20);
}

// --- 1. dispatch rate --------------------------------------------------------------------------

struct DispatchRun {
  double seconds = 0;
  std::uint64_t tasks = 0;
  SchedulerStats stats;
  std::size_t trace_events = 0;
};

// Keeps one task in flight per job: submits a job's next training forward when its last returns.
struct SubmitterState {
  caf::actor scheduler, report_to;
  std::vector<std::shared_ptr<ShardState>> shards;
  std::vector<std::int64_t> sent;
  std::int64_t per_job = 0;
  std::uint64_t returned = 0, failed = 0, total = 0;
};

void submit_next(caf::event_based_actor* self, const std::shared_ptr<SubmitterState>& s,
                 std::size_t job) {
  auto t = std::make_shared<ShardTask>();
  t->kind = TaskKind::forward;
  t->training = true;
  t->step = s->sent[job]++;
  t->state = s->shards[job];
  self->request(s->scheduler, caf::infinite, submit_atom::value, std::move(t))
      .then([self, s, job](TaskPtr& done) {
        ++s->returned;
        if (!done->error.empty()) ++s->failed;
        if (s->sent[job] < s->per_job) submit_next(self, s, job);
        if (s->returned == s->total) self->send(s->report_to, finished_atom::value, s->failed);
      });
}

caf::behavior submitter(caf::event_based_actor* self, std::shared_ptr<SubmitterState> s) {
  return {[self, s](go_atom) {
    for (std::size_t j = 0; j < s->shards.size(); ++j)
      submit_next(self, s, j);
  }};
}

DispatchRun dispatch_rate(int devices, int jobs, std::int64_t tasks) {
  DispatchRun out;
  auto trace = std::make_shared<Trace>();
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto scheduler = sys.spawn(scheduler_actor, SchedulerConfig{"lrtf", 0, trace});
  std::vector<caf::actor> device_actors;
  for (int d = 0; d < devices; ++d) {
    DeviceConfig c;
    c.index = d;
    c.device = Device::cpu(d);
    c.budget = memory_pool(c.device).capacity();
    c.name = c.device.str();
    device_actors.push_back(sys.spawn(device_actor, c, scheduler, trace));
  }
  auto state = std::make_shared<SubmitterState>();
  state->scheduler = scheduler;
  state->per_job = std::max<std::int64_t>(1, tasks / jobs);
  state->total = static_cast<std::uint64_t>(state->per_job) * static_cast<std::uint64_t>(jobs);
  auto model = std::make_shared<Model>();  // no layers: every task is an empty kernel
  for (int j = 0; j < jobs; ++j) {
    auto st = std::make_shared<ShardState>();
    st->job = j;
    st->job_name = numbered("job", j);
    st->model = model;
    st->home = home_device();
    st->total_steps = state->per_job;
    st->forward_flops = 1e6;
    st->siblings = {st};
    state->shards.push_back(st);
    state->sent.push_back(0);
  }
  {
    caf::scoped_actor self{sys};
    state->report_to = self;
    auto driver = sys.spawn(submitter, state);
    const auto t0 = Clock::now();
    self->send(driver, go_atom::value);
    self->receive([&](finished_atom, std::uint64_t failed) {
      out.seconds = seconds_since(t0);
      if (failed > 0)
        std::fprintf(stderr, "dispatch: %llu tasks failed\n",
                     static_cast<unsigned long long>(failed));
    });
    out.tasks = state->total;
    self->request(scheduler, caf::infinite, stats_atom::value)
        .receive([&](SchedulerStats& s) { out.stats = s; },
                 [&](caf::error& e) { throw Error("scheduler: " + sys.render(e)); });
    for (auto& d : device_actors)
      self->send(d, stop_atom::value);
    self->send_exit(driver, caf::exit_reason::user_shutdown);
    self->send_exit(scheduler, caf::exit_reason::user_shutdown);
  }
  out.trace_events = trace->events().size();
  return out;
}

// --- 2. message round trips --------------------------------------------------------------------

caf::behavior ponger(caf::event_based_actor*) {
  return {[](ping_atom, int x) { return x + 1; }};
}

// Event-based: the next request is sent from the previous response handler.
caf::behavior event_pinger(caf::event_based_actor* self, caf::actor pong, int n,
                           caf::actor report_to) {
  auto left = std::make_shared<int>(n);
  auto step = std::make_shared<std::function<void(int)>>();
  *step = [self, pong, left, step, report_to](int x) {
    if ((*left)-- == 0) {
      self->send(report_to, finished_atom::value, std::uint64_t{0});
      *step = nullptr;  // breaks the self-reference
      return;
    }
    self->request(pong, caf::infinite, ping_atom::value, x).then([step](int y) { (*step)(y); });
  };
  return {[step](go_atom) { (*step)(0); }};
}

Task<void> ping_loop(caf::event_based_actor* self, caf::actor pong, int n) {
  int x = 0;
  for (int i = 0; i < n; ++i)
    x = co_await request<int>(self, pong, ping_atom::value, x);
  if (x != n) throw Error("coroutine ping: expected " + std::to_string(n));
}

caf::behavior coroutine_pinger(caf::event_based_actor* self, caf::actor pong, int n,
                               caf::actor report_to) {
  return {[self, pong, n, report_to](go_atom) {
    start<void>(self, ping_loop(self, pong, n), [self, report_to](Outcome<void> out) {
      self->send(report_to, finished_atom::value, std::uint64_t{out.index() == 1 ? 1u : 0u});
    });
  }};
}

// Microseconds per round trip of `n` requests from a pinger spawned by `spawn_pinger`.
template <class Spawn>
double round_trip_us(caf::actor_system& sys, int n, Spawn spawn_pinger) {
  caf::scoped_actor self{sys};
  auto pong = sys.spawn(ponger);
  auto ping = spawn_pinger(pong, n, caf::actor_cast<caf::actor>(self));
  const auto t0 = Clock::now();
  self->send(ping, go_atom::value);
  self->receive([&](finished_atom, std::uint64_t failed) {
    if (failed) throw Error("round trip: the pinger failed");
  });
  const double us = seconds_since(t0) * 1e6 / n;
  self->send_exit(ping, caf::exit_reason::user_shutdown);
  self->send_exit(pong, caf::exit_reason::user_shutdown);
  return us;
}

double blocking_round_trip_us(caf::actor_system& sys, int n) {
  caf::scoped_actor self{sys};
  auto pong = sys.spawn(ponger);
  int x = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i)
    self->request(pong, caf::infinite, ping_atom::value, x)
        .receive([&](int y) { x = y; },
                 [&](caf::error& e) { throw Error("round trip: " + sys.render(e)); });
  const double us = seconds_since(t0) * 1e6 / n;
  if (x != n) throw Error("blocking ping: wrong count");
  self->send_exit(pong, caf::exit_reason::user_shutdown);
  return us;
}

// --- 3. many jobs under memory pressure --------------------------------------------------------

DataSplits tiny_data() {
  auto [train, val] = make_synthetic_classification(256, 16, 2, 5).split(192);
  return {train, val};
}

// Job i: an MLP 16 -> hidden -> 2 of one of three sizes (the largest needs two shards on the
// stress budget), SGD or AdamW, 3 steps of 16 samples and one validation at the end.
JobSpec tiny_job(int i) {
  static const std::vector<std::vector<std::int64_t>> sizes = {{16}, {32}, {48, 48}};
  JobSpec j;
  j.name = numbered("tiny", i);
  const auto hidden = sizes[static_cast<std::size_t>(i) % sizes.size()];
  j.make_model = [hidden] { return make_mlp(16, hidden, 2); };
  if (i % 2 == 0)
    j.make_optimizer = [] { return std::make_unique<SGD>(0.05, 0.9); };
  else
    j.make_optimizer = [] { return std::make_unique<AdamW>(1e-3, 0.9, 0.999, 1e-8, 0.0); };
  j.data = tiny_data;
  j.data_key = "stress-tiny";
  j.batch_size = 16;
  j.max_steps = 3;
  j.seed = static_cast<std::uint64_t>(i);
  return j;
}

struct Wave {
  double seconds = 0;
  std::size_t tasks = 0, ok = 0, failed = 0, max_shards = 0;
  std::uint64_t oom_retries = 0;
  std::string first_error;
};

struct Ballast {
  std::vector<Tensor> blocks;
};

void sustained(int jobs, int devices, double duration, std::size_t budget, std::size_t ballast) {
  std::vector<JobSpec> specs;
  for (int i = 0; i < jobs; ++i)
    specs.push_back(tiny_job(i));
  RuntimeOptions options;
  for (int d = 0; d < devices; ++d)
    options.devices.push_back({Device::cpu(d), budget});
  std::printf(
      "\n3. %d concurrent jobs (MLP 16-16-2, 16-32-2, 16-48-48-2; SGD/AdamW; 3 steps of 16 "
      "+ 1 validation) on %d virtual CPU devices of %.0f KiB, %.0f KiB of each held by "
      "ballast (memory pressure), waves for %.0f s\n",
      jobs, devices, budget / 1024.0, ballast / 1024.0, duration);
  const char* arenas = std::getenv("MALLOC_ARENA_MAX");
  std::printf("glibc malloc arenas: %s\n", arenas ? arenas : "default (MALLOC_ARENA_MAX unset)");
  std::printf("%6s %8s %8s %8s %8s %8s %10s %10s %10s\n", "wave", "end s", "jobs ok", "failed",
              "shards", "tasks", "oom retry", "tasks/s", "RSS MiB");
  RssSampler sampler(std::chrono::seconds(duration >= 60 ? 10 : 2));
  const auto t0 = Clock::now();
  std::vector<Wave> waves;
  std::size_t total_tasks = 0;
  double busy = 0;
  while (seconds_since(t0) < duration) {
    // The ballast takes part of every device's pool for the whole wave (allocated after the run
    // set the capacities would be racy, so it is allocated first; run() only checks that the
    // budget covers what is in use).
    Ballast b;
    for (int d = 0; d < devices; ++d)
      b.blocks.push_back(
          Tensor::empty({static_cast<std::int64_t>(ballast / 4)}, DType::f32, Device::cpu(d)));
    const auto w0 = Clock::now();
    RunReport r = run(specs, options);
    Wave w;
    w.seconds = seconds_since(w0);
    for (const TraceEvent& e : r.trace)
      w.tasks += is_compute_kind(e.kind) ? 1 : 0;
    for (const JobResult& j : r.jobs) {
      if (j.status == JobStatus::done) {
        ++w.ok;
      } else {
        ++w.failed;
        if (w.first_error.empty()) w.first_error = j.name + ": " + j.error;
      }
    }
    for (const TraceEvent& e : r.trace)
      w.max_shards = std::max(w.max_shards, static_cast<std::size_t>(e.shard + 1));
    w.oom_retries = r.scheduler.oom_retries;
    total_tasks += w.tasks;
    busy += w.seconds;
    waves.push_back(w);
    std::printf("%6zu %8.1f %8zu %8zu %8zu %8zu %10llu %10.0f %10.1f\n", waves.size(),
                seconds_since(t0), w.ok, w.failed, w.max_shards, w.tasks,
                static_cast<unsigned long long>(w.oom_retries), w.tasks / w.seconds,
                mib(resident_bytes()));
    if (!w.first_error.empty()) std::printf("       first error: %s\n", w.first_error.c_str());
    std::fflush(stdout);
  }
  sampler.stop();
  std::printf("\nRSS samples (every %d s):\n%8s %10s\n", duration >= 60 ? 10 : 2, "t s", "RSS MiB");
  const std::vector<RssSample> samples = sampler.samples();
  for (const RssSample& s : samples)
    std::printf("%8.1f %10.1f\n", s.seconds, mib(s.bytes));
  // Flatness: the last sample against the one after the first wave (allocator and caches warm).
  if (samples.size() >= 3) {
    std::size_t lo = SIZE_MAX, hi = 0;
    for (std::size_t i = samples.size() / 3; i < samples.size(); ++i)
      lo = std::min(lo, samples[i].bytes), hi = std::max(hi, samples[i].bytes);
    std::printf(
        "RSS over the last two thirds: %.1f to %.1f MiB (spread %.1f MiB); "
        "overall %.0f tasks/s (%zu tasks in %zu waves)\n",
        mib(lo), mib(hi), mib(hi - lo), total_tasks / busy, total_tasks, waves.size());
  }
}

struct Args {
  bool quick = false;
  double seconds = 120;
  int jobs = 1000, devices = 8;
  std::int64_t tasks = 200000;
  std::string only;  // "": all three parts; else dispatch, trips or jobs
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Error(s + " needs a value");
      return argv[++i];
    };
    if (s == "--quick") {
      a.quick = true;
      a.seconds = 20;
      a.tasks = 50000;
    } else if (s == "--seconds") {
      a.seconds = std::stod(value());
    } else if (s == "--jobs") {
      a.jobs = std::stoi(value());
    } else if (s == "--devices") {
      a.devices = std::stoi(value());
    } else if (s == "--only") {
      a.only = value();
      if (a.only != "dispatch" && a.only != "trips" && a.only != "jobs")
        throw Error("--only " + a.only + ": allowed are dispatch, trips, jobs");
    } else if (s == "--tasks") {
      a.tasks = std::stoll(value());
    } else {
      throw Error(
          "unknown argument " + s +
          " (allowed: --quick, --seconds S, --jobs N, --devices D, --tasks T, --only PART)");
    }
  }
  if (a.seconds <= 0 || a.jobs < 1 || a.devices < 1 || a.tasks < 1)
    throw Error("--seconds, --jobs, --devices and --tasks must be positive");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    set_blas_threads(1);
    const auto part = [&](const char* name) { return a.only.empty() || a.only == name; };
    if (part("dispatch")) {
      std::printf(
          "1. dispatch rate: training forwards of shards without layers (empty kernels) "
          "through the scheduler and device actors, one task in flight per job\n");
      // tasks/msg: tasks per completion message (batching); max queue: most tasks one device
      // held at once (its deep queue).
      std::printf("%8s %6s %10s %10s %12s %10s %12s %10s %10s\n", "devices", "jobs", "tasks",
                  "seconds", "tasks/s", "us/task", "trace evts", "tasks/msg", "max queue");
      for (const auto& [devices, jobs] : std::vector<std::pair<int, int>>{{2, 64}, {8, 256}}) {
        const DispatchRun r = dispatch_rate(devices, jobs, a.tasks);
        const double per_msg =
            r.stats.done_messages > 0
                ? static_cast<double>(r.stats.done_batched_tasks) / r.stats.done_messages
                : 0.0;
        std::printf("%8d %6d %10llu %10.3f %12.0f %10.2f %12zu %10.2f %10llu\n", devices, jobs,
                    static_cast<unsigned long long>(r.tasks), r.seconds, r.tasks / r.seconds,
                    1e6 * r.seconds / static_cast<double>(r.tasks), r.trace_events, per_msg,
                    static_cast<unsigned long long>(r.stats.max_inflight));
        std::fflush(stdout);
      }
    }

    if (part("trips")) {
      std::printf("\n2. actor message round trips (request -> response between two actors)\n");
      std::printf("%-42s %10s %12s\n", "path", "trips", "us/trip");
      {
        caf::actor_system_config cfg;
        caf::actor_system sys{cfg};
        const int n = a.quick ? 20000 : 100000;
        const double ev = round_trip_us(sys, n, [&](caf::actor pong, int k, caf::actor to) {
          return sys.spawn(event_pinger, pong, k, to);
        });
        std::printf("%-42s %10d %12.2f\n", "event-based request().then()", n, ev);
        const double co = round_trip_us(sys, n, [&](caf::actor pong, int k, caf::actor to) {
          return sys.spawn(coroutine_pinger, pong, k, to);
        });
        std::printf("%-42s %10d %12.2f\n", "coroutine co_await request<int>()", n, co);
        const double bl = blocking_round_trip_us(sys, n);
        std::printf("%-42s %10d %12.2f\n", "blocking scoped_actor request().receive()", n, bl);
        std::fflush(stdout);
      }
    }

    if (part("jobs")) sustained(a.jobs, a.devices, a.seconds, 96 << 10, 40 << 10);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stress: %s\n", e.what());
    return 1;
  }
  return 0;
}
