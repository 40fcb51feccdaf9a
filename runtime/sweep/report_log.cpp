#include "runtime/sweep/report_log.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "kernels/core/error.hpp"
#include "runtime/sweep/json_number.hpp"

namespace hydra::sweep {

using json = nlohmann::json;

RecordingRule::RecordingRule(std::shared_ptr<EarlyStopping> inner, const std::string& path)
    : inner_(std::move(inner)), path_(path), file_(std::fopen(path.c_str(), "ab")) {
  if (file_ == nullptr) throw Error("cannot open " + path + " for appending");
}

RecordingRule::~RecordingRule() {
  if (file_ != nullptr) std::fclose(file_);
}

void RecordingRule::append(const std::string& line) {
  std::fputs((line + "\n").c_str(), file_);
  std::fflush(file_);
}

void RecordingRule::add_job(const std::string& job) {
  if (inner_) inner_->add_job(job);
}

void RecordingRule::report(const std::string& job, std::int64_t step, std::int64_t total_steps,
                           double val_loss, double val_accuracy) {
  append(json{{"job", job},
              {"step", step},
              {"total", total_steps},
              {"val_loss", json_number(val_loss)},
              {"val_accuracy", json_number(val_accuracy)}}
             .dump());
  if (inner_) inner_->report(job, step, total_steps, val_loss, val_accuracy);
}

StopDecision RecordingRule::decide(const std::string& job) {
  return inner_ ? inner_->decide(job) : StopDecision::go_on;
}

void RecordingRule::job_ended(const std::string& job) {
  append(json{{"ended", job}}.dump());
  if (inner_) inner_->job_ended(job);
}

std::string RecordingRule::reason(const std::string& job) const {
  return inner_ ? inner_->reason(job) : std::string();
}

std::size_t replay_report_log(const std::string& path, EarlyStopping& rule) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return 0;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  // A line without its newline is one the kill cut short.
  in.clear();
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(in.tellg());
  std::size_t complete = lines.size();
  if (size > 0) {
    in.seekg(-1, std::ios::end);
    char last = 0;
    in.get(last);
    if (last != '\n' && !lines.empty()) --complete;
  }
  std::size_t reports = 0;
  std::set<std::string> reported;
  for (std::size_t i = 0; i < complete; ++i) {
    try {
      const json j = json::parse(lines[i]);
      if (j.contains("ended")) {
        rule.job_ended(j.at("ended").get<std::string>());
        continue;
      }
      const std::string job = j.at("job").get<std::string>();
      rule.report(job, j.at("step").get<std::int64_t>(), j.at("total").get<std::int64_t>(),
                  from_json_number(j.at("val_loss")), from_json_number(j.at("val_accuracy")));
      rule.decide(job);
      reported.insert(job);
      ++reports;
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(path + " line " + std::to_string(i + 1) + ": " + e.what());
    }
  }
  for (const std::string& job : reported)
    rule.decide(job);
  return reports;
}

}  // namespace hydra::sweep
