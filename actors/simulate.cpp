#include "actors/simulate.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "actors/hydra.hpp"
#include "kernels/core/error.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "runtime/data/synthetic.hpp"

namespace hydra {

namespace {

int optimizer_slots_of(const Optimizer& opt) {
  return dynamic_cast<const SGD*>(&opt) ? 1 : 2;
}

// Steps, evaluation and clipping of `spec` as the runtime runs them, on data `d`.
void set_training(SimJob& j, const JobSpec& spec, const DataSplits& d) {
  const std::int64_t batches = (d.train.size() + spec.batch_size - 1) / spec.batch_size;
  j.steps = spec.max_steps > 0 ? spec.max_steps : spec.epochs * batches;
  j.eval_every = spec.eval_every;
  j.eval_batches = (d.validation.size() + spec.batch_size - 1) / spec.batch_size;
  j.clip = spec.clip_grad_norm > 0;
}

// The parallel strategy the runtime will run `spec` with.
void set_strategy(SimJob& j, const JobSpec& spec) {
  j.replicas = static_cast<int>(spec.replicas);
  j.sharded_data_parallel = spec.sharded_data_parallel;
  j.micro_batches = static_cast<int>(spec.micro_batches);
  j.device_affinity = spec.device_affinity;
}

Shape batch_input(const JobSpec& spec, const DataSplits& d) {
  Shape input = d.train.sample_shape();
  input.insert(input.begin(), spec.batch_size);
  return input;
}

}  // namespace

SimJob to_sim_job(const JobSpec& spec, std::size_t shard_budget, std::size_t run_shards,
                  CostModel& costs, int concurrent) {
  Model m = build_job_model(spec);
  m.init(spec.seed);
  OptimizerPtr opt = spec.make_optimizer();
  const DataSplits d = spec.data();
  PartitionOptions po;
  po.budget_bytes = shard_budget;
  po.optimizer_slots = optimizer_slots_of(*opt);
  po.shards = spec.shards > 0 ? spec.shards : run_shards;
  if (concurrent <= 1) {
    SimJob j = make_sim_job(spec.name, m, batch_input(spec, d), po, *opt, Device::cpu(0), costs);
    set_training(j, spec, d);
    set_strategy(j, spec);
    return j;
  }
  // Copies of the model for the contention measurement (its own parameters each).
  std::vector<Model> copies;
  std::vector<Model*> others;
  for (int i = 1; i < concurrent; ++i) {
    copies.push_back(build_job_model(spec));
    copies.back().init(spec.seed);
  }
  for (Model& c : copies)
    others.push_back(&c);
  SimJob j;
  j.name = spec.name;
  for (const ShardSpec& s : partition(m, batch_input(spec, d), po))
    j.shards.push_back(
        costs.contention(m, others, s.begin, s.end, s.input_shape, *opt, Device::cpu(0), po.dtype));
  set_training(j, spec, d);
  set_strategy(j, spec);
  return j;
}

PlanJob to_plan_job(const JobSpec& spec, const DataSplits& data, std::size_t shard_budget,
                    std::size_t run_shards, std::size_t extra_options, Device device,
                    CostModel& costs) {
  check(static_cast<bool>(spec.make_model) || !spec.model_spec.empty(),
        "job " + spec.name + " has no make_model and no model_spec");
  check(static_cast<bool>(spec.make_optimizer), "job " + spec.name + " has no make_optimizer");
  check(spec.batch_size > 0, "job " + spec.name + ": batch_size must be positive");
  Model m = build_job_model(spec);
  m.init(spec.seed);
  OptimizerPtr opt = spec.make_optimizer();
  const Shape input = batch_input(spec, data);
  PartitionOptions po;
  po.budget_bytes = shard_budget;
  po.optimizer_slots = optimizer_slots_of(*opt);
  const std::size_t fixed = spec.shards > 0 ? spec.shards : run_shards;
  po.shards = fixed;
  std::vector<ShardSpec> fewest;
  try {
    fewest = partition(m, input, po);
  } catch (const std::exception& e) {
    throw Error("cannot partition job " + spec.name + ": " + e.what());
  }
  PlanJob p;
  p.job.name = spec.name;
  set_training(p.job, spec, data);
  p.batch_size = spec.batch_size;
  // The fewest shards that fit (or the count the spec fixes), then up to `extra_options` more.
  const std::size_t last =
      fixed > 0 ? fewest.size() : std::min(m.size(), fewest.size() + extra_options);
  for (std::size_t k = fewest.size(); k <= last; ++k) {
    std::vector<ShardSpec> cut = fewest;
    if (k != fewest.size()) {
      po.shards = k;
      try {
        cut = partition(m, input, po);
      } catch (const std::exception&) {
        break;  // no cut of k shards fits
      }
    }
    ShardOption o;
    for (const ShardSpec& s : cut) {
      o.shards.push_back(costs.shard(m, s.begin, s.end, s.input_shape, *opt, device, po.dtype));
      o.memory.push_back(s.memory);
      o.begins.push_back(s.begin);
    }
    p.options.push_back(std::move(o));
  }
  p.job.shards = p.options.front().shards;
  return p;
}

double SimulationCheck::spread() const {
  if (runs.size() < 2 || measured <= 0) return 0;
  const auto [lo, hi] = std::minmax_element(runs.begin(), runs.end());
  return (*hi - *lo) / measured;
}

namespace {

double makespan_of(const std::vector<TraceEvent>& trace) {
  double first = 1e30, last = 0;
  for (const TraceEvent& e : trace) {
    first = std::min(first, e.start);
    last = std::max(last, e.end);
  }
  return trace.empty() ? 0.0 : last - first;
}

}  // namespace

SimulationCheck check_simulation(const std::string& name, const std::vector<JobSpec>& jobs,
                                 const CheckOptions& options, CostModel& costs) {
  check(options.devices >= 1, "check_simulation: at least one device");
  check(options.repeats >= 1, "check_simulation: at least one run");
  RuntimeOptions o;
  for (int i = 0; i < options.devices; ++i)
    o.devices.push_back({Device::cpu(i), options.budget});
  o.policy = options.policy;
  const std::size_t shard_budget = options.budget > 0 ? options.budget / 2 : SIZE_MAX / 4;
  std::vector<SimJob> sim_jobs;
  for (const JobSpec& j : jobs)
    sim_jobs.push_back(to_sim_job(j, shard_budget, 0, costs, options.devices));
  SimulationCheck c;
  c.name = name;
  c.cores = CostModel::host_parallelism(2);
  std::vector<RunReport> reports;
  for (int r = 0; r < options.repeats; ++r) {
    reports.push_back(run(jobs, o));
    c.runs.push_back(makespan_of(reports.back().trace));
  }
  std::vector<std::size_t> order(reports.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return c.runs[a] < c.runs[b]; });
  const RunReport& r = reports[order[order.size() / 2]];
  c.measured = c.runs[order[order.size() / 2]];
  c.jobs = r.jobs;
  const std::vector<SimDevice> sd = uniform_devices(options.devices, costs.link(Device::cpu(0)));
  SimOptions so;
  so.policy = options.policy;
  so.contention = true;
  so.submit_latency = options.overhead;
  const SimResult s = simulate(sim_jobs, sd, so);
  c.simulated = s.makespan;
  c.tasks = s.tasks;
  SimOptions fo;
  fo.policy = options.policy;
  fo.cpu_cores = c.cores;
  fo.submit_latency = options.fitted.model;
  c.shared_cores = simulate(sim_jobs, sd, fo).makespan;
  SimOptions ro;
  ro.policy = options.policy;
  ro.submit_latency = options.overhead + options.fitted.replay;
  c.replayed = simulate(with_measured_times(sim_jobs, r.trace), sd, ro).makespan;
  return c;
}

