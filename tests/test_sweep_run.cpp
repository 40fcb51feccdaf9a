// Sweeps run end to end in their directory (actors/sweep_runner.hpp) on tiny synthetic data:
// the directory's files, reading results back, and the JSON forms of results and reports.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "actors/sweep_runner.hpp"
#include "runtime/sweep/job_result_json.hpp"
#include "runtime/sweep/report_log.hpp"

using namespace hydra;
namespace fs = std::filesystem;

namespace {

struct SweepTempDir {
  fs::path path;
  explicit SweepTempDir(const std::string& tag)
      : path(fs::temp_directory_path() /
             ("hydra_sweep_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~SweepTempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

// 4 small MLPs on 256 synthetic samples: 8 steps per epoch, 2 epochs.
const char* kTinySweep = R"({
  "name": "tiny",
  "dataset": {"name": "synthetic", "train_samples": 256, "val_samples": 64, "features": 16,
              "classes": 4},
  "model": {"family": "mlp", "width": [16, 32]},
  "training": {"optimizer": ["sgd", "adamw"], "lr": 0.01, "batch_size": 32},
  "budget": {"epochs": 2, "evals_per_epoch": 2},
  "devices": {"kind": "cpu", "count": 2}
})";

}  // namespace

TEST_CASE("sweep: a run fills its directory and a resume of a finished sweep reads it back") {
  SweepTempDir tmp("run");
  write(tmp.path / "tiny.json", kTinySweep);
  const std::string dir = (tmp.path / "out").string();
  const SweepRun a = run_sweep((tmp.path / "tiny.json").string(), dir, {});
  REQUIRE(a.results.size() == 4);
  for (const JobResult& r : a.results) {
    CHECK(r.status == JobStatus::done);
    CHECK(r.steps == 16);
    CHECK(r.val_accuracy.size() == 4);  // every half epoch
    CHECK(fs::exists(fs::path(dir) / "jobs" / (r.name + ".json")));
  }
  for (const char* f :
       {"sweep.json", "jobs.json", "results.csv", "curves.csv", "curves.json", "ranking.csv",
        "results.txt", "trace.json", "gantt.svg", "val_accuracy.svg", "best.ckpt"})
    CHECK_MESSAGE(fs::exists(fs::path(dir) / f), f);
  CHECK(slurp(fs::path(dir) / "sweep.json") == kTinySweep);
  REQUIRE(a.best >= 0);
  const JobResult& best = a.results[static_cast<std::size_t>(a.best)];
  for (const JobResult& r : a.results)
    CHECK(r.best_val_accuracy <= best.best_val_accuracy);
  CHECK(slurp(fs::path(dir) / "best.ckpt") == slurp(best.checkpoint_path));
  // The ranking: header, then the best job first.
  const std::string ranking = slurp(fs::path(dir) / "ranking.csv");
  CHECK(ranking.rfind("rank,name,status,batch,depth,family,lr,opt,width,best_val_accuracy", 0) ==
        0);
  CHECK(ranking.find("\n1," + best.name + ",done,") != std::string::npos);

  // A second run into the same directory is refused; a resume trains nothing and agrees.
  CHECK_THROWS_WITH_AS(run_sweep((tmp.path / "tiny.json").string(), dir, {}),
                       doctest::Contains("already holds a sweep; continue it with `hydra resume"),
                       Error);
  const SweepRun b = resume_sweep(dir, {});
  CHECK(b.reused == 4);
  CHECK(b.report.jobs.empty());
  CHECK(slurp(fs::path(dir) / "ranking.csv") == ranking);
  REQUIRE(b.results.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(b.results[i].name == a.results[i].name);
    CHECK(b.results[i].best_val_loss == a.results[i].best_val_loss);
    CHECK(b.results[i].train_loss.size() == a.results[i].train_loss.size());
  }
  CHECK_THROWS_WITH_AS(resume_sweep((tmp.path / "nothing").string(), {}),
                       doctest::Contains("holds no sweep"), Error);
}

TEST_CASE("sweep: a job result survives its JSON form exactly with NaN and infinities") {
  JobResult r;
  r.name = "j";
  r.config = {{"lr", "0.1"}};
  r.status = JobStatus::stopped;
  r.stop_reason = "ASHA rung 0";
  r.state_path = "s/j.state";
  r.train_loss = {{1, 0.125, 2.5}, {2, 0.25, std::nan("")}};
  r.val_loss = {{2, 0.25, HUGE_VAL}};
  r.val_accuracy = {{2, 0.25, 0.1 + 0.2}};
  r.best_val_accuracy = 0.1 + 0.2;
  r.best_val_loss = -HUGE_VAL;
  r.best_step = 2;
  r.steps = 2;
  r.seconds = 1.0 / 3.0;
  const JobResult b = sweep::job_result_from_json(sweep::job_result_to_json(r), "x");
  CHECK(b.name == "j");
  CHECK(b.status == JobStatus::stopped);
  CHECK(b.stop_reason == r.stop_reason);
  CHECK(b.state_path == r.state_path);
  CHECK(b.config == r.config);
  CHECK(std::isnan(b.train_loss[1].value));
  CHECK(b.train_loss[0].epoch == 0.125);
  CHECK(b.val_loss[0].value == HUGE_VAL);
  CHECK(b.best_val_accuracy == r.best_val_accuracy);  // bit-exact
  CHECK(b.best_val_loss == -HUGE_VAL);
  CHECK(b.seconds == r.seconds);
  CHECK_THROWS_WITH_AS(sweep::job_result_from_json("{\"name\": 1}", "f.json"),
                       doctest::Contains("f.json: not a job result"), Error);
}

namespace {

// Counts what reaches it.
struct CountingRule : EarlyStopping {
  int reports = 0, ended = 0;
  void add_job(const std::string&) override {}
  void report(const std::string&, std::int64_t, std::int64_t, double, double) override {
    ++reports;
  }
  StopDecision decide(const std::string&) override { return StopDecision::go_on; }
  void job_ended(const std::string&) override { ++ended; }
  std::string reason(const std::string&) const override { return ""; }
};

}  // namespace

TEST_CASE("sweep: the report log replays every complete line and skips a cut-off last one") {
  SweepTempDir tmp("log");
  const std::string log = (tmp.path / "reports.jsonl").string();
  {
    sweep::RecordingRule rec(std::make_shared<CountingRule>(), log);
    rec.report("a", 10, 40, 0.5, 0.5);
    rec.report("b", 10, 40, std::nan(""), 0.25);
    rec.job_ended("a");
  }
  CountingRule replayed;
  CHECK(sweep::replay_report_log(log, replayed) == 2);
  CHECK(replayed.reports == 2);
  CHECK(replayed.ended == 1);
  std::ofstream(log, std::ios::app) << R"({"job": "c", "st)";  // killed while writing
  CountingRule again;
  CHECK(sweep::replay_report_log(log, again) == 2);
  std::ofstream(log, std::ios::app) << "\ngarbage\n";
  CountingRule bad;
  CHECK_THROWS_WITH_AS(sweep::replay_report_log(log, bad), doctest::Contains("line 4"), Error);
}

