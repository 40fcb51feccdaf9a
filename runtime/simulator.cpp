#include "runtime/simulator.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <queue>
#include <set>
#include <tuple>
#include <unordered_map>

#include "kernels/core/error.hpp"
#include "runtime/scheduling_policy.hpp"
#include "runtime/task_estimator.hpp"

namespace hydra {

namespace {

// Seconds and bytes of one task's three phases on one device.
struct Phases {
  double load = 0, compute = 0, store = 0;
  std::size_t load_bytes = 0, store_bytes = 0;
};

// Each category of tensors is one copy (latency + bytes / bandwidth).
struct CopyList {
  const LinkCost& link;
  double seconds = 0;
  std::size_t bytes = 0;
  void add(std::size_t b) {
    if (b == 0) return;
    seconds += link.seconds(b);
    bytes += b;
  }
};

// `first_step`: the optimizer has no state yet (it is created by the first update), so there is
// none to load.
Phases phases(const SimJob& job, int shard, TaskKind kind, bool training, bool first_step,
              const SimDevice& dev) {
  const ShardCost& c = job.shards[static_cast<std::size_t>(shard)];
  const bool last = shard + 1 == static_cast<int>(job.shards.size());
  const bool fused = !job.clip;
  CopyList load{dev.link}, store{dev.link};
  Phases p;
  if (kind == TaskKind::forward) {
    load.add(c.value_bytes);
    load.add(c.input_bytes);
    if (last) load.add(c.label_bytes);
    p.compute = training ? c.forward : c.eval;
    if (!last) store.add(c.output_bytes);
    if (training) {
      store.add(c.stash_bytes);
      if (last) store.add(c.output_bytes);  // dlogits
    }
  } else if (kind == TaskKind::backward) {
    load.add(c.value_bytes);
    if (fused && !first_step) load.add(c.state_bytes);
    load.add(c.stash_bytes);
    load.add(c.output_bytes);  // d(output), or the last shard's dlogits
    p.compute = c.backward + (fused ? c.update : 0.0);
    if (shard > 0) store.add(c.input_bytes);
    if (fused) {
      store.add(c.value_bytes);
      store.add(c.state_bytes);
    } else {
      store.add(c.value_bytes);  // gradients
    }
  } else {
    load.add(c.value_bytes);
    load.add(c.value_bytes);  // gradients
    if (!first_step) load.add(c.state_bytes);
    p.compute = c.update;
    store.add(c.value_bytes);
    store.add(c.state_bytes);
  }
  p.compute /= dev.speed > 0 ? dev.speed : 1.0;
  p.load = load.seconds;
  p.store = store.seconds;
  p.load_bytes = load.bytes;
  p.store_bytes = store.bytes;
  return p;
}

// Where a job's program is: which task it runs now.
struct JobRun {
  TaskKind kind = TaskKind::forward;
  bool training = true;
  int shard = 0;
  std::int64_t step = 0, eval_batch = 0;
  bool validated = false, done = false;
};

struct SimTask {
  std::uint64_t id = 0, ready_seq = 0;
  int device = -1;
  Phases ph;
  bool load_started = false, load_done = false, overlapped = false;
  double load_start = 0, load_end = 0;
};

struct Dev {
  std::deque<int> queue;  // jobs whose task the device holds, not yet computing
  int running = -1;       // job whose task computes
  double copier_free = 0;
  int inflight = 0;
  std::uint64_t last_dispatch = 0;
  double busy = 0;
};

// Remaining-time estimates with a per-job cache, so a policy that asks every ready task's job
// (LRTF) costs O(1) per ask.
class CachedEstimates : public TaskEstimates {
 public:
  explicit CachedEstimates(TaskEstimator& e)
      : est_(e), remaining_(e.jobs(), 0.0), dirty_(e.jobs(), true) {}
  double task_seconds(int job, int shard, TaskKind kind) const override {
    return est_.task_seconds(job, shard, kind);
  }
  double remaining_seconds(int job) const override {
    const auto j = static_cast<std::size_t>(job);
    if (dirty_[j]) {
      remaining_[j] = est_.remaining_seconds(job);
      dirty_[j] = false;
    }
    return remaining_[j];
  }
  void touch(int job) { dirty_[static_cast<std::size_t>(job)] = true; }

