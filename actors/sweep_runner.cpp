#include "actors/sweep_runner.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "actors/plan.hpp"
#include "runtime/results_table.hpp"
#include "runtime/svg_curves.hpp"
#include "runtime/sweep/job_result_json.hpp"
#include "runtime/sweep/report_log.hpp"

namespace hydra {

namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Written to a temporary name and renamed, so a kill never leaves half a file.
void write_text(const fs::path& p, const std::string& text) {
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw Error("cannot write " + tmp.string());
  }
  fs::rename(tmp, p);
}

fs::path result_path(const std::string& dir, const std::string& job) {
  return fs::path(dir) / "jobs" / (job + ".json");
}

double metric_of(const JobResult& r, const std::string& metric) {
  return metric == "val_loss" ? r.best_val_loss : r.best_val_accuracy;
}

bool ranked(const JobResult& r, const std::string& metric) {
  return r.status != JobStatus::failed && r.best_step >= 0 && std::isfinite(metric_of(r, metric));
}

// Ranked jobs by the metric (ties by name), then the unranked, then the failed.
std::vector<const JobResult*> rank_order(const std::vector<JobResult>& results,
                                         const std::string& metric) {
  std::vector<const JobResult*> order;
  for (const JobResult& r : results)
    order.push_back(&r);
  auto group = [&](const JobResult* r) {
    return ranked(*r, metric) ? 0 : r->status == JobStatus::failed ? 2 : 1;
  };
  std::stable_sort(order.begin(), order.end(), [&](const JobResult* a, const JobResult* b) {
    if (group(a) != group(b)) return group(a) < group(b);
    if (group(a) == 0 && metric_of(*a, metric) != metric_of(*b, metric))
      return metric == "val_loss" ? metric_of(*a, metric) < metric_of(*b, metric)
                                  : metric_of(*a, metric) > metric_of(*b, metric);
    return a->name < b->name;
  });
  return order;
}

// The program of a job resumed under early stopping. Its state file was written at a validation,
// before that validation's report reached the rule (or while the rule kept the job waiting), so
// the job validates again first: the rule (its state replayed from the report log) parks or stops
// it there as it did the uninterrupted job. The repeated validation's curve points are dropped.
actors::Task<void> resumed_program(actors::JobContext& job) {
  const std::vector<CurvePoint>& val = job.result().val_loss;
  if (job.resumed() && !val.empty() && val.back().step == job.step() &&
      job.step() < job.total_steps()) {
    const std::size_t n = val.size();
    auto drop_repeat = [&job, n] {
      job.result().val_loss.resize(n);
      job.result().val_accuracy.resize(n);
    };
    try {
      co_await job.validate();
    } catch (const actors::JobStopped&) {
      drop_repeat();
      throw;
    }
    drop_repeat();
  }
  co_await actors::default_training_program(job);
}

void write_job_list(const std::string& dir, const SweepPlan& plan, bool quick) {
  nlohmann::json j;
  j["sweep"] = plan.file.name;
  j["quick"] = quick;
  j["jobs"] = nlohmann::json::array();
  for (std::size_t i = 0; i < plan.jobs.size(); ++i)
    j["jobs"].push_back({{"name", plan.jobs[i].name},
                         {"config", plan.jobs[i].config},
                         {"steps_per_epoch", plan.steps_per_epoch[i]},
                         {"total_steps", plan.total_steps[i]}});
  write_text(fs::path(dir) / "jobs.json", j.dump(1) + "\n");
}

