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

// `bytes` x `fraction` (exactly `bytes` for a fraction of 1).
std::size_t part(std::size_t bytes, double fraction) {
  if (fraction == 1.0) return bytes;
  return static_cast<std::size_t>(static_cast<double>(bytes) * fraction + 0.5);
}

// What one task works on: a fraction of the batch (replicas, micro-batches) and of the shard's
// parameters (sharded data-parallel updates); `fused`: the update runs inside the backward;
// `accumulate`: the backward adds to gradients of earlier micro-batches (loads them).
struct TaskShape {
  double batch = 1.0, params = 1.0;
  bool fused = true, accumulate = false;
};

// `first_step`: the optimizer has no state yet (it is created by the first update), so there is
// none to load.
Phases phases(const SimJob& job, int shard, TaskKind kind, bool training, bool first_step,
              const SimDevice& dev, const TaskShape& shape) {
  const ShardCost& c = job.shards[static_cast<std::size_t>(shard)];
  const bool last = shard + 1 == static_cast<int>(job.shards.size());
  const bool fused = shape.fused;
  const double bf = shape.batch, pf = shape.params;
  CopyList load{dev.link}, store{dev.link};
  Phases p;
  if (kind == TaskKind::forward) {
    load.add(c.value_bytes);
    load.add(part(c.input_bytes, bf));
    if (last) load.add(part(c.label_bytes, bf));
    p.compute = (training ? c.forward : c.eval) * bf;
    if (!last) store.add(part(c.output_bytes, bf));
    if (training) {
      store.add(part(c.stash_bytes, bf));
      if (last) store.add(part(c.output_bytes, bf));  // dlogits
    }
  } else if (kind == TaskKind::backward) {
    load.add(c.value_bytes);
    if (fused && !first_step) load.add(c.state_bytes);
    load.add(part(c.stash_bytes, bf));
    load.add(part(c.output_bytes, bf));             // d(output), or the last shard's dlogits
    if (shape.accumulate) load.add(c.value_bytes);  // gradients of earlier micro-batches
    p.compute = c.backward * bf + (fused ? c.update : 0.0);
    if (shard > 0) store.add(part(c.input_bytes, bf));
    if (fused) {
      store.add(c.value_bytes);
      store.add(c.state_bytes);
    } else {
      store.add(c.value_bytes);  // gradients
    }
  } else {
    load.add(part(c.value_bytes, pf));
    load.add(part(c.value_bytes, pf));  // gradients
    if (!first_step) load.add(part(c.state_bytes, pf));
    p.compute = c.update * pf;
    store.add(part(c.value_bytes, pf));
    store.add(part(c.state_bytes, pf));
  }
  p.compute /= dev.speed > 0 ? dev.speed : 1.0;
  p.load = load.seconds;
  p.store = store.seconds;
  p.load_bytes = load.bytes;
  p.store_bytes = store.bytes;
  return p;
}

Phases phases(const SimJob& job, int shard, TaskKind kind, bool training, bool first_step,
              const SimDevice& dev) {
  TaskShape shape;
  shape.fused = !job.clip;
  return phases(job, shard, kind, training, first_step, dev, shape);
}

// --- the tasks of one step (or evaluation pass) of a job with a strategy --------------------

struct Node {
  int lane = 0;  // the job's lane (replica r, shard s: r x S + s) that runs it
  int shard = 0;
  TaskKind kind = TaskKind::forward;
  bool training = true;
  TaskShape shape;
  double delay = 0;  // host time (all-reduce) between the last dependency and its submission
  int deps = 0;
  std::vector<int> succ;
};

struct Graph {
  std::vector<Node> nodes;
  double end_delay = 0;  // host time after the last task (sharded: all-gather of the values)
};

class GraphBuilder {
 public:
  explicit GraphBuilder(int lanes) : last_(static_cast<std::size_t>(lanes), -1) {}
  // Adds a node after the lane's previous node and after `after`.
  int add(Node n, std::initializer_list<int> after = {}) {
    const int id = static_cast<int>(g.nodes.size());
    g.nodes.push_back(std::move(n));
    int& prev = last_[static_cast<std::size_t>(g.nodes.back().lane)];
    if (prev >= 0) edge(prev, id);
    prev = id;
    for (int a : after)
      if (a >= 0 && a != id) edge(a, id);
    return id;
  }
  void edge(int from, int to) {
    std::vector<int>& s = g.nodes[static_cast<std::size_t>(from)].succ;
    if (std::find(s.begin(), s.end(), to) != s.end()) return;
    s.push_back(to);
    ++g.nodes[static_cast<std::size_t>(to)].deps;
  }
  int last(int lane) const { return last_[static_cast<std::size_t>(lane)]; }
  Graph g;

 private:
  std::vector<int> last_;
};