 private:
  TaskEstimator& est_;
  mutable std::vector<double> remaining_;
  mutable std::vector<bool> dirty_;
};

enum class EvKind : std::uint8_t { submit, loaded, computed };

struct Ev {
  double t;
  std::uint64_t seq;
  EvKind kind;
  int a;            // job (submit) or device
  std::uint64_t b;  // task id (loaded) or job (computed)
  bool operator>(const Ev& o) const { return std::tie(t, seq) > std::tie(o.t, o.seq); }
};

class Simulation {
 public:
  Simulation(const std::vector<SimJob>& jobs, const std::vector<SimDevice>& devices,
             const SimOptions& options)
      : jobs_(jobs),
        devices_(devices),
        opt_(options),
        policy_(make_policy(options.policy, options.policy_seed)),
        estimator_(flops_of(jobs), steps_of(jobs), options.flops_per_second),
        estimates_(estimator_),
        runs_(jobs.size()),
        tasks_(jobs.size()),
        last_device_(jobs.size()),
        devs_(devices.size()) {
    for (std::size_t j = 0; j < jobs.size(); ++j)
      last_device_[j].assign(jobs[j].shards.size(), -1);
    for (int d = 0; d < static_cast<int>(devices.size()); ++d)
      free_.insert({0, 0, d});
    idle_ = static_cast<int>(devices.size());
    result_.job_end.assign(jobs.size(), 0.0);
  }

  SimResult run() {
    for (int j = 0; j < static_cast<int>(jobs_.size()); ++j) {
      JobRun& r = runs_[static_cast<std::size_t>(j)];
      if (jobs_[static_cast<std::size_t>(j)].steps > 0) {
        r.kind = TaskKind::forward;
        r.training = true;
        r.shard = 0;
        push({0.0, seq_++, EvKind::submit, j, 0});
      } else if (begin_validation(j)) {
        push({0.0, seq_++, EvKind::submit, j, 0});
      } else {
        finish_job(j, 0.0);
      }
    }
    while (!events_.empty()) {
      const Ev e = events_.top();
      events_.pop();
      now_ = e.t;
      ++result_.events;
      switch (e.kind) {
        case EvKind::submit:
          submit(e.a);
          break;
        case EvKind::loaded:
          loaded(e.a, e.b);
          break;
        case EvKind::computed:
          computed(e.a, static_cast<int>(e.b));
          break;
      }
    }
    for (std::size_t d = 0; d < devices_.size(); ++d) {
      result_.devices.push_back(devices_[d].name);
      result_.busy_seconds.push_back(devs_[d].busy);
      result_.utilisation.emplace_back(
          devices_[d].name, result_.makespan > 0 ? devs_[d].busy / result_.makespan : 0.0);
    }
    return std::move(result_);
  }

 private:
  static std::vector<std::vector<double>> flops_of(const std::vector<SimJob>& jobs) {
    std::vector<std::vector<double>> f;
    for (const SimJob& j : jobs) {
      check(!j.shards.empty(), "simulate: job " + j.name + " has no shards");
      std::vector<double> s;
      for (const ShardCost& c : j.shards)
        s.push_back(c.forward_flops);
      f.push_back(std::move(s));
    }
    return f;
  }
  static std::vector<std::int64_t> steps_of(const std::vector<SimJob>& jobs) {
    std::vector<std::int64_t> s;
    for (const SimJob& j : jobs)
      s.push_back(std::max<std::int64_t>(0, j.steps));
    return s;
  }

  void push(const Ev& e) { events_.push(e); }

  int shards(int job) const {
    return static_cast<int>(jobs_[static_cast<std::size_t>(job)].shards.size());
  }