SweepRun execute(const std::string& dir, SweepPlan plan, bool resume,
                 const SweepRunOptions& options) {
  SweepRun out;
  out.dir = dir;
  const fs::path d(dir);
  fs::create_directories(d / "jobs");
  std::map<std::string, JobResult> finished;
  std::vector<JobSpec> to_run;
  for (const JobSpec& job : plan.jobs) {
    const fs::path rp = result_path(dir, job.name);
    if (resume && fs::exists(rp)) {
      finished[job.name] = sweep::job_result_from_json(read_text(rp), rp.string());
      continue;
    }
    JobSpec j = job;
    const fs::path state = d / "state" / (job.name + ".state");
    if (resume && fs::exists(state)) {
      j.resume_from = state.string();
      if (plan.file.early_stopping.method != "none" && !j.program) j.program = resumed_program;
    }
    to_run.push_back(std::move(j));
  }
  out.reused = finished.size();

  RuntimeOptions ro;
  ro.devices = sweep_devices(plan.file);
  ro.policy = plan.file.policy;
  ro.policy_seed = plan.file.seed;
  ro.progress = options.progress;
  ro.nodes = sweep_nodes(plan.file, options.nodes, options.node_secret);
  ro.node_secret = options.node_secret;
  ro.node_link_timeout_seconds = options.node_link_timeout_seconds;
  ro.node_tls = options.node_tls;
  ro.out_dir = dir;
  ro.on_job_end = [dir](const JobResult& r) {
    write_text(result_path(dir, r.name), sweep::job_result_to_json(r));
  };
  std::shared_ptr<EarlyStopping> rule = make_sweep_rule(plan, &out.asha);
  if (rule) {
    const std::string log = (d / "reports.jsonl").string();
    if (resume) {
      sweep::replay_report_log(log, *rule);
      for (const auto& [name, r] : finished)
        rule->job_ended(name);
    }
    ro.early_stopping = std::make_shared<sweep::RecordingRule>(rule, log);
  }
  if (options.plan && !to_run.empty()) {
    check(ro.nodes.empty(),
          "planning a sweep that runs on cluster nodes is not supported (run it "
          "without --plan)");
    CostModel costs;
    auto planned = std::make_shared<RunPlan>(plan_run(to_run, ro, costs));
    to_run = apply_plan(std::move(to_run), *planned);
    ro.plan = planned;
    ro.replan.enabled = options.replan;
  }
  if (options.on_start) options.on_start(plan, ro, to_run.size());
  if (!to_run.empty()) out.report = run(to_run, ro);

  // Every job's result in plan order: this run's, else the recorded one.
  std::map<std::string, const JobResult*> ran;
  for (const JobResult& r : out.report.jobs)
    ran[r.name] = &r;
  for (const JobSpec& job : plan.jobs) {
    if (const auto it = ran.find(job.name); it != ran.end())
      out.results.push_back(*it->second);
    else
      out.results.push_back(finished.at(job.name));
  }

  const std::string& metric = plan.file.metric;
  for (std::size_t i = 0; i < out.results.size(); ++i) {
    const JobResult& r = out.results[i];
    if (r.status != JobStatus::done || !ranked(r, metric)) continue;
    if (out.best < 0) {
      out.best = static_cast<int>(i);
      continue;
    }
    const JobResult& b = out.results[static_cast<std::size_t>(out.best)];
    const bool better = metric == "val_loss" ? metric_of(r, metric) < metric_of(b, metric)
                                             : metric_of(r, metric) > metric_of(b, metric);
    if (better) out.best = static_cast<int>(i);
  }

  // Reports over every job (the runtime's cover only the jobs this process trained).
  for (Curve c : {Curve::train_loss, Curve::val_loss, Curve::val_accuracy})
    write_curves_svg(out.results, c, (d / (std::string(curve_name(c)) + ".svg")).string());
  write_results_csv(out.results, (d / "results.csv").string());
  write_curves_csv(out.results, (d / "curves.csv").string());
  write_text(d / "curves.json", sweep::curves_json(out.results));
  write_text(d / "ranking.csv", ranking_csv(out.results, metric));
  out.table = format_results_table(out.results, metric);
  write_text(d / "results.txt",
             "Sweep " + plan.file.name + ", ranked by best " + metric + ":\n" + out.table);
  if (out.best >= 0) {
    const std::string& ckpt = out.results[static_cast<std::size_t>(out.best)].checkpoint_path;
    if (!ckpt.empty() && fs::exists(ckpt))
      fs::copy_file(ckpt, d / "best.ckpt", fs::copy_options::overwrite_existing);
  }
  out.plan = std::move(plan);
  return out;
}

}  // namespace

