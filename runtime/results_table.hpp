#pragma once
// The results of a sweep as a ranked text table and as CSV files for later tools.
//
//   std::cout << format_results_table(results, "val_accuracy");
//   write_results_csv(results, "out/results.csv");
//   write_curves_csv(results, "out/curves.csv");
#include <string>
#include <vector>

#include "runtime/job_result.hpp"

namespace hydra {

// A fixed-width table, one row per job: rank, name, one column per config key (the union of
// all jobs' keys, sorted; empty where a job lacks one), best validation accuracy and loss, best
// step, steps, time and status. Ranked by `sort_key`: "val_accuracy" (best_val_accuracy,
// highest first) or "val_loss" (best_val_loss, lowest first); ties by name. Jobs without a
// validation point (best_step < 0) or with a non-finite metric come after the ranked ones with
// rank "-", failed jobs come last, and a "failed jobs" section below the table gives each
// failed job's error. Throws hydra::Error for another sort key.
std::string format_results_table(std::vector<JobResult> results,
                                 const std::string& sort_key = "val_accuracy");

// One CSV row per job (in the given order) with a header: name, status, the config keys (as
// in the table; a key that equals a fixed column name gets the prefix "config:"),
// best_val_accuracy, best_val_loss, best_step, steps, seconds, samples_per_second,
// checkpoint_path, error. Numbers in full precision; NaN and infinities as nan, inf, -inf.
std::string results_csv(const std::vector<JobResult>& results);
// Every curve point of every job: header job,curve,step,epoch,value; curve is curve_name().
std::string curves_csv(const std::vector<JobResult>& results);
// The same, written to `path`; throw hydra::Error naming the path on I/O failure.
void write_results_csv(const std::vector<JobResult>& results, const std::string& path);
void write_curves_csv(const std::vector<JobResult>& results, const std::string& path);

}  // namespace hydra
