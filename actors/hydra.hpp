#pragma once
// Hydra's public training API: train many models at once with shard parallelism.
//
//   hydra::JobSpec job;
//   job.name = "mlp-lr0.1";
//   job.config = {{"lr", "0.1"}};
//   job.make_model = [] { return hydra::make_mlp(784, {256}, 10); };
//   job.make_optimizer = [] { return std::make_unique<hydra::SGD>(0.1, 0.9); };
//   job.data = [] { ... return hydra::DataSplits{train, validation}; };
//   job.data_key = "fashion-mnist";   // jobs with the same key share one load
//   job.batch_size = 128; job.epochs = 2; job.eval_every = 100;
//
//   hydra::RuntimeOptions opt;          // default: all GPUs, else 2 virtual CPU devices
//   opt.out_dir = "runs/sweep1";        // trace.json, gantt.svg, curves, results.csv, checkpoints/
//   std::vector<hydra::JobResult> results = hydra::train({job, ...}, opt);
//
// Each model is cut into sequential shards that fit the smallest device budget (halved, because
// a device holds the running shard and the prefetched next one). Shard tasks of all models go to
// one scheduler; every device pulls the next task as soon as it can take one. A job that fails
// (bad data path, a layer too big for every device, out of memory at run time, NaN loss) ends
// with status failed and its error; the other jobs continue.
//
// Threads: on CPU devices each device actor runs kernels on its own thread, so the runtime sets
// OpenBLAS to one thread per call (openblas_set_num_threads(1)) for the whole process when the
// run starts; set it back yourself if you need multi-threaded BLAS afterwards.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "actors/checkpoint.hpp"
#include "actors/cluster/link_stats.hpp"
#include "actors/cluster/tls_files.hpp"
#include "actors/job_spec.hpp"
#include "actors/messages.hpp"
#include "actors/strategy_change.hpp"
#include "actors/training_program.hpp"
#include "runtime/early_stopping.hpp"
#include "runtime/job_result.hpp"
#include "runtime/trace.hpp"