SimLatency calibrate_latency(const SimulationCheck& c) {
  const auto per_task = [&](double simulated) {
    return c.tasks == 0 ? 0.0
                        : std::max(0.0, (c.measured - simulated) / static_cast<double>(c.tasks));
  };
  return {per_task(c.shared_cores), per_task(c.replayed)};
}

double task_overhead(const std::vector<TraceEvent>& trace) {
  std::map<std::string, std::vector<const TraceEvent*>> by_job;
  for (const TraceEvent& e : trace)
    by_job[e.job].push_back(&e);
  double sum = 0;
  std::size_t gaps = 0;
  for (auto& [job, events] : by_job) {
    std::sort(events.begin(), events.end(),
              [](const TraceEvent* a, const TraceEvent* b) { return a->start < b->start; });
    double end = -1;   // end of the job's previous task (compute, or its store)
    double loads = 0;  // load seconds since then
    for (const TraceEvent* e : events) {
      if (is_compute_kind(e->kind)) {
        if (end >= 0) {
          sum += std::max(0.0, e->start - end - loads);
          ++gaps;
        }
        end = e->end;
        loads = 0;
      } else if (e->kind == "store") {
        end = std::max(end, e->end);
      } else if (e->kind == "load" && end >= 0) {
        loads += std::max(0.0, e->end - std::max(e->start, end));
      }
    }
  }
  check(gaps > 0, "task_overhead: no job in the trace has two compute tasks");
  return sum / static_cast<double>(gaps);
}