// A host collective over the replicas' home copies of `bytes`: latency + `copies` x bytes /
// bandwidth (the bytes the host reads and writes).
double host_collective(const LinkCost& link, std::size_t bytes, int replicas, double copies) {
  if (replicas <= 1 || bytes == 0) return 0.0;
  return link.latency + copies * static_cast<double>(bytes) / link.bandwidth;
}

// One training step of a job with replicas and/or micro-batches, as actors/pipeline_step and
// actors/data_parallel_step run it: per replica, forward micro-batch i of shard s once shard s-1
// finished micro-batch i and shard s finished micro-batch i-1 (a dataflow); backward from the
// last shard, micro-batch m-1 first, in the same dataflow once every forward finished; then
// (after the all-reduce) every shard's update tasks at once, once every backward finished.
Graph train_graph(const SimJob& job, const LinkCost& link) {
  const int S = static_cast<int>(job.shards.size());
  const int R = std::max(1, job.replicas), M = std::max(1, job.micro_batches);
  const bool sharded = job.sharded_data_parallel && R > 1;
  GraphBuilder b(R * S);
  TaskShape shape;
  shape.batch = 1.0 / (R * M);
  shape.fused = false;
  std::vector<int> last_backward;  // per replica
  for (int r = 0; r < R; ++r) {
    // Per micro-batch: its task on the previous shard (forward) or the next shard (backward).
    std::vector<int> prev(static_cast<std::size_t>(M), -1);
    const auto node = [&](TaskKind kind, int i, int s, int after) {
      Node n;
      n.lane = r * S + s;
      n.shard = s;
      n.kind = kind;
      n.shape = shape;
      n.shape.accumulate = kind == TaskKind::backward && i < M - 1;
      return b.add(n, {after});  // and after the lane's previous task (micro-batch i -/+ 1)
    };
    for (int s = 0; s < S; ++s)
      for (int i = 0; i < M; ++i)
        prev[static_cast<std::size_t>(i)] =
            node(TaskKind::forward, i, s, prev[static_cast<std::size_t>(i)]);
    // The first backward (last shard, micro-batch m-1) follows the last forward, which follows
    // every other forward of the replica.
    const int last_forward = prev[static_cast<std::size_t>(M - 1)];
    std::fill(prev.begin(), prev.end(), -1);
    for (int s = S - 1; s >= 0; --s)
      for (int i = M - 1; i >= 0; --i) {
        const int after = s == S - 1 ? last_forward : prev[static_cast<std::size_t>(i)];
        prev[static_cast<std::size_t>(i)] = node(TaskKind::backward, i, s, after);
      }
    last_backward.push_back(prev[0]);  // shard 0, micro-batch 0: after every backward
  }
  // Host all-reduce before the updates and (sharded) all-gather after them, shard by shard.
  double reduce = 0, gather = 0;
  for (int s = 0; s < S; ++s) {
    const std::size_t bytes = job.shards[static_cast<std::size_t>(s)].value_bytes;
    // All-reduce: read every replica's gradients, write the mean into every replica (2R copies);
    // sharded: then gather the updated slices into every replica after the update (R).
    reduce += host_collective(link, bytes, R, 2.0 * R);
    if (sharded) gather += host_collective(link, bytes, R, R);
  }
  for (int s = 0; s < S; ++s)
    for (int u = 0; u < R; ++u) {
      Node n;
      n.lane = u * S + s;
      n.shard = s;
      n.kind = TaskKind::update;
      n.shape.fused = false;
      n.shape.params = sharded ? 1.0 / R : 1.0;
      n.delay = reduce;
      const int id = b.add(n);
      for (int p : last_backward)
        b.edge(p, id);
    }
  b.g.end_delay = gather;
  return std::move(b.g);
}

// One evaluation pass: full-batch eval forwards, one at a time.
Graph eval_graph(const SimJob& job) {
  const int S = static_cast<int>(job.shards.size());
  GraphBuilder b(S);
  int prev = -1;
  for (std::int64_t e = 0; e < job.eval_batches; ++e)
    for (int s = 0; s < S; ++s) {
      Node n;
      n.lane = s;
      n.shard = s;
      n.training = false;
      prev = b.add(n, {prev});
    }
  return std::move(b.g);
}

// Device work and critical path of one graph (`first_step`: no optimizer state to load yet).
JobBounds graph_bounds(const SimJob& job, const Graph& g, const SimDevice& dev, double latency,
                       bool first_step) {
  JobBounds out;
  std::vector<double> finish(g.nodes.size(), 0.0), ready(g.nodes.size(), 0.0);
  // Nodes are added in a topological order (every edge goes to a later node).
  for (std::size_t k = 0; k < g.nodes.size(); ++k) {
    const Node& n = g.nodes[k];
    const Phases p = phases(job, n.shard, n.kind, n.training, first_step, dev, n.shape);
    out.work += p.compute + p.store;
    const double start = (n.deps > 0 ? ready[k] + latency : 0.0) + n.delay;
    finish[k] = start + p.load + p.compute + p.store;
    out.chain = std::max(out.chain, finish[k]);
    for (int t : n.succ)
      ready[static_cast<std::size_t>(t)] = std::max(ready[static_cast<std::size_t>(t)], finish[k]);
  }
  out.chain += g.end_delay;
  return out;
}

