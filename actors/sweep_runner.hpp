#pragma once
// A sweep run in its directory, as `hydra run` and `hydra resume` do it.
//
// DIR (default runs/<sweep name>) holds: sweep.json (the sweep file as given), jobs.json (the
// expanded job list and the run's options), jobs/<job>.json (each job's result as soon as it
// ends), reports.jsonl (every validation report, to rebuild the early-stopping state), state/
// (the runtime's training-state files), and at the end the runtime's reports (trace.json,
// gantt.svg, the curve SVGs, results.csv, curves.csv, checkpoints/), curves.json, ranking.csv
// (the ranked table without timings: equal for equal results), results.txt and best.ckpt (the
// best job's checkpoint).
//
// resume_sweep(DIR): jobs with a result in jobs/ are not run again, the others continue from
// their state file (or start over without one), the early-stopping rule replays reports.jsonl,
// and the final reports cover every job.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/sweep_jobs.hpp"

namespace hydra {

struct SweepRunOptions {
  bool quick = false;     // plan_sweep's smoke run (recorded in DIR, kept by resume)
  bool progress = false;  // the runtime's live display
  // Cluster nodes whose devices join the sweep file's devices (RuntimeOptions::nodes), and the
  // shared secret they know.
  std::vector<std::string> nodes;
  std::string node_secret;
  double node_link_timeout_seconds = 3;  // RuntimeOptions::node_link_timeout_seconds
  TlsFiles node_tls;                     // RuntimeOptions::node_tls
  // Plan the jobs' strategies before training (plan_run: each distinct shard measured once) and
  // run with them (`hydra run --plan`); with `replan`, the jobs still training are re-planned
  // whenever jobs end (RuntimeOptions::replan). Not with cluster nodes.
  bool plan = false;
  bool replan = true;
  // Called once the jobs and devices are known, before training (to print a summary).
  std::function<void(const SweepPlan&, const RuntimeOptions&, std::size_t to_run)> on_start;
};

struct SweepRun {
  std::string dir;
  SweepPlan plan;
  std::vector<JobResult> results;     // every job, in plan order
  std::size_t reused = 0;             // results read back from DIR (resume)
  RunReport report;                   // this process's run (the jobs it trained)
  std::shared_ptr<sweep::Asha> asha;  // the successive-halving rule (null without one)
  int best = -1;                      // index of the best finished job by the sweep's metric
  std::string table;                  // format_results_table(results, metric)
};

// Starts the sweep of `sweep_file` in `dir` ("": runs/<name>, or the first runs/<name>-N, N >= 2,
// that holds no sweep). Throws hydra::Error for a bad sweep file, a missing dataset, or a `dir`
// given explicitly that already holds a sweep (resume it instead).
SweepRun run_sweep(const std::string& sweep_file, std::string dir, const SweepRunOptions& options);
// Continues the sweep in `dir`. Throws hydra::Error when `dir` holds no sweep.
SweepRun resume_sweep(const std::string& dir, const SweepRunOptions& options);

// The ranked results as CSV without timings or paths: rank, name, status, config columns,
// best_val_accuracy, best_val_loss, best_step, steps (ranked as format_results_table ranks).
std::string ranking_csv(const std::vector<JobResult>& results, const std::string& metric);

}  // namespace hydra
