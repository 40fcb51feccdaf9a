#include "actors/plan.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>

#include "actors/simulate.hpp"
#include "kernels/core/error.hpp"
#include "kernels/core/memory_pool.hpp"
#include "runtime/duration_format.hpp"
#include "runtime/scheduling_policy.hpp"

namespace hydra {

RunPlan plan_run(const std::vector<JobSpec>& jobs, const RuntimeOptions& options, CostModel& costs,
                 PlannerOptions planner, std::size_t extra_shard_options) {
  const std::vector<DeviceSpec> specs =
      options.devices.empty() ? default_devices() : options.devices;
  check(!specs.empty(), "plan_run: no devices");
  make_policy(options.policy);  // an unknown policy is an error here too
  RunPlan out;
  std::size_t smallest = SIZE_MAX;
  std::map<int, int> per_gpu;
  for (const DeviceSpec& s : specs) {
    check(s.device.kind == DeviceKind::cpu || s.device.kind == DeviceKind::cuda,
          "plan_run: device " + s.device.str() + " cannot run tasks (use cpu:N or cuda:N)");
    const std::size_t budget =
        s.memory_bytes > 0 ? s.memory_bytes : memory_pool(s.device).capacity();
    smallest = std::min(smallest, budget);
    SimDevice d;
    d.kind = s.device.kind;
    d.name = s.device.str();
    if (s.device.kind == DeviceKind::cuda) {
      const int k = per_gpu[s.device.index]++;
      if (k > 0) d.name += "/" + std::to_string(k);
    }
    out.devices.push_back(d);
  }
  // Costs measured on the first device's kind (cpu:0 stands for every virtual CPU device).
  const Device measure_on =
      specs.front().device.kind == DeviceKind::cuda ? specs.front().device : Device::cpu(0);
  out.device_kind = measure_on.kind == DeviceKind::cuda ? "cuda" : "cpu";
  const LinkCost link = costs.link(measure_on);
  for (SimDevice& d : out.devices)
    d.link = link;
  const bool unlimited = smallest == SIZE_MAX || smallest >= SIZE_MAX / 4;
  const std::size_t shard_budget = unlimited ? SIZE_MAX / 4 : smallest / 2;
  planner.device_memory = unlimited ? 0 : smallest;
  planner.sim.policy = options.policy;
  planner.sim.policy_seed = options.policy_seed;
  // Each data key loaded once (the runtime shares it the same way).
  std::map<std::string, std::shared_ptr<const DataSplits>> loaded;
  for (const JobSpec& spec : jobs) {
    check(static_cast<bool>(spec.data), "job " + spec.name + " has no data");
    std::shared_ptr<const DataSplits> d;
    if (!spec.data_key.empty()) d = loaded[spec.data_key];
    if (!d) {
      d = std::make_shared<const DataSplits>(spec.data());
      if (!spec.data_key.empty()) loaded[spec.data_key] = d;
    }
    out.jobs.push_back(to_plan_job(spec, *d, shard_budget, options.shards, extra_shard_options,
                                   measure_on, costs));
  }
  out.options = planner;
  out.plan = plan(out.jobs, out.devices, planner);
  return out;
}

RunPlan plan_run(const std::vector<JobSpec>& jobs, const RuntimeOptions& options) {
  CostModel costs;
  return plan_run(jobs, options, costs);
}

namespace {

std::string cuts_of(const PlanJob& job, const JobStrategy& s) {
  const ShardOption& o = job.options[s.option];
  if (o.begins.size() < 2) return "";
  std::string c = " at layers";
  for (std::size_t k = 1; k < o.begins.size(); ++k) {
    c += k == 1 ? ' ' : ',';
    c += std::to_string(o.begins[k]);
  }
  return c;
}

std::string padded(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

}  // namespace

std::string explain(const RunPlan& rp) {
  const Plan& p = rp.plan;
  std::size_t name_w = 4, strat_w = 8;
  std::vector<std::string> strat;
  for (std::size_t j = 0; j < rp.jobs.size(); ++j) {
    strat.push_back(p.strategies[j].describe() + cuts_of(rp.jobs[j], p.strategies[j]));
    name_w = std::max(name_w, rp.jobs[j].job.name.size());
    strat_w = std::max(strat_w, strat.back().size());
  }
  std::string out = "Plan for " + std::to_string(rp.jobs.size()) + " jobs on " +
                    std::to_string(rp.devices.size()) + " devices (costs measured on " +
                    rp.device_kind + ", policy " + rp.options.sim.policy + ", device memory " +
                    (rp.options.device_memory > 0 ? format_bytes(rp.options.device_memory)
                                                  : std::string("unlimited")) +
                    ")\n";
  out += padded("job", name_w) + "  " + padded("strategy", strat_w) +
         "  steps  predicted end  memory/device\n";
  for (std::size_t j = 0; j < rp.jobs.size(); ++j) {
    char line[96];
    std::snprintf(line, sizeof line, "  %5lld  %13s  %13s\n",
                  static_cast<long long>(rp.jobs[j].job.steps),
                  format_duration(p.job_end[j]).c_str(), format_bytes(p.job_memory[j]).c_str());
    out += padded(rp.jobs[j].job.name, name_w) + "  " + padded(strat[j], strat_w) + line;
  }
  out += "device peak memory:";
  for (std::size_t d = 0; d < rp.devices.size() && d < p.device_memory.size(); ++d)
    out += " " + rp.devices[d].name + " " + format_bytes(p.device_memory[d]) +
           (d + 1 < rp.devices.size() ? "," : "");
  out += "\n";
  char tail[256];
  std::snprintf(tail, sizeof tail,
                "predicted makespan %s (default strategies %s), lower bound %s: %.3fx the bound; "
                "%d simulations in %.2f s\n",
                format_duration(p.makespan).c_str(), format_duration(p.default_makespan).c_str(),
                format_duration(p.lower_bound).c_str(),
                p.lower_bound > 0 ? p.makespan / p.lower_bound : 1.0, p.evaluations,
                p.search_seconds);
  out += tail;
  return out;
}

std::vector<JobSpec> apply_plan(std::vector<JobSpec> jobs, const RunPlan& rp) {
  check(jobs.size() == rp.plan.strategies.size(), "apply_plan: " + std::to_string(jobs.size()) +
                                                      " jobs but the plan has " +
                                                      std::to_string(rp.plan.strategies.size()));
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    check(jobs[j].name == rp.jobs[j].job.name, "apply_plan: job " + std::to_string(j) + " is " +
                                                   jobs[j].name + " but the plan's is " +
                                                   rp.jobs[j].job.name);
    const JobStrategy& s = rp.plan.strategies[j];
    jobs[j].shards = static_cast<std::size_t>(s.shards);
    jobs[j].replicas = static_cast<std::size_t>(s.replicas);
    jobs[j].sharded_data_parallel = s.sharded_data_parallel;
    jobs[j].micro_batches = s.micro_batches;
    jobs[j].device_affinity = s.device_affinity;
  }
  return jobs;
}

}  // namespace hydra