TEST_CASE("sweep: without a directory a second run of the same file gets runs/NAME-2") {
  SweepTempDir tmp("default_dir");
  write(tmp.path / "tiny.json", kTinySweep);
  struct Cwd {
    fs::path before = fs::current_path();
    ~Cwd() { fs::current_path(before); }
  } cwd;
  fs::current_path(tmp.path);
  const SweepRun a = run_sweep("tiny.json", "", {});
  CHECK(a.dir == "runs/tiny");
  const SweepRun b = run_sweep("tiny.json", "", {});
  CHECK(b.dir == "runs/tiny-2");
  CHECK(fs::exists(tmp.path / "runs" / "tiny" / "ranking.csv"));
  CHECK(fs::exists(tmp.path / "runs" / "tiny-2" / "ranking.csv"));
  // The first run's results are untouched by the second.
  CHECK(slurp(tmp.path / "runs" / "tiny" / "jobs.json") ==
        slurp(tmp.path / "runs" / "tiny-2" / "jobs.json"));
}

TEST_CASE("sweep: a node list without a shared secret is refused before anything is written") {
  SweepTempDir tmp("nodes");
  std::string text = kTinySweep;
  const std::string cpu = R"("devices": {"kind": "cpu", "count": 2})";
  REQUIRE(text.find(cpu) != std::string::npos);
  text.replace(text.find(cpu), cpu.size(),
               R"("devices": {"kind": "nodes", "nodes": ["127.0.0.1:7001"]})");
  write(tmp.path / "nodes.json", text);
  const std::string dir = (tmp.path / "out").string();
  CHECK_THROWS_WITH_AS(run_sweep((tmp.path / "nodes.json").string(), dir, {}),
                       doctest::Contains("uses cluster nodes but has no shared secret"), Error);
  CHECK_FALSE(fs::exists(dir));
  // The nodes of the file come first, then those of the command line.
  const sweep::SweepFile f = sweep::parse_sweep_file((tmp.path / "nodes.json").string());
  CHECK(sweep_devices(f).empty());
  CHECK(sweep_nodes(f, {"10.0.0.2:7002"}, "s") ==
        std::vector<std::string>{"127.0.0.1:7001", "10.0.0.2:7002"});
}