  // --- the job's program ------------------------------------------------------------------
  bool begin_validation(int job) {
    JobRun& r = runs_[static_cast<std::size_t>(job)];
    if (jobs_[static_cast<std::size_t>(job)].eval_batches <= 0) return after_validation(job);
    r.kind = TaskKind::forward;
    r.training = false;
    r.shard = 0;
    r.eval_batch = 0;
    return true;
  }
  bool after_validation(int job) {
    JobRun& r = runs_[static_cast<std::size_t>(job)];
    r.validated = true;
    if (r.step >= jobs_[static_cast<std::size_t>(job)].steps) return false;
    r.kind = TaskKind::forward;
    r.training = true;
    r.shard = 0;
    return true;
  }
  bool end_step(int job) {
    const SimJob& j = jobs_[static_cast<std::size_t>(job)];
    JobRun& r = runs_[static_cast<std::size_t>(job)];
    ++r.step;
    estimator_.step_done(job);
    estimates_.touch(job);
    if (j.eval_every > 0 && r.step % j.eval_every == 0) return begin_validation(job);
    r.validated = false;
    if (r.step < j.steps) {
      r.kind = TaskKind::forward;
      r.training = true;
      r.shard = 0;
      return true;
    }
    return begin_validation(job);
  }
  // Moves the job to its next task; false when the job is done.
  bool next_task(int job) {
    const SimJob& j = jobs_[static_cast<std::size_t>(job)];
    JobRun& r = runs_[static_cast<std::size_t>(job)];
    const int n = shards(job);
    if (!r.training) {  // evaluation forward
      if (r.shard + 1 < n) {
        ++r.shard;
        return true;
      }
      if (++r.eval_batch < j.eval_batches) {
        r.shard = 0;
        return true;
      }
      return after_validation(job);
    }
    switch (r.kind) {
      case TaskKind::forward:
        if (r.shard + 1 < n) {
          ++r.shard;
        } else {
          r.kind = TaskKind::backward;
        }
        return true;
      case TaskKind::backward:
        if (r.shard > 0) {
          --r.shard;
          return true;
        }
        if (j.clip) {
          r.kind = TaskKind::update;
          r.shard = 0;
          return true;
        }
        return end_step(job);
      case TaskKind::update:
        if (r.shard + 1 < n) {
          ++r.shard;
          return true;
        }
        return end_step(job);
    }
    return false;
  }
  void finish_job(int job, double t) {
    runs_[static_cast<std::size_t>(job)].done = true;
    estimator_.job_finished(job);
    estimates_.touch(job);
    result_.job_end[static_cast<std::size_t>(job)] = t;
    result_.makespan = std::max(result_.makespan, t);
  }

  // --- scheduler --------------------------------------------------------------------------
  void submit(int job) {
    const JobRun& r = runs_[static_cast<std::size_t>(job)];
    SimTask& t = tasks_[static_cast<std::size_t>(job)];
    t = SimTask{};
    t.id = next_id_++;
    t.ready_seq = next_seq_++;
    ReadyTask rt;
    rt.id = t.id;
    rt.job = job;
    rt.shard = r.shard;
    rt.kind = r.kind;
    rt.ready_seq = t.ready_seq;
    rt.last_device = last_device_[static_cast<std::size_t>(job)][static_cast<std::size_t>(r.shard)];
    ready_.push_back(rt);
    dispatch();
  }

  void set_inflight(int d, int inflight) {
    Dev& v = devs_[static_cast<std::size_t>(d)];
    const int slots = std::max(1, devices_[static_cast<std::size_t>(d)].slots);
    if (v.inflight < slots) free_.erase({v.inflight, v.last_dispatch, d});
    if (v.inflight == 0) --idle_;
    if (v.inflight >= 2) stealable_.erase(d);
    v.inflight = inflight;
    if (v.inflight < slots) free_.insert({v.inflight, v.last_dispatch, d});
    if (v.inflight == 0) ++idle_;
    if (v.inflight >= 2) stealable_.insert(d);
  }

  void dispatch() {
    for (;;) {
      while (!ready_.empty() && !free_.empty()) {
        const int d = std::get<2>(*free_.begin());
        const std::size_t i = policy_->pick(ready_, d, estimates_);
        const ReadyTask rt = ready_.at(i);
        ready_.erase(ready_.begin() + static_cast<std::ptrdiff_t>(i));
        Dev& v = devs_[static_cast<std::size_t>(d)];
        free_.erase({v.inflight, v.last_dispatch, d});
        v.last_dispatch = ++dispatches_;
        free_.insert({v.inflight, v.last_dispatch, d});
        set_inflight(d, v.inflight + 1);
        receive(d, rt.job);
      }
      if (!ready_.empty() || !opt_.work_stealing || !steal()) return;
    }
  }

  // An idle device while another holds a task it has not started and is not copying: the task
  // goes back to the ready queue (front) for the idle device. True if any was taken back.
  bool steal() {
    if (idle_ == 0 || stealable_.empty()) return false;
    int budget = idle_;
    bool any = false;
    const std::vector<int> candidates(stealable_.begin(), stealable_.end());
    for (int d : candidates) {
      if (budget == 0) break;
      Dev& v = devs_[static_cast<std::size_t>(d)];
      for (auto it = v.queue.rbegin(); it != v.queue.rend(); ++it) {
        const int job = *it;
        SimTask& t = tasks_[static_cast<std::size_t>(job)];
        if (t.load_started && !t.load_done) continue;
        v.queue.erase(std::next(it).base());
        t.load_started = t.load_done = t.overlapped = false;
        t.device = -1;
        const JobRun& r = runs_[static_cast<std::size_t>(job)];
        ReadyTask rt;
        rt.id = t.id;
        rt.job = job;
        rt.shard = r.shard;
        rt.kind = r.kind;
        rt.ready_seq = t.ready_seq;
        rt.last_device =
            last_device_[static_cast<std::size_t>(job)][static_cast<std::size_t>(r.shard)];
        ready_.insert(ready_.begin(), rt);
        set_inflight(d, v.inflight - 1);
        ++result_.stolen;
        --budget;
        any = true;
        break;
      }
    }
    return any;
  }