std::string ranking_csv(const std::vector<JobResult>& results, const std::string& metric) {
  std::vector<std::string> keys;
  for (const JobResult& r : results)
    for (const auto& [k, v] : r.config)
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  std::string out = "rank,name,status";
  for (const std::string& k : keys)
    out += "," + k;
  out += ",best_val_accuracy,best_val_loss,best_step,steps\n";
  int rank = 0;
  for (const JobResult* r : rank_order(results, metric)) {
    out += (ranked(*r, metric) ? std::to_string(++rank) : std::string("-")) + "," + r->name + "," +
           job_status_name(r->status);
    for (const std::string& k : keys) {
      const auto it = r->config.find(k);
      out += "," + (it == r->config.end() ? std::string() : it->second);
    }
    char buf[96];
    std::snprintf(buf, sizeof buf, ",%.17g,%.17g,%lld,%lld\n", r->best_val_accuracy,
                  r->best_val_loss, static_cast<long long>(r->best_step),
                  static_cast<long long>(r->steps));
    out += buf;
  }
  return out;
}

SweepRun run_sweep(const std::string& sweep_file, std::string dir, const SweepRunOptions& options) {
  const sweep::SweepFile file = sweep::parse_sweep_file(sweep_file);
  if (dir.empty()) {
    // The default directory: runs/<name>, else the first of runs/<name>-2, -3, ... that holds no
    // sweep, so running the same file again keeps the earlier results.
    dir = "runs/" + file.name;
    for (int n = 2; fs::exists(fs::path(dir) / "sweep.json"); ++n)
      dir = "runs/" + file.name + "-" + std::to_string(n);
  }
  if (fs::exists(fs::path(dir) / "sweep.json"))
    throw Error(dir + " already holds a sweep; continue it with `hydra resume " + dir +
                "`, or choose another directory with --out");
  SweepPlan plan = plan_sweep(file, options.quick);
  sweep_devices(file);  // device mistakes before anything is written
  sweep_nodes(file, options.nodes, options.node_secret);
  fs::create_directories(fs::path(dir) / "jobs");
  write_job_list(dir, plan, options.quick);
  write_text(fs::path(dir) / "sweep.json", file.text);
  return execute(dir, std::move(plan), false, options);
}

SweepRun resume_sweep(const std::string& dir, const SweepRunOptions& options) {
  const fs::path d(dir);
  if (!fs::exists(d / "sweep.json") || !fs::exists(d / "jobs.json"))
    throw Error(dir +
                " holds no sweep (no sweep.json and jobs.json); start one with `hydra run FILE`");
  const sweep::SweepFile file =
      sweep::parse_sweep_text(read_text(d / "sweep.json"), (d / "sweep.json").string());
  nlohmann::json jobs;
  try {
    jobs = nlohmann::json::parse(read_text(d / "jobs.json"));
  } catch (const nlohmann::json::exception& e) {
    throw Error((d / "jobs.json").string() + ": " + e.what());
  }
  const bool quick = jobs.value("quick", false);
  SweepPlan plan = plan_sweep(file, quick);
  bool same = jobs.contains("jobs") && jobs["jobs"].size() == plan.jobs.size();
  for (std::size_t i = 0; same && i < plan.jobs.size(); ++i)
    same = jobs["jobs"][i].value("name", "") == plan.jobs[i].name;
  if (!same)
    throw Error((d / "jobs.json").string() + " does not list the jobs of " +
                (d / "sweep.json").string() + " (edited?); the sweep cannot be resumed");
  SweepRunOptions o = options;
  o.quick = quick;
  return execute(dir, std::move(plan), true, o);
}

}  // namespace hydra