double measure_task_overhead(std::int64_t steps) {
  RuntimeOptions o;
  o.devices = {{Device::cpu(0), 0}};
  const RunReport r = run({synthetic_mlp_job("overhead", 16, 1, steps, 2)}, o);
  for (const JobResult& j : r.jobs)
    check(j.status == JobStatus::done, "measure_task_overhead: the run failed: " + j.error);
  return task_overhead(r.trace);
}

double RankAgreement::agreement() const {
  const int apart = concordant + discordant + simulated_ties;
  return apart == 0 ? 1.0 : static_cast<double>(concordant) / apart;
}

RankAgreement rank_agreement(const std::vector<double>& measured,
                             const std::vector<double>& simulated, double tie) {
  check(measured.size() == simulated.size(),
        "rank_agreement: as many simulated makespans as measured ones");
  check(tie >= 0, "rank_agreement: the tie tolerance must not be negative");
  // -1, 0 (within `tie` of each other) or 1.
  const auto order = [tie](double a, double b) {
    const double hi = std::max(a, b), lo = std::min(a, b);
    if (hi <= 0 || hi - lo <= tie * hi) return 0;
    return a < b ? -1 : 1;
  };
  RankAgreement out;
  int sim_ties_all = 0;
  for (std::size_t i = 0; i < measured.size(); ++i)
    for (std::size_t j = i + 1; j < measured.size(); ++j) {
      ++out.pairs;
      const int m = order(measured[i], measured[j]), s = order(simulated[i], simulated[j]);
      if (s == 0) ++sim_ties_all;
      if (m == 0)
        ++out.measured_ties;
      else if (s == 0)
        ++out.simulated_ties;
      else if (m == s)
        ++out.concordant;
      else
        ++out.discordant;
    }
  const double n0 = out.pairs;
  const double denom = std::sqrt((n0 - out.measured_ties) * (n0 - sim_ties_all));
  out.tau_b = denom > 0 ? (out.concordant - out.discordant) / denom : 0.0;
  return out;
}

JobSpec synthetic_mlp_job(const std::string& name, std::int64_t width, int hidden,
                          std::int64_t steps, std::size_t shards, bool adamw) {
  JobSpec j;
  j.name = name;
  j.make_model = [width, hidden] {
    return make_mlp(128, std::vector<std::int64_t>(static_cast<std::size_t>(hidden), width), 10);
  };
  j.make_optimizer = [adamw]() -> OptimizerPtr {
    if (adamw) return std::make_unique<AdamW>(1e-3);
    return std::make_unique<SGD>(0.01, 0.9);
  };
  j.data = [] {
    auto [train, val] = make_synthetic_classification(2048, 128, 10, 3).split(2048 * 7 / 8);
    return DataSplits{train, val};
  };
  j.data_key = "synthetic-2048x128";
  j.batch_size = 128;
  j.max_steps = steps;
  j.shards = shards;
  return j;
}

}  // namespace hydra