// Where a job's program is: which task it runs now (default strategy), or which graph (a
// training step when `training`, else an evaluation pass) it is in (with a strategy).
struct JobRun {
  TaskKind kind = TaskKind::forward;
  bool training = true;
  int shard = 0;
  std::int64_t step = 0, eval_batch = 0;
  bool validated = false, done = false;
  // With a strategy: dependencies left per node of the current graph, nodes not yet done.
  std::vector<int> deps;
  std::size_t left = 0;
};

// What one lane (a chain that runs one task at a time) runs now.
struct LaneTask {
  int shard = 0;
  TaskKind kind = TaskKind::forward;
  bool training = true;
  bool first_step = false;
  TaskShape shape;
  int node = -1;  // graph node (a job with a strategy), else -1
};

struct SimTask {
  std::uint64_t id = 0, ready_seq = 0;
  int device = -1;
  Phases ph;
  bool load_started = false, load_done = false, overlapped = false;
  double load_start = 0, load_end = 0;
};

struct Dev {
  std::deque<int> queue;  // lanes whose task the device holds, not yet computing
  int running = -1;       // lane whose task computes
  double copier_free = 0;
  int inflight = 0;
  std::uint64_t last_dispatch = 0;
  double busy = 0;
  // Contention (SimOptions::contention) on a CPU device: the running task's compute and store in
  // seconds alone, the part of them left at `since`, its current slowdown, and the version of its
  // pending `computed` event (older ones are stale).
  double alone_compute = 0, alone_store = 0, left = 0, since = 0, slow = 1, run_start = 0;
  std::uint32_t version = 0;
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

enum class EvKind : std::uint8_t { submit, loaded, computed, start_graph };

struct Ev {
  double t;
  std::uint64_t seq;
  EvKind kind;
  int a;            // lane (submit), device (loaded, computed) or job (start_graph)
  std::uint64_t b;  // node + 1 (submit), task id (loaded) or lane + version << 32 (computed)
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
        last_device_(jobs.size()),
        devs_(devices.size()),
        pinned_(devices.size()) {
    // Lanes 0..J-1: one per job (a default job's only lane; lane 0 of a job with a strategy),
    // then the other lanes of jobs with strategies.
    lane_job_.resize(jobs.size());
    lane_base_.resize(jobs.size());
    graphs_.resize(jobs.size());
    for (std::size_t j = 0; j < jobs.size(); ++j) {
      const SimJob& job = jobs[j];
      check(job.replicas >= 1, "simulate: job " + job.name + " has replicas " +
                                   std::to_string(job.replicas) + " (at least 1)");
      check(job.micro_batches >= 1, "simulate: job " + job.name + " has micro_batches " +
                                        std::to_string(job.micro_batches) + " (at least 1)");
      check(job.device_affinity < static_cast<int>(devices.size()),
            "simulate: job " + job.name + " has device_affinity " +
                std::to_string(job.device_affinity) + " but there are only " +
                std::to_string(devices.size()) + " devices");
      last_device_[j].assign(job.shards.size(), -1);
      lane_job_[j] = static_cast<int>(j);
    }
    for (std::size_t j = 0; j < jobs.size(); ++j) {
      const SimJob& job = jobs[j];
      if (job.is_default_strategy()) continue;
      graphs_[j].push_back(train_graph(job, devices.front().link));
      graphs_[j].push_back(eval_graph(job));
      const int lanes = std::max(1, job.replicas) * static_cast<int>(job.shards.size());
      lane_base_[j].push_back(static_cast<int>(j));
      for (int l = 1; l < lanes; ++l) {
        lane_base_[j].push_back(static_cast<int>(lane_job_.size()));
        lane_job_.push_back(static_cast<int>(j));
      }
    }
    lanes_.resize(lane_job_.size());
    tasks_.resize(lane_job_.size());
    for (int d = 0; d < static_cast<int>(devices.size()); ++d)
      free_.insert({0, 0, d});
    idle_ = static_cast<int>(devices.size());
    result_.job_end.assign(jobs.size(), 0.0);
  }