namespace hydra {

struct RunPlan;  // actors/plan.hpp

struct DeviceSpec {
  Device device = Device::cpu(0);  // cpu:N (virtual CPU device) or cuda:N
  // Memory budget in bytes; 0: the device pool's capacity. For cpu:N the runtime sets the pool's
  // capacity to the budget (virtual devices must be distinct). Several DeviceSpecs may share one
  // GPU (separate actors, streams and budgets; the budget then only limits partitioning).
  std::size_t memory_bytes = 0;
};

struct RuntimeOptions {
  std::vector<DeviceSpec> devices;  // empty: default_devices()
  std::string policy = "lrtf";      // "lrtf" (Sharded-LRTF), "fifo", "random"
  std::uint64_t policy_seed = 0;
  std::size_t shards = 0;  // 0: the partitioner decides from the smallest budget
  bool progress = false;   // live progress display (jobs and devices) on stdout
  // "": write nothing. Else: trace.json (Chrome trace), gantt.svg, train_loss.svg,
  // val_loss.svg, val_accuracy.svg, results.csv, curves.csv and checkpoints/<job>.ckpt (the
  // parameters at the best validation point; format in actors/checkpoint.hpp), and
  // state/<job>.state (the whole training state, at every validation and every
  // JobSpec::checkpoint_every steps; JobSpec::resume_from continues from it).
  std::string out_dir;
  // Consulted after every validation of every job; null: every job trains to its end. One
  // actor owns the rule and serialises every call (actors/early_stopping_actor.hpp); job names
  // must be distinct. A stopped job ends with JobStatus::stopped and JobResult::stop_reason.
  std::shared_ptr<EarlyStopping> early_stopping;
  // Called on the thread that runs run() with each job's result as soon as it arrives (jobs end
  // in any order), e.g. to save it before the whole run is over.
  std::function<void(const JobResult&)> on_job_end;
  // Cluster nodes ("HOST:PORT", each running build/examples/hydra_node) whose devices join the
  // run beside `devices`; with nodes, an empty `devices` means no local devices. Jobs that run
  // there need JobSpec::model_spec. Every node must know `node_secret` (the handshake proves it
  // both ways; see actors/cluster/protocol.hpp).
  std::vector<std::string> nodes;
  std::string node_secret;
  // Mutual TLS on the node links (CAF's OpenSSL module; README "Several machines"): this
  // coordinator's certificate and key, and the CA that signed the nodes' certificates. Nodes
  // started with TLS (`hydra node --tls-*`) take only coordinators whose certificate that CA
  // signed; the shared-secret handshake runs inside the TLS link as before. Empty: plain TCP.
  TlsFiles node_tls;
  double node_timeout_seconds = 10;  // per handshake step
  // A link that carried nothing for this long is declared dead (CAF's middleman.connection-timeout;
  // heartbeats go every timeout / 15, so a live but idle link never trips it). Its tasks go back
  // to the scheduler. Nodes have the same setting (`hydra node --link-timeout`).
  double node_link_timeout_seconds = 3;
  // A node whose link was lost is contacted again every second until the run ends; when it
  // answers the handshake, its devices take their slots back.
  bool node_rejoin = true;
  // The plan the jobs' strategies came from (plan_run, then run(apply_plan(jobs, plan), ...));
  // null: none. With a plan, re-planning (below) is possible.
  std::shared_ptr<const RunPlan> plan;
  // Re-planning during the run (README "Re-planning during a run"): when a job ends (done,
  // failed, stopped early) the jobs still training are planned again from their steps done, and a
  // job whose strategy changes (replicas, sharded data parallelism, micro-batches, device
  // affinity; never its shard count) switches at its next step boundary. On by default whenever
  // `plan` is set; each change is in RunReport::strategy_changes.
  struct Replan {
    bool enabled = true;
    // A new plan is applied only when the simulator predicts the work left to end at least this
    // fraction sooner than with the current strategies (in [0, 1)).
    double min_gain = 0.05;
    // ... and at least this many seconds sooner (>= 0): a switch costs a little (new shard
    // actors, copies of the state), and tiny predicted gains are within the simulator's error.
    double min_gain_seconds = 0.1;
    int max_evaluations = 16;       // whole-plan simulations per re-plan (>= 1)
    double time_limit_seconds = 1;  // per re-plan (> 0)
  } replan;
};

// All GPUs if there are any, else two virtual CPU devices (cpu:0, cpu:1) with unlimited pools.
std::vector<DeviceSpec> default_devices();

// Everything a run produced, for reports and tests.
struct RunReport {
  std::vector<JobResult> jobs;       // in the order of the specs
  std::vector<std::string> devices;  // device names, by index
  actors::SchedulerStats scheduler;
  std::vector<TraceEvent> trace;                            // every task and transfer
  std::vector<std::pair<std::string, double>> utilisation;  // busy fraction per device
  std::vector<LinkStats> links;  // per remote device: tasks, bytes and seconds each way
  // Re-planning (RuntimeOptions::plan and replan): every strategy switch in the order applied,
  // how many re-plans ran (one per batch of job ends) and their search time in all.
  std::vector<StrategyChange> strategy_changes;
  int replans = 0;
  double replan_seconds = 0;
  double seconds = 0;
};

// Trains all jobs to completion (or failure). Throws hydra::Error only for bad options (no
// devices, an unknown policy, a CUDA device that does not exist, a plan for other jobs or
// devices, re-planning limits out of range); job failures are reported in the results.
RunReport run(const std::vector<JobSpec>& jobs, const RuntimeOptions& options = {});
std::vector<JobResult> train(const std::vector<JobSpec>& jobs, const RuntimeOptions& options = {});

// Sets the number of OpenBLAS threads used per BLAS call (process-wide).
void set_blas_threads(int threads);

}  // namespace hydra