  // --- device -----------------------------------------------------------------------------
  void receive(int d, int job) {
    Dev& v = devs_[static_cast<std::size_t>(d)];
    SimTask& t = tasks_[static_cast<std::size_t>(job)];
    const JobRun& r = runs_[static_cast<std::size_t>(job)];
    t.device = d;
    t.ph = phases(jobs_[static_cast<std::size_t>(job)], r.shard, r.kind, r.training, r.step == 0,
                  devices_[static_cast<std::size_t>(d)]);
    t.overlapped = v.running >= 0 || !v.queue.empty();
    v.queue.push_back(job);
    start_load(d, job);
    advance(d);
  }

  void start_load(int d, int job) {
    Dev& v = devs_[static_cast<std::size_t>(d)];
    SimTask& t = tasks_[static_cast<std::size_t>(job)];
    t.load_started = true;
    t.load_start = std::max(now_, v.copier_free);
    t.load_end = t.load_start + t.ph.load;
    v.copier_free = t.load_end;
    push({t.load_end, seq_++, EvKind::loaded, d, t.id});
    pending_[t.id] = job;
  }

  void loaded(int d, std::uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    const int job = it->second;
    pending_.erase(it);
    SimTask& t = tasks_[static_cast<std::size_t>(job)];
    if (t.id != id || t.device != d) return;
    t.load_done = true;
    advance(d);
  }

  void advance(int d) {
    Dev& v = devs_[static_cast<std::size_t>(d)];
    if (v.running >= 0 || v.queue.empty()) return;
    const int job = v.queue.front();
    SimTask& t = tasks_[static_cast<std::size_t>(job)];
    if (!t.load_started) start_load(d, job);
    if (!t.load_done) return;
    v.queue.pop_front();
    v.running = job;
    const SimDevice& dev = devices_[static_cast<std::size_t>(d)];
    double slow = 1.0;
    if (dev.kind == DeviceKind::cpu && opt_.cpu_cores > 0) {
      ++cpu_active_;
      slow = std::max(1.0, cpu_active_ / opt_.cpu_cores);
    }
    const double compute = t.ph.compute * slow, store = t.ph.store * slow;
    if (t.overlapped) ++result_.prefetched;
    const JobRun& r = runs_[static_cast<std::size_t>(job)];
    const SimJob& j = jobs_[static_cast<std::size_t>(job)];
    v.busy += compute;
    if (opt_.trace) {
      const char* kind = r.training ? task_kind_name(r.kind) : "eval";
      if (t.load_end > t.load_start)
        result_.trace.push_back(
            {dev.name, j.name, r.shard, "load", t.load_start, t.load_end, t.ph.load_bytes});
      result_.trace.push_back({dev.name, j.name, r.shard, kind, now_, now_ + compute, 0});
      if (t.ph.store_bytes > 0)
        result_.trace.push_back({dev.name, j.name, r.shard, "store", now_ + compute,
                                 now_ + compute + store, t.ph.store_bytes});
    }
    if (r.training) {
      estimator_.record(job, r.shard, r.kind, compute);
      estimates_.touch(job);
    }
    push({now_ + compute + store, seq_++, EvKind::computed, d, static_cast<std::uint64_t>(job)});
  }

  void computed(int d, int job) {
    Dev& v = devs_[static_cast<std::size_t>(d)];
    v.running = -1;
    if (devices_[static_cast<std::size_t>(d)].kind == DeviceKind::cpu && opt_.cpu_cores > 0)
      --cpu_active_;
    ++result_.tasks;
    JobRun& r = runs_[static_cast<std::size_t>(job)];
    last_device_[static_cast<std::size_t>(job)][static_cast<std::size_t>(r.shard)] = d;
    set_inflight(d, v.inflight - 1);
    if (next_task(job))
      push({now_ + opt_.submit_latency, seq_++, EvKind::submit, job, 0});
    else
      finish_job(job, now_);
    advance(d);
    dispatch();
  }