  SimResult run() {
    for (int j = 0; j < static_cast<int>(jobs_.size()); ++j) {
      JobRun& r = runs_[static_cast<std::size_t>(j)];
      const bool graph = !job(j).is_default_strategy();
      bool any = true;
      if (job(j).steps > 0) {
        r.kind = TaskKind::forward;
        r.training = true;
        r.shard = 0;
      } else {
        any = begin_validation(j);
      }
      if (!any)
        finish_job(j, 0.0);
      else if (graph)
        push({0.0, seq_++, EvKind::start_graph, j, 0});
      else
        push({0.0, seq_++, EvKind::submit, j, 0});
    }
    while (!events_.empty()) {
      const Ev e = events_.top();
      events_.pop();
      now_ = e.t;
      ++result_.events;
      switch (e.kind) {
        case EvKind::submit:
          submit(e.a, static_cast<int>(e.b) - 1);
          break;
        case EvKind::loaded:
          loaded(e.a, e.b);
          break;
        case EvKind::computed:
          computed(e.a, static_cast<int>(e.b & 0xffffffffu), static_cast<std::uint32_t>(e.b >> 32));
          break;
        case EvKind::start_graph:
          start_graph(e.a);
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

  const SimJob& job(int j) const { return jobs_[static_cast<std::size_t>(j)]; }
  int shards(int j) const { return static_cast<int>(job(j).shards.size()); }

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
  // Moves a default job to its next task; false when the job is done.
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

  // --- jobs with a strategy: graphs of tasks ----------------------------------------------
  const Graph& graph_of(int j) const {
    return graphs_[static_cast<std::size_t>(j)]
                  [runs_[static_cast<std::size_t>(j)].training ? 0 : 1];
  }
  int lane_of(int j, int node) const {
    return lane_base_[static_cast<std::size_t>(j)][static_cast<std::size_t>(
        graph_of(j).nodes[static_cast<std::size_t>(node)].lane)];
  }
  // The job's current graph starts now: its nodes without dependencies are submitted.
  void start_graph(int j) {
    JobRun& r = runs_[static_cast<std::size_t>(j)];
    const Graph& g = graph_of(j);
    r.deps.resize(g.nodes.size());
    for (std::size_t k = 0; k < g.nodes.size(); ++k)
      r.deps[k] = g.nodes[k].deps;
    r.left = g.nodes.size();
    if (r.left == 0) {  // an empty evaluation pass cannot happen (eval_batches > 0)
      graph_done(j);
      return;
    }
    for (std::size_t k = 0; k < g.nodes.size(); ++k)
      if (g.nodes[k].deps == 0)
        push({now_ + g.nodes[k].delay, seq_++, EvKind::submit, lane_of(j, static_cast<int>(k)),
              k + 1});
  }
  void node_done(int j, int node) {
    JobRun& r = runs_[static_cast<std::size_t>(j)];
    const Graph& g = graph_of(j);
    for (int t : g.nodes[static_cast<std::size_t>(node)].succ)
      if (--r.deps[static_cast<std::size_t>(t)] == 0)
        push({now_ + opt_.submit_latency + g.nodes[static_cast<std::size_t>(t)].delay, seq_++,
              EvKind::submit, lane_of(j, t), static_cast<std::uint64_t>(t) + 1});
    if (--r.left == 0) graph_done(j);
  }
  void graph_done(int j) {
    JobRun& r = runs_[static_cast<std::size_t>(j)];
    const double end = now_ + graph_of(j).end_delay;
    const bool more = r.training ? end_step(j) : after_validation(j);
    if (more)
      push({end + opt_.submit_latency, seq_++, EvKind::start_graph, j, 0});
    else
      finish_job(j, end);
  }

  // --- scheduler --------------------------------------------------------------------------
  ReadyTask ready_task(int lane) const {
    const int j = lane_job_[static_cast<std::size_t>(lane)];
    const LaneTask& lt = lanes_[static_cast<std::size_t>(lane)];
    const SimTask& t = tasks_[static_cast<std::size_t>(lane)];
    ReadyTask rt;
    rt.id = t.id;
    rt.job = j;
    rt.shard = lt.shard;
    rt.kind = lt.kind;
    rt.ready_seq = t.ready_seq;
    rt.last_device = last_device_[static_cast<std::size_t>(j)][static_cast<std::size_t>(lt.shard)];
    return rt;
  }

  void submit(int lane, int node) {
    const int j = lane_job_[static_cast<std::size_t>(lane)];
    const JobRun& r = runs_[static_cast<std::size_t>(j)];
    LaneTask& lt = lanes_[static_cast<std::size_t>(lane)];
    lt = LaneTask{};
    lt.first_step = r.step == 0;
    lt.node = node;
    if (node < 0) {
      lt.shard = r.shard;
      lt.kind = r.kind;
      lt.training = r.training;
      lt.shape.fused = !job(j).clip;
    } else {
      const Node& n = graph_of(j).nodes[static_cast<std::size_t>(node)];
      lt.shard = n.shard;
      lt.kind = n.kind;
      lt.training = n.training;
      lt.shape = n.shape;
    }
    SimTask& t = tasks_[static_cast<std::size_t>(lane)];
    t = SimTask{};
    t.id = next_id_++;
    t.ready_seq = next_seq_++;
    ready_lane_[t.id] = lane;
    const int pin = job(j).device_affinity;
    if (pin >= 0) {
      pinned_[static_cast<std::size_t>(pin)].push_back(ready_task(lane));
      pinned_devices_.insert(pin);
      ++pinned_ready_;
    } else {
      ready_.push_back(ready_task(lane));
    }
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

  bool has_free_slot(int d) const {
    return devs_[static_cast<std::size_t>(d)].inflight <
           std::max(1, devices_[static_cast<std::size_t>(d)].slots);
  }

  // The free device the next task goes to, or -1: with unpinned tasks ready the first free
  // device; else the first free device with pinned tasks ready.
  int next_device() const {
    if (free_.empty()) return -1;
    if (!ready_.empty()) return std::get<2>(*free_.begin());
    if (pinned_ready_ == 0) return -1;
    int best = -1;
    std::tuple<int, std::uint64_t, int> key{};
    for (int d : pinned_devices_) {
      if (!has_free_slot(d)) continue;
      const Dev& v = devs_[static_cast<std::size_t>(d)];
      const std::tuple<int, std::uint64_t, int> k{v.inflight, v.last_dispatch, d};
      if (best < 0 || k < key) {
        best = d;
        key = k;
      }
    }
    return best;
  }

  void dispatch() {
    for (;;) {
      for (int d = next_device(); d >= 0; d = next_device()) {
        std::vector<ReadyTask>& pin = pinned_[static_cast<std::size_t>(d)];
        ReadyTask rt;
        if (pin.empty()) {
          const std::size_t i = policy_->pick(ready_, d, estimates_);
          rt = ready_.at(i);
          ready_.erase(ready_.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
          std::vector<ReadyTask> both = pin;
          both.insert(both.end(), ready_.begin(), ready_.end());
          const std::size_t i = policy_->pick(both, d, estimates_);
          rt = both.at(i);
          if (i < pin.size()) {
            pin.erase(pin.begin() + static_cast<std::ptrdiff_t>(i));
            --pinned_ready_;
            if (pin.empty()) pinned_devices_.erase(d);
          } else {
            ready_.erase(ready_.begin() + static_cast<std::ptrdiff_t>(i - pin.size()));
          }
        }
        Dev& v = devs_[static_cast<std::size_t>(d)];
        free_.erase({v.inflight, v.last_dispatch, d});
        v.last_dispatch = ++dispatches_;
        free_.insert({v.inflight, v.last_dispatch, d});
        set_inflight(d, v.inflight + 1);
        const auto it = ready_lane_.find(rt.id);
        const int lane = it->second;
        ready_lane_.erase(it);
        receive(d, lane);
      }
      if (!ready_.empty() || !opt_.work_stealing || !steal()) return;
    }
  }

  // An idle device while another holds a task it has not started and is not copying: the task
  // goes back to the ready queue (front) for the idle device. True if any was taken back. Tasks
  // of a job pinned to a device stay there.
  bool steal() {
    if (idle_ == 0 || stealable_.empty()) return false;
    int budget = idle_;
    bool any = false;
    const std::vector<int> candidates(stealable_.begin(), stealable_.end());
    for (int d : candidates) {
      if (budget == 0) break;
      Dev& v = devs_[static_cast<std::size_t>(d)];
      for (auto it = v.queue.rbegin(); it != v.queue.rend(); ++it) {
        const int lane = *it;
        SimTask& t = tasks_[static_cast<std::size_t>(lane)];
        if (t.load_started && !t.load_done) continue;
        if (job(lane_job_[static_cast<std::size_t>(lane)]).device_affinity >= 0) continue;
        v.queue.erase(std::next(it).base());
        t.load_started = t.load_done = t.overlapped = false;
        t.device = -1;
        ready_lane_[t.id] = lane;
        ready_.insert(ready_.begin(), ready_task(lane));
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
  void receive(int d, int lane) {
    Dev& v = devs_[static_cast<std::size_t>(d)];
    SimTask& t = tasks_[static_cast<std::size_t>(lane)];
    const LaneTask& lt = lanes_[static_cast<std::size_t>(lane)];
    t.device = d;
    t.ph = phases(job(lane_job_[static_cast<std::size_t>(lane)]), lt.shard, lt.kind, lt.training,
                  lt.first_step, devices_[static_cast<std::size_t>(d)], lt.shape);
    t.overlapped = v.running >= 0 || !v.queue.empty();
    v.queue.push_back(lane);
    start_load(d, lane);
    advance(d);
  }

  void start_load(int d, int lane) {
    Dev& v = devs_[static_cast<std::size_t>(d)];
    SimTask& t = tasks_[static_cast<std::size_t>(lane)];
    t.load_started = true;
    t.load_start = std::max(now_, v.copier_free);
    t.load_end = t.load_start + t.ph.load;
    v.copier_free = t.load_end;
    push({t.load_end, seq_++, EvKind::loaded, d, t.id});
    pending_[t.id] = lane;
  }

  void loaded(int d, std::uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    const int lane = it->second;
    pending_.erase(it);
    SimTask& t = tasks_[static_cast<std::size_t>(lane)];
    if (t.id != id || t.device != d) return;
    t.load_done = true;
    advance(d);
  }

  void advance(int d) {
    Dev& v = devs_[static_cast<std::size_t>(d)];
    if (v.running >= 0 || v.queue.empty()) return;
    const int lane = v.queue.front();
    SimTask& t = tasks_[static_cast<std::size_t>(lane)];
    if (!t.load_started) start_load(d, lane);
    if (!t.load_done) return;
    v.queue.pop_front();
    v.running = lane;
    const SimDevice& dev = devices_[static_cast<std::size_t>(d)];
    if (contended(d)) {
      if (t.overlapped) ++result_.prefetched;
      v.alone_compute = t.ph.compute;
      v.alone_store = t.ph.store;
      v.left = t.ph.compute + t.ph.store;
      v.since = v.run_start = now_;
      v.slow = 1.0;
      contending_.push_back(d);
      reschedule_contending();
      return;
    }
    double slow = 1.0;
    if (dev.kind == DeviceKind::cpu && opt_.cpu_cores > 0) {
      ++cpu_active_;
      slow = std::max(1.0, cpu_active_ / opt_.cpu_cores);
    }
    const double compute = t.ph.compute * slow, store = t.ph.store * slow;
    if (t.overlapped) ++result_.prefetched;
    const int jb = lane_job_[static_cast<std::size_t>(lane)];
    const LaneTask& lt = lanes_[static_cast<std::size_t>(lane)];
    const SimJob& j = job(jb);
    v.busy += compute;
    if (opt_.trace) {
      const char* kind = lt.training ? task_kind_name(lt.kind) : "eval";
      if (t.load_end > t.load_start)
        result_.trace.push_back(
            {dev.name, j.name, lt.shard, "load", t.load_start, t.load_end, t.ph.load_bytes});
      result_.trace.push_back({dev.name, j.name, lt.shard, kind, now_, now_ + compute, 0});
      if (t.ph.store_bytes > 0)
        result_.trace.push_back({dev.name, j.name, lt.shard, "store", now_ + compute,
                                 now_ + compute + store, t.ph.store_bytes});
    }
    if (lt.training) {
      estimator_.record(jb, lt.shard, lt.kind, compute);
      estimates_.touch(jb);
    }
    push({now_ + compute + store, seq_++, EvKind::computed, d, static_cast<std::uint64_t>(lane)});
  }

  // --- contention (SimOptions::contention) ------------------------------------------------
  bool contended(int d) const {
    return opt_.contention && devices_[static_cast<std::size_t>(d)].kind == DeviceKind::cpu;
  }

  // The slowdown of the task running on `d` while `k` CPU devices compute: its shard's measured
  // figure for its kind (a fused backward: backward and update weighted by their times).
  double task_slowdown(int d, int k) const {
    const Dev& v = devs_[static_cast<std::size_t>(d)];
    const LaneTask& lt = lanes_[static_cast<std::size_t>(v.running)];
    const SimJob& j = job(lane_job_[static_cast<std::size_t>(v.running)]);
    const ShardCost& c = j.shards[static_cast<std::size_t>(lt.shard)];
    const Slowdown s = c.slowdown(k);
    if (!lt.training) return s.eval;
    switch (lt.kind) {
      case TaskKind::forward:
        return s.forward;
      case TaskKind::update:
        return s.update;
      case TaskKind::backward:
        if (!lt.shape.fused || c.backward + c.update <= 0) return s.backward;
        return (c.backward * s.backward + c.update * s.update) / (c.backward + c.update);
    }
    return 1.0;
  }

  // The set of computing CPU devices changed: every one's progress so far at its old slowdown
  // is booked and its end recomputed at the slowdown for the new count.
  void reschedule_contending() {
    const int k = static_cast<int>(contending_.size());
    for (int d : contending_) {
      Dev& v = devs_[static_cast<std::size_t>(d)];
      v.left = std::max(0.0, v.left - (now_ - v.since) / v.slow);
      v.since = now_;
      v.slow = task_slowdown(d, k);
      ++v.version;
      push({now_ + v.left * v.slow, seq_++, EvKind::computed, d,
            static_cast<std::uint64_t>(v.running) | (std::uint64_t{v.version} << 32)});
    }
  }

  // The contended task on `d` ended now: its compute (and store, in proportion to their times
  // alone) goes to the busy time, the trace and the estimator; the others speed up.
  void finish_contended(int d, int lane) {
    Dev& v = devs_[static_cast<std::size_t>(d)];
    contending_.erase(std::find(contending_.begin(), contending_.end(), d));
    const double total = v.alone_compute + v.alone_store;
    const double took = now_ - v.run_start;
    const double compute = total > 0 ? took * v.alone_compute / total : 0.0;
    const int jb = lane_job_[static_cast<std::size_t>(lane)];
    const LaneTask& lt = lanes_[static_cast<std::size_t>(lane)];
    const SimTask& t = tasks_[static_cast<std::size_t>(lane)];
    const SimDevice& dev = devices_[static_cast<std::size_t>(d)];
    v.busy += compute;
    if (opt_.trace) {
      const std::string& name = job(jb).name;
      const char* kind = lt.training ? task_kind_name(lt.kind) : "eval";
      if (t.load_end > t.load_start)
        result_.trace.push_back(
            {dev.name, name, lt.shard, "load", t.load_start, t.load_end, t.ph.load_bytes});
      result_.trace.push_back(
          {dev.name, name, lt.shard, kind, v.run_start, v.run_start + compute, 0});
      if (t.ph.store_bytes > 0)
        result_.trace.push_back(
            {dev.name, name, lt.shard, "store", v.run_start + compute, now_, t.ph.store_bytes});
    }
    if (lt.training) {
      estimator_.record(jb, lt.shard, lt.kind, compute);
      estimates_.touch(jb);
    }
    reschedule_contending();
  }

  void computed(int d, int lane, std::uint32_t version) {
    Dev& v = devs_[static_cast<std::size_t>(d)];
    if (contended(d)) {
      if (version != v.version || v.running != lane) return;  // rescheduled since
      finish_contended(d, lane);
    } else if (devices_[static_cast<std::size_t>(d)].kind == DeviceKind::cpu &&
               opt_.cpu_cores > 0) {
      --cpu_active_;
    }
    v.running = -1;
    ++result_.tasks;
    const int jb = lane_job_[static_cast<std::size_t>(lane)];
    const LaneTask& lt = lanes_[static_cast<std::size_t>(lane)];
    last_device_[static_cast<std::size_t>(jb)][static_cast<std::size_t>(lt.shard)] = d;
    set_inflight(d, v.inflight - 1);
    if (lt.node >= 0)
      node_done(jb, lt.node);
    else if (next_task(jb))
      push({now_ + opt_.submit_latency, seq_++, EvKind::submit, jb, 0});
    else
      finish_job(jb, now_);
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
  std::vector<std::vector<int>> last_device_;
  std::vector<Dev> devs_;
  std::vector<std::vector<ReadyTask>> pinned_;  // ready tasks of jobs pinned to each device
  std::set<int> pinned_devices_;                // devices with pinned ready tasks
  std::size_t pinned_ready_ = 0;
  std::vector<int> lane_job_;                           // job of each lane
  std::vector<std::vector<int>> lane_base_;             // per job with a strategy: its lanes
  std::vector<std::vector<Graph>> graphs_;              // per job with a strategy: train, eval
  std::vector<LaneTask> lanes_;                         // what each lane runs now
  std::vector<SimTask> tasks_;                          // the task each lane has in flight
  std::set<std::tuple<int, std::uint64_t, int>> free_;  // (inflight, last_dispatch, device)
  std::set<int> stealable_;                             // devices holding 2+ tasks
  std::unordered_map<std::uint64_t, int> pending_;      // task id -> lane, load in progress
  std::unordered_map<std::uint64_t, int> ready_lane_;   // task id -> lane, ready
  std::vector<ReadyTask> ready_;
  std::priority_queue<Ev, std::vector<Ev>, std::greater<Ev>> events_;
  double now_ = 0;
  std::uint64_t seq_ = 0, next_id_ = 1, next_seq_ = 0, dispatches_ = 0;
  int idle_ = 0, cpu_active_ = 0;
  std::vector<int> contending_;  // CPU devices computing, with SimOptions::contention
  SimResult result_;
};

}  // namespace

SimResult simulate(const std::vector<SimJob>& jobs, const std::vector<SimDevice>& devices,
                   const SimOptions& options) {
  check(!devices.empty(), "simulate: no devices");
  Simulation sim(jobs, devices, options);
  return sim.run();
}

JobBounds job_bounds(const SimJob& j, const SimDevice& dev, const SimOptions& options) {
  check(!j.shards.empty(), "job_bounds: job " + j.name + " has no shards");
  const int n = static_cast<int>(j.shards.size());
  std::int64_t passes = 0;
  if (j.eval_batches > 0)
    passes = j.eval_every > 0
                 ? j.steps / j.eval_every + ((j.steps % j.eval_every != 0 || j.steps == 0) ? 1 : 0)
                 : 1;
  JobBounds out;
  if (!j.is_default_strategy()) {
    // The first step loads no optimizer state (the first update creates it); later ones do.
    const std::int64_t steps = std::max<std::int64_t>(0, j.steps);
    const Graph train = train_graph(j, dev.link);
    const JobBounds t1 = graph_bounds(j, train, dev, options.submit_latency, true);
    const JobBounds t = graph_bounds(j, train, dev, options.submit_latency, false);
    JobBounds e;
    if (passes > 0) e = graph_bounds(j, eval_graph(j), dev, options.submit_latency, true);
    const auto s = static_cast<double>(steps), p = static_cast<double>(passes);
    out.work = s * t.work + p * e.work;
    out.chain =
        (steps > 0 ? t1.chain + (s - 1) * t.chain : 0.0) + p * e.chain +
        static_cast<double>(std::max<std::int64_t>(0, steps + passes - 1)) * options.submit_latency;
    return out;
  }
  double device_time = 0, chain = 0;
  std::int64_t tasks = 0;
  // `first`: the task of the first step (no optimizer state to load yet), else of each later one.
  auto add = [&](int s, TaskKind k, bool training, bool first, std::int64_t times) {
    if (times <= 0) return;
    const Phases p = phases(j, s, k, training, first, dev);
    device_time += static_cast<double>(times) * (p.compute + p.store);
    chain += static_cast<double>(times) * (p.load + p.compute + p.store);
    tasks += times;
  };
  const std::int64_t later = std::max<std::int64_t>(0, j.steps - 1);
  for (int s = 0; s < n; ++s) {
    add(s, TaskKind::forward, true, true, j.steps);
    add(s, TaskKind::backward, true, true, std::min<std::int64_t>(1, j.steps));
    add(s, TaskKind::backward, true, false, later);
    if (j.clip) add(s, TaskKind::update, true, true, std::min<std::int64_t>(1, j.steps));
    if (j.clip) add(s, TaskKind::update, true, false, later);
    add(s, TaskKind::forward, false, true, passes * j.eval_batches);
  }
  chain += static_cast<double>(std::max<std::int64_t>(0, tasks - 1)) * options.submit_latency;
  out.work = device_time;
  out.chain = chain;
  return out;
}

double makespan_lower_bound(const std::vector<SimJob>& jobs, const std::vector<SimDevice>& devices,
                            const SimOptions& options) {
  check(!devices.empty(), "makespan_lower_bound: no devices");
  const SimDevice& dev = devices.front();
  double work = 0, longest = 0;
  for (const SimJob& j : jobs) {
    const JobBounds b = job_bounds(j, dev, options);
    work += b.work;
    longest = std::max(longest, b.chain);
  }
  return std::max(work / static_cast<double>(devices.size()), longest);
}

SimResult simulate_sequential(const std::vector<SimJob>& jobs,
                              const std::vector<SimDevice>& devices, const SimOptions& options) {
  check(!devices.empty(), "simulate_sequential: no devices");
  SimResult out;
  out.busy_seconds.assign(devices.size(), 0.0);
  for (const SimJob& j : jobs) {
    const SimResult r = simulate({j}, devices, options);
    if (options.trace)
      for (TraceEvent e : r.trace) {
        e.start += out.makespan;
        e.end += out.makespan;
        out.trace.push_back(std::move(e));
      }
    out.makespan += r.makespan;
    out.job_end.push_back(out.makespan);
    for (std::size_t d = 0; d < devices.size(); ++d)
      out.busy_seconds[d] += r.busy_seconds[d];
    out.tasks += r.tasks;
    out.stolen += r.stolen;
    out.prefetched += r.prefetched;
    out.events += r.events;
  }
  for (std::size_t d = 0; d < devices.size(); ++d) {
    out.devices.push_back(devices[d].name);
    out.utilisation.emplace_back(devices[d].name,
                                 out.makespan > 0 ? out.busy_seconds[d] / out.makespan : 0.0);
  }
  return out;
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
  // The mean: a run's makespan adds task times up, slow outliers included.
  const auto mean = [&](const SimJob& j, int shard, const char* kind) {
    const std::vector<double>& v = measured[{j.name, shard, kind}];
    if (v.empty()) return 0.0;
    double sum = 0;
    for (double x : v)
      sum += x;
    return sum / static_cast<double>(v.size());
  };
  for (SimJob& j : jobs)
    for (int s = 0; s < static_cast<int>(j.shards.size()); ++s) {
      ShardCost& c = j.shards[static_cast<std::size_t>(s)];
      c.forward = mean(j, s, "forward");
      c.eval = mean(j, s, "eval");
      c.backward = mean(j, s, "backward");  // the fused update included
      c.update = j.clip ? mean(j, s, "update") : 0.0;
    }
  return jobs;
}

}  // namespace hydra
