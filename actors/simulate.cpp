#include "actors/simulate.hpp"

#include <algorithm>
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

Shape batch_input(const JobSpec& spec, const DataSplits& d) {
  Shape input = d.train.sample_shape();
  input.insert(input.begin(), spec.batch_size);
  return input;
}

}  // namespace

SimJob to_sim_job(const JobSpec& spec, std::size_t shard_budget, std::size_t run_shards,
                  CostModel& costs) {
  Model m = build_job_model(spec);
  m.init(spec.seed);
  OptimizerPtr opt = spec.make_optimizer();
  const DataSplits d = spec.data();
  PartitionOptions po;
  po.budget_bytes = shard_budget;
  po.optimizer_slots = optimizer_slots_of(*opt);
  po.shards = spec.shards > 0 ? spec.shards : run_shards;
  SimJob j = make_sim_job(spec.name, m, batch_input(spec, d), po, *opt, Device::cpu(0), costs);
  set_training(j, spec, d);
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

SimulationCheck check_simulation(const std::string& name, const std::vector<JobSpec>& jobs,
                                 int devices, std::size_t budget, const std::string& policy,
                                 CostModel& costs, SimLatency latency) {
  RuntimeOptions o;
  for (int i = 0; i < devices; ++i)
    o.devices.push_back({Device::cpu(i), budget});
  o.policy = policy;
  const std::size_t shard_budget = budget > 0 ? budget / 2 : SIZE_MAX / 4;
  std::vector<SimJob> sim_jobs;
  for (const JobSpec& j : jobs)
    sim_jobs.push_back(to_sim_job(j, shard_budget, 0, costs));
  SimulationCheck c;
  c.name = name;
  c.cores = CostModel::host_parallelism(2);
  const RunReport r = run(jobs, o);
  c.jobs = r.jobs;
  double first = 1e30, last = 0;
  for (const TraceEvent& e : r.trace) {
    first = std::min(first, e.start);
    last = std::max(last, e.end);
  }
  c.measured = last - first;
  const std::vector<SimDevice> sd = uniform_devices(devices, costs.link(Device::cpu(0)));
  SimOptions so;
  so.policy = policy;
  so.cpu_cores = c.cores;
  so.submit_latency = latency.model;
  const SimResult s = simulate(sim_jobs, sd, so);
  c.simulated = s.makespan;
  c.tasks = s.tasks;
  SimOptions ro;
  ro.policy = policy;
  ro.submit_latency = latency.replay;
  c.replayed = simulate(with_measured_times(sim_jobs, r.trace), sd, ro).makespan;
  return c;
}

SimLatency calibrate_latency(const SimulationCheck& c) {
  const auto per_task = [&](double simulated) {
    return c.tasks == 0 ? 0.0
                        : std::max(0.0, (c.measured - simulated) / static_cast<double>(c.tasks));
  };
  return {per_task(c.simulated), per_task(c.replayed)};
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
