// Early stopping and resume of whole sweeps: ASHA and SHA stop exactly the jobs their rule's
// recorded decisions say while the others train all their steps, and `hydra resume` after a
// SIGKILL ends with the same ranking as an uninterrupted run (the hydra program is run as a
// child process: HYDRA_PROGRAM is its path, from tests/CMakeLists.txt).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "actors/sweep_runner.hpp"

extern char** environ;

using namespace hydra;
namespace fs = std::filesystem;

namespace {

struct ResumeTempDir {
  fs::path path;
  explicit ResumeTempDir(const std::string& tag)
      : path(fs::temp_directory_path() /
             ("hydra_sweep_resume_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ResumeTempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// 6 small MLPs on synthetic data: train_samples / 32 steps per epoch, 3 epochs, 4 validations
// per epoch.
std::string sweep_text(const std::string& early_stopping, int train_samples = 1024) {
  return R"({
  "dataset": {"name": "synthetic", "train_samples": )" +
         std::to_string(train_samples) + R"(, "val_samples": 256, "features": 32,
              "classes": 4},
  "model": {"family": "mlp", "width": [16, 32, 64]},
  "training": {"optimizer": ["sgd", "adamw"], "lr": 0.01, "batch_size": 32},
  "budget": {"epochs": 3, "evals_per_epoch": 4},
  "devices": {"kind": "cpu", "count": 2},
  "early_stopping": )" +
         early_stopping + "\n}\n";
}

// Runs the sweep in-process and checks every job against the rule's recorded judgements.
void check_rule_decisions(const std::string& early_stopping, std::size_t expect_stopped) {
  ResumeTempDir tmp("rule");
  std::ofstream(tmp.path / "s.json") << sweep_text(early_stopping);
  const SweepRun r = run_sweep((tmp.path / "s.json").string(), (tmp.path / "out").string(), {});
  REQUIRE(r.asha);
  std::map<std::string, std::int64_t> stopped_at;  // job -> the step of its stopping validation
  for (const sweep::Asha::Judgement& j : r.asha->decisions())
    if (j.stopped) stopped_at[j.job] = j.step;
  if (expect_stopped > 0) CHECK(stopped_at.size() == expect_stopped);
  REQUIRE(r.results.size() == 6);
  for (std::size_t i = 0; i < r.results.size(); ++i) {
    const JobResult& res = r.results[i];
    INFO(res.name);
    if (const auto it = stopped_at.find(res.name); it != stopped_at.end()) {
      CHECK(res.status == JobStatus::stopped);
      CHECK(res.steps == it->second);
      CHECK(res.val_accuracy.back().step == it->second);
      CHECK(res.stop_reason == r.asha->reason(res.name));
    } else {
      CHECK(res.status == JobStatus::done);
      CHECK(res.steps == r.plan.total_steps[i]);
    }
  }
}

// Starts `argv` with stdout and stderr to `log`; returns the child's pid.
pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<char*> argv;
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE_MESSAGE(rc == 0, "cannot start " << args[0]);
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

}  // namespace

TEST_CASE("sweep: asha stops exactly the jobs its decisions say and the others train every step") {
  check_rule_decisions(R"({"method": "asha", "resource": "epochs", "min_resource": 1,
                           "reduction_factor": 2, "max_rungs": 2})",
                       0);
}

TEST_CASE("sweep: sha stops half the jobs at its rung and the others train every step") {
  check_rule_decisions(R"({"method": "sha", "resource": "steps", "min_resource": 24,
                           "reduction_factor": 2, "max_rungs": 1})",
                       3);
}

TEST_CASE(
    "sweep: hydra resume after SIGKILL gives the same final ranking as an uninterrupted run") {
  ResumeTempDir tmp("kill");
  const fs::path file = tmp.path / "s.json";
  std::ofstream(file) << sweep_text(R"({"method": "sha", "resource": "epochs",
      "min_resource": 1, "reduction_factor": 2, "max_rungs": 1})",
                                    4096);
  const std::string program = HYDRA_PROGRAM;
  const fs::path whole = tmp.path / "whole", killed = tmp.path / "killed";
  const fs::path log = tmp.path / "log.txt";

  // Interrupted: SIGKILL once the first training-state file exists, then resume.
  const pid_t pid =
      spawn({program, "run", file.string(), "--out", killed.string(), "--no-progress"}, log);
  const auto t0 = std::chrono::steady_clock::now();
  auto has_state = [&] {
    std::error_code ec;
    return fs::exists(killed / "state", ec) && !fs::is_empty(killed / "state", ec);
  };
  while (!has_state() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  REQUIRE(has_state());
  ::kill(pid, SIGKILL);
  const int status = wait_for(pid);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE_MESSAGE(!fs::exists(killed / "results.txt"), "the kill came after the end of the run");
  // Some jobs had not finished, and at least one of them continues from a state file.
  std::size_t finished_before = 0, to_continue = 0;
  for (const auto& e : fs::directory_iterator(killed / "state")) {
    const std::string job = e.path().stem().string();
    if (fs::exists(killed / "jobs" / (job + ".json")))
      ++finished_before;
    else
      ++to_continue;
  }
  CHECK(finished_before < 6);
  CHECK(to_continue >= 1);

  const int resumed = wait_for(spawn({program, "resume", killed.string(), "--no-progress"}, log));
  INFO(read_all(log));
  REQUIRE(WIFEXITED(resumed));
  REQUIRE(WEXITSTATUS(resumed) == 0);

  const int uninterrupted = wait_for(
      spawn({program, "run", file.string(), "--out", whole.string(), "--no-progress"}, log));
  REQUIRE(WIFEXITED(uninterrupted));
  REQUIRE(WEXITSTATUS(uninterrupted) == 0);

  const std::string a = read_all(whole / "ranking.csv"), b = read_all(killed / "ranking.csv");
  CHECK(a.find("stopped") != std::string::npos);  // the rule did stop jobs
  CHECK(a == b);
  CHECK(read_all(whole / "curves.csv") == read_all(killed / "curves.csv"));
}