  const std::vector<SimJob>& jobs_;
  const std::vector<SimDevice>& devices_;
  SimOptions opt_;
  std::unique_ptr<SchedulingPolicy> policy_;
  TaskEstimator estimator_;
  CachedEstimates estimates_;
  std::vector<JobRun> runs_;
  std::vector<SimTask> tasks_;  // the task each job has in flight (at most one)
  std::vector<std::vector<int>> last_device_;
  std::vector<Dev> devs_;
  std::set<std::tuple<int, std::uint64_t, int>> free_;  // (inflight, last_dispatch, device)
  std::set<int> stealable_;                             // devices holding 2+ tasks
  std::unordered_map<std::uint64_t, int> pending_;      // task id -> job, load in progress
  std::vector<ReadyTask> ready_;
  std::priority_queue<Ev, std::vector<Ev>, std::greater<Ev>> events_;
  double now_ = 0;
  std::uint64_t seq_ = 0, next_id_ = 1, next_seq_ = 0, dispatches_ = 0;
  int idle_ = 0, cpu_active_ = 0;
  SimResult result_;
};

}  // namespace

SimResult simulate(const std::vector<SimJob>& jobs, const std::vector<SimDevice>& devices,
                   const SimOptions& options) {
  check(!devices.empty(), "simulate: no devices");
  Simulation sim(jobs, devices, options);
  return sim.run();
}

double makespan_lower_bound(const std::vector<SimJob>& jobs, const std::vector<SimDevice>& devices,
                            const SimOptions& options) {
  check(!devices.empty(), "makespan_lower_bound: no devices");
  const SimDevice& dev = devices.front();
  double work = 0, longest = 0;
  for (const SimJob& j : jobs) {
    const int n = static_cast<int>(j.shards.size());
    double device_time = 0, chain = 0;
    std::int64_t tasks = 0;
    auto add = [&](int s, TaskKind k, bool training, std::int64_t times) {
      const Phases p = phases(j, s, k, training, true, dev);  // fewest bytes: a lower bound
      device_time += static_cast<double>(times) * (p.compute + p.store);
      chain += static_cast<double>(times) * (p.load + p.compute + p.store);
      tasks += times;
    };
    std::int64_t passes = 0;
    if (j.eval_batches > 0)
      passes = j.eval_every > 0 ? j.steps / j.eval_every +
                                      ((j.steps % j.eval_every != 0 || j.steps == 0) ? 1 : 0)
                                : 1;
    for (int s = 0; s < n; ++s) {
      add(s, TaskKind::forward, true, j.steps);
      add(s, TaskKind::backward, true, j.steps);
      if (j.clip) add(s, TaskKind::update, true, j.steps);
      add(s, TaskKind::forward, false, passes * j.eval_batches);
    }
    chain += static_cast<double>(std::max<std::int64_t>(0, tasks - 1)) * options.submit_latency;
    work += device_time;
    longest = std::max(longest, chain);
  }
  return std::max(work / static_cast<double>(devices.size()), longest);
}

void add_to_trace(const SimResult& result, Trace& trace) {
  for (const TraceEvent& e : result.trace)
    trace.add(e);
}

SimJob make_sim_job(const std::string& name, Model& model, const Shape& input,
                    const PartitionOptions& options, Optimizer& optimizer, Device device,
                    CostModel& costs) {
  const std::vector<ShardSpec> plan = partition(model, input, options);
  SimJob job;
  job.name = name;
  for (const ShardSpec& s : plan)
    job.shards.push_back(
        costs.shard(model, s.begin, s.end, s.input_shape, optimizer, device, options.dtype));
  return job;
}

std::vector<SimDevice> uniform_devices(int n, LinkCost link, DeviceKind kind) {
  std::vector<SimDevice> out(static_cast<std::size_t>(std::max(n, 0)));
  for (int i = 0; i < n; ++i) {
    SimDevice& d = out[static_cast<std::size_t>(i)];
    d.name = Device{kind, i}.str();
    d.kind = kind;
    d.link = link;
  }
  return out;
}

std::vector<SimJob> with_measured_times(std::vector<SimJob> jobs,
                                        const std::vector<TraceEvent>& trace) {
  std::map<std::tuple<std::string, int, std::string>, std::vector<double>> measured;
  for (const TraceEvent& e : trace)
    if (is_compute_kind(e.kind)) measured[{e.job, e.shard, e.kind}].push_back(e.end - e.start);
  const auto median = [&](const SimJob& j, int shard, const char* kind) {
    std::vector<double>& v = measured[{j.name, shard, kind}];
    if (v.empty()) return 0.0;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  for (SimJob& j : jobs)
    for (int s = 0; s < static_cast<int>(j.shards.size()); ++s) {
      ShardCost& c = j.shards[static_cast<std::size_t>(s)];
      c.forward = median(j, s, "forward");
      c.eval = median(j, s, "eval");
      c.backward = median(j, s, "backward");  // the fused update included
      c.update = j.clip ? median(j, s, "update") : 0.0;
    }
  return jobs;
}

}  // namespace hydra
