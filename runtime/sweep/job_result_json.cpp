#include "runtime/sweep/job_result_json.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "kernels/core/error.hpp"

namespace hydra::sweep {

namespace {

using json = nlohmann::json;

json num(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return x;
}

double to_num(const json& v) {
  if (v.is_number()) return v.get<double>();
  const std::string s = v.get<std::string>();
  if (s == "nan") return std::nan("");
  if (s == "inf") return HUGE_VAL;
  if (s == "-inf") return -HUGE_VAL;
  throw Error("not a number: " + s);
}

json curve(const std::vector<CurvePoint>& c) {
  json out = json::array();
  for (const CurvePoint& p : c)
    out.push_back(json::array({p.step, num(p.epoch), num(p.value)}));
  return out;
}

std::vector<CurvePoint> to_curve(const json& v) {
  std::vector<CurvePoint> out;
  for (const json& p : v)
    out.push_back({p.at(0).get<std::int64_t>(), to_num(p.at(1)), to_num(p.at(2))});
  return out;
}

json to_object(const JobResult& r) {
  json j;
  j["name"] = r.name;
  j["status"] = job_status_name(r.status);
  j["config"] = r.config;
  j["error"] = r.error;
  j["stop_reason"] = r.stop_reason;
  j["state_path"] = r.state_path;
  j["best_val_accuracy"] = num(r.best_val_accuracy);
  j["best_val_loss"] = num(r.best_val_loss);
  j["best_step"] = r.best_step;
  j["checkpoint_path"] = r.checkpoint_path;
  j["steps"] = r.steps;
  j["seconds"] = num(r.seconds);
  j["samples_per_second"] = num(r.samples_per_second);
  j["train_loss"] = curve(r.train_loss);
  j["val_loss"] = curve(r.val_loss);
  j["val_accuracy"] = curve(r.val_accuracy);
  return j;
}

}  // namespace

std::string job_result_to_json(const JobResult& r) {
  return to_object(r).dump(1) + "\n";
}

JobResult job_result_from_json(const std::string& text, const std::string& source) {
  try {
    const json j = json::parse(text);
    JobResult r;
    r.name = j.at("name").get<std::string>();
    const std::string status = j.at("status").get<std::string>();
    if (status == "done")
      r.status = JobStatus::done;
    else if (status == "failed")
      r.status = JobStatus::failed;
    else if (status == "stopped")
      r.status = JobStatus::stopped;
    else
      throw Error("unknown status \"" + status + "\"");
    r.config = j.at("config").get<std::map<std::string, std::string>>();
    r.error = j.at("error").get<std::string>();
    r.stop_reason = j.at("stop_reason").get<std::string>();
    r.state_path = j.at("state_path").get<std::string>();
    r.best_val_accuracy = to_num(j.at("best_val_accuracy"));
    r.best_val_loss = to_num(j.at("best_val_loss"));
    r.best_step = j.at("best_step").get<std::int64_t>();
    r.checkpoint_path = j.at("checkpoint_path").get<std::string>();
    r.steps = j.at("steps").get<std::int64_t>();
    r.seconds = to_num(j.at("seconds"));
    r.samples_per_second = to_num(j.at("samples_per_second"));
    r.train_loss = to_curve(j.at("train_loss"));
    r.val_loss = to_curve(j.at("val_loss"));
    r.val_accuracy = to_curve(j.at("val_accuracy"));
    return r;
  } catch (const std::exception& e) {
    throw Error(source + ": not a job result: " + e.what());
  }
}

std::string curves_json(const std::vector<JobResult>& results) {
  json out;
  out["jobs"] = json::array();
  for (const JobResult& r : results)
    out["jobs"].push_back(to_object(r));
  return out.dump() + "\n";
}

}  // namespace hydra::sweep
