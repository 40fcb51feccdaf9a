#pragma once
// From a sweep file (runtime/sweep/) to the runtime: the dataset loaded once, one JobSpec per
// configuration of the search space, the devices and the early-stopping rule.
//
//   sweep::SweepFile file = sweep::parse_sweep_file("examples/sweeps/fashion_mnist.json");
//   SweepPlan plan = plan_sweep(file);        // loads the data; throws hydra::Error on mistakes
//   RuntimeOptions o;
//   o.devices = sweep_devices(file);
//   o.early_stopping = make_sweep_rule(plan);  // null without early stopping or time budget
//   RunReport r = run(plan.jobs, o);
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "runtime/sweep/asha.hpp"
#include "runtime/sweep/search_space.hpp"
#include "runtime/sweep/sweep_file.hpp"

namespace hydra {

struct SweepPlan {
  sweep::SweepFile file;
  std::vector<sweep::Trial> trials;
  std::vector<JobSpec> jobs;  // one per trial, in the same order, named after the trial
  sweep::BudgetSpec budget;   // the file's, or the smaller one of a quick run
  std::vector<std::int64_t> steps_per_epoch, total_steps;  // per job
  std::string data_summary;  // e.g. "fashion-mnist from DIR: 30000 training, 5000 validation"
};

// Loads the dataset (an error names the file) and makes the jobs. `quick`: a smoke run with at
// most 4000 training and 1000 validation samples (kjv: windows; 64 validation windows) and a
// budget of 1 epoch or at most 60 steps (validations at least every 20).
SweepPlan plan_sweep(const sweep::SweepFile& file, bool quick = false);

// The devices of "devices": default (all GPUs, else two virtual CPU devices), cpu (count virtual
// devices), gpu (the first count GPUs, 0: all). Throws hydra::Error naming the field when no GPU
// exists for "gpu". For "nodes": none (the run uses the nodes' devices only, sweep_nodes).
std::vector<DeviceSpec> sweep_devices(const sweep::SweepFile& file);

// The cluster nodes of a run: "devices.nodes" when "devices.kind" is "nodes", then `extra` (the
// command line's --nodes). Throws hydra::Error when there are nodes but `secret` is empty.
std::vector<std::string> sweep_nodes(const sweep::SweepFile& file,
                                     const std::vector<std::string>& extra,
                                     const std::string& secret);

// The sweep's early-stopping rule: successive halving ("asha"/"sha", resources in each job's
// steps or epochs) inside a time budget when one is set; null when there is neither. `asha`
// receives the successive-halving rule (null when none) for its recorded decisions.
std::shared_ptr<EarlyStopping> make_sweep_rule(const SweepPlan& plan,
                                               std::shared_ptr<sweep::Asha>* asha = nullptr);

}  // namespace hydra
