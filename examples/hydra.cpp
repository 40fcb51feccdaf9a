// The hydra command line: model selection from a sweep file.
//
//   build/examples/hydra run examples/sweeps/fashion_mnist.json        # -> runs/fashion_mnist/
//   build/examples/hydra run examples/sweeps/fashion_mnist.json --quick --out runs/fm-smoke
//   build/examples/hydra resume runs/fashion_mnist                     # after an interruption
//   build/examples/hydra explain examples/sweeps/fashion_mnist.json    # the plan, no training
//   build/examples/hydra help
//
// Subcommands live in the table kCommands below: a new one (e.g. `node` for the multi-node
// runtime, `explain` for the planner) is a function `int f(int argc, char** argv)` (argv[0] is the
// subcommand) and one row.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "actors/plan.hpp"
#include "actors/sweep_runner.hpp"
#include "examples/example_cli.hpp"
#include "examples/node_cli.hpp"
#include "runtime/duration_format.hpp"

using namespace hydra;

namespace {

struct RunFlags {
  std::string out, nodes, node_secret_file, node_tls_cert, node_tls_key, node_tls_ca;
  bool quick = false, no_progress = false, dry_run = false, plan = false, no_replan = false;
  double node_link_timeout = 3;
};

// Flags after the positional argument: argv = [subcommand, POSITIONAL, flags...].
bool parse_flags(examples::Flags& f, int argc, char** argv) {
  std::vector<char*> rest = {argv[0]};
  for (int i = 2; i < argc; ++i)
    rest.push_back(argv[i]);
  return f.parse(static_cast<int>(rest.size()), rest.data());
}

std::string positional(int argc, char** argv, const char* what) {
  if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0))
    return "";
  if (argc < 2 || argv[1][0] == '-')
    throw examples::UsageError(std::string(argv[0]) + " needs " + what);
  return argv[1];
}

std::string describe_rule(const sweep::SweepFile& f) {
  const sweep::EarlyStoppingSpec& e = f.early_stopping;
  std::string s;
  if (e.method == "none") {
    s = "no early stopping";
  } else {
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s: rungs at %g %s x %g^k (k < %lld), the top 1/%g go on by %s",
                  e.method == "asha" ? "ASHA (asynchronous successive halving)"
                                     : "synchronous successive halving",
                  e.min_resource, e.resource.c_str(), e.reduction_factor,
                  static_cast<long long>(e.max_rungs), e.reduction_factor, f.metric.c_str());
    s = buf;
  }
  if (f.budget.time_seconds > 0) s += "; time budget " + format_duration(f.budget.time_seconds);
  return s;
}

void print_start(const SweepPlan& plan, const RuntimeOptions& ro, std::size_t to_run) {
  const sweep::SweepFile& f = plan.file;
  std::string devices;
  for (const DeviceSpec& d : ro.devices)
    devices += (devices.empty() ? "" : ", ") + d.device.str() +
               (d.memory_bytes > 0 ? " (" + examples::mib(double(d.memory_bytes)) + ")" : "");
  for (const std::string& n : ro.nodes)
    devices += (devices.empty() ? "the devices of node " : ", node ") + n;
  if (devices.empty()) devices = "the default devices";
  std::printf("Sweep %s (%s): %s\n", f.name.c_str(), f.source.c_str(), plan.data_summary.c_str());
  std::printf(
      "  %zu configurations (%s search), %lld %s each; %s\n", plan.jobs.size(),
      f.search.method.c_str(),
      static_cast<long long>(plan.budget.epochs > 0 ? plan.budget.epochs : plan.budget.steps),
      plan.budget.epochs > 0 ? "epochs" : "steps", describe_rule(f).c_str());
  std::printf("  training %zu of them at once on %s, policy %s, into %s/\n", to_run,
              devices.c_str(), ro.policy.c_str(), ro.out_dir.c_str());
  std::fflush(stdout);
}

int report(const SweepRun& r, double wall) {
  const sweep::SweepFile& f = r.plan.file;
  std::printf("\nResults, ranked by best %s:\n%s\n", f.metric.c_str(), r.table.c_str());
  std::size_t stopped = 0, done = 0;
  for (const JobResult& j : r.results) {
    stopped += j.status == JobStatus::stopped ? 1 : 0;
    done += j.status == JobStatus::done ? 1 : 0;
  }
  if (stopped > 0) {
    std::printf("Stopped early (%zu):\n", stopped);
    for (const JobResult& j : r.results)
      if (j.status == JobStatus::stopped)
        std::printf("  %s at step %lld: %s\n", j.name.c_str(), static_cast<long long>(j.steps),
                    j.stop_reason.c_str());
  }
  if (!r.report.utilisation.empty()) examples::print_utilisation(r.report);
  if (!r.report.strategy_changes.empty())
    std::printf("Strategy changes (re-planning: %d re-plans, %.2f s searching):\n%s",
                r.report.replans, r.report.replan_seconds,
                format_strategy_changes(r.report.strategy_changes).c_str());
  else if (r.report.replans > 0)
    std::printf("Re-planning: %d re-plans (%.2f s searching), no strategy changed\n",
                r.report.replans, r.report.replan_seconds);
  for (const LinkStats& l : r.report.links)
    std::printf(
        "  %s: %llu tasks (%llu re-run elsewhere, %llu joins), sent %s, received %s; "
        "encode %.1fs, network %.1fs, node %.1fs, apply %.1fs\n",
        l.device.c_str(), static_cast<unsigned long long>(l.tasks),
        static_cast<unsigned long long>(l.requeued), static_cast<unsigned long long>(l.joins),
        examples::mib(double(l.bytes_sent)).c_str(),
        examples::mib(double(l.bytes_received)).c_str(), l.encode_seconds, l.network_seconds,
        l.node_seconds, l.apply_seconds);
  if (r.best >= 0) {
    const JobResult& b = r.results[static_cast<std::size_t>(r.best)];
    std::printf("\nBest: %s, validation accuracy %.2f%%, loss %.4f at step %lld%s\n",
                b.name.c_str(), 100.0 * b.best_val_accuracy, b.best_val_loss,
                static_cast<long long>(b.best_step),
                b.checkpoint_path.empty() ? "" : (" (checkpoint " + r.dir + "/best.ckpt)").c_str());
  }
  std::printf("%zu jobs: %zu finished, %zu stopped early, %zu failed%s; %s in all\n",
              r.results.size(), done, stopped, r.results.size() - done - stopped,
              r.reused > 0
                  ? (", " + std::to_string(r.reused) + " read back from the directory").c_str()
                  : "",
              format_duration(wall).c_str());
  std::printf(
      "Wrote %s/: results.txt ranking.csv results.csv curves.csv curves.json *.svg "
      "trace.json best.ckpt jobs/ state/ (open trace.json in https://ui.perfetto.dev)\n",
      r.dir.c_str());
  return done > 0 ? 0 : 1;
}

// --nodes and --node-secret-file: cluster nodes (`hydra node`) whose devices join the run.
void add_cluster_flags(examples::Flags& f, RunFlags& o) {
  f.add_string("--nodes", &o.nodes, "HOST:PORT,...",
               "cluster nodes (started with `hydra node`) whose devices join the sweep's devices");
  f.add_string("--node-secret-file", &o.node_secret_file, "PATH",
               "file holding the nodes' shared secret (default: $HYDRA_NODE_SECRET)");
  f.add_double("--node-link-timeout", &o.node_link_timeout, 0.1, 3600, "SECONDS",
               "a node link silent this long is declared dead and its tasks run elsewhere "
               "(default 3)");
  f.add_string("--node-tls-cert", &o.node_tls_cert, "PATH",
               "mutual TLS with the nodes (with --node-tls-key and --node-tls-ca): this "
               "coordinator's certificate (PEM)");
  f.add_string("--node-tls-key", &o.node_tls_key, "PATH", "its private key (PEM, unencrypted)");
  f.add_string("--node-tls-ca", &o.node_tls_ca, "PATH",
               "the CA certificate (PEM) that signed the nodes' certificates");
}

void set_cluster(SweepRunOptions& ro, const RunFlags& o) {
  ro.node_link_timeout_seconds = o.node_link_timeout;
  ro.node_tls = {o.node_tls_cert, o.node_tls_key, o.node_tls_ca};
  if (ro.node_tls.enabled() &&
      (o.node_tls_cert.empty() || o.node_tls_key.empty() || o.node_tls_ca.empty()))
    throw examples::UsageError("--node-tls-cert, --node-tls-key and --node-tls-ca go together");
  if (o.nodes.empty()) {
    // A sweep file may name its nodes ("devices.kind": "nodes"): read a secret if one is given.
    if (!o.node_secret_file.empty() || std::getenv("HYDRA_NODE_SECRET") != nullptr)
      ro.node_secret = examples::read_node_secret(o.node_secret_file, "--node-secret-file");
    return;
  }
  ro.nodes = examples::split_nodes(o.nodes);
  ro.node_secret = examples::read_node_secret(o.node_secret_file, "--node-secret-file");
}

int cmd_node(int argc, char** argv) {
  return examples::node_main("hydra node", argc, argv);
}

int cmd_run(int argc, char** argv) {
  const std::string file = positional(argc, argv, "a sweep file: hydra run FILE [flags]");
  RunFlags o;
  examples::Flags f("hydra run FILE",
                    "Trains every configuration of the sweep file at once, with its early "
                    "stopping, and writes\nthe ranked results, curves, plots, trace and the best "
                    "checkpoint to the sweep directory.");
  f.add_string("--out", &o.out, "DIR",
               "the sweep directory (default runs/<sweep name>, or runs/<sweep name>-N when that "
               "holds a sweep)");
  f.add_switch("--quick", &o.quick,
               "smoke run: at most 4000 training and 1000 validation samples (kjv: 4000 and 64 "
               "windows), 1 epoch or at most 60 steps");
  f.add_switch("--no-progress", &o.no_progress, "no live progress display");
  f.add_switch("--plan", &o.plan,
               "plan each job's strategy first (as `hydra explain`), then re-plan the jobs "
               "still training\nwhenever jobs end (stopped early, done or failed)");
  f.add_switch("--no-replan", &o.no_replan, "with --plan: keep the planned strategies fixed");
  add_cluster_flags(f, o);
  f.add_switch("--dry-run", &o.dry_run,
               "check the sweep file and print the configurations, without loading data or "
               "training");
  if (file.empty() || !parse_flags(f, argc, argv)) {
    if (file.empty()) std::fputs(f.usage().c_str(), stdout);
    return 0;
  }
  if (o.dry_run) {
    const sweep::SweepFile s = sweep::parse_sweep_file(file);
    const std::vector<sweep::Trial> trials = sweep::expand_search_space(s);
    std::printf("Sweep %s: %zu configurations (%s search); %s\n", s.name.c_str(), trials.size(),
                s.search.method.c_str(), describe_rule(s).c_str());
    for (const sweep::Trial& t : trials)
      std::printf("  %s\n", t.name.c_str());
    return 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  SweepRunOptions ro;
  ro.quick = o.quick;
  ro.progress = !o.no_progress;
  ro.on_start = print_start;
  ro.plan = o.plan;
  ro.replan = !o.no_replan;
  if (o.no_replan && !o.plan) throw examples::UsageError("--no-replan needs --plan");
  set_cluster(ro, o);
  const SweepRun r = run_sweep(file, o.out, ro);
  return report(r, examples::seconds_since(t0));
}

int cmd_explain(int argc, char** argv) {
  const std::string file = positional(argc, argv, "a sweep file: hydra explain FILE [flags]");
  bool quick = false;
  examples::Flags f("hydra explain FILE",
                    "Plans the sweep's configurations on its devices without training them: "
                    "each model cut,\nits shard tasks measured once, and per job the strategy "
                    "(shards, replicas, micro-batches,\ndevice), predicted time and memory per "
                    "device, beside the lower bound.");
  f.add_switch("--quick", &quick, "plan the smoke run of `hydra run --quick`");
  if (file.empty() || !parse_flags(f, argc, argv)) {
    if (file.empty()) std::fputs(f.usage().c_str(), stdout);
    return 0;
  }
  const SweepPlan sp = plan_sweep(sweep::parse_sweep_file(file), quick);
  RuntimeOptions ro;
  ro.devices = sweep_devices(sp.file);
  ro.policy = sp.file.policy;
  ro.policy_seed = sp.file.seed;
  std::printf("Sweep %s: %s\n", sp.file.name.c_str(), sp.data_summary.c_str());
  CostModel costs;
  std::fputs(explain(plan_run(sp.jobs, ro, costs)).c_str(), stdout);
  return 0;
}

int cmd_resume(int argc, char** argv) {
  const std::string dir = positional(argc, argv, "a sweep directory: hydra resume DIR [flags]");
  bool no_progress = false;
  RunFlags cluster;
  examples::Flags f("hydra resume DIR",
                    "Continues an interrupted sweep: finished jobs are read back, the others "
                    "continue from\ntheir training-state files, early stopping replays the "
                    "recorded reports.");
  f.add_switch("--no-progress", &no_progress, "no live progress display");
  add_cluster_flags(f, cluster);
  if (dir.empty() || !parse_flags(f, argc, argv)) {
    if (dir.empty()) std::fputs(f.usage().c_str(), stdout);
    return 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  SweepRunOptions ro;
  ro.progress = !no_progress;
  ro.on_start = print_start;
  set_cluster(ro, cluster);
  const SweepRun r = resume_sweep(dir, ro);
  return report(r, examples::seconds_since(t0));
}

struct Command {
  const char* name;
  const char* usage;
  const char* summary;
  int (*main)(int argc, char** argv);
};

// The subcommands. Add a row (and its function) for a new one.
const Command kCommands[] = {
    {"run",
     "run FILE [--out DIR] [--quick] [--plan [--no-replan]] [--no-progress] [--dry-run] [--nodes "
     "HOST:PORT,...]",
     "train the sweep in a sweep file (examples/sweeps/*.json)", cmd_run},
    {"explain", "explain FILE [--quick]",
     "print the planned strategy, predicted time and memory per job, without training",
     cmd_explain},
    {"resume", "resume DIR [--no-progress] [--nodes ...]",
     "continue an interrupted sweep in its directory", cmd_resume},
    {"node",
     "node [--listen HOST:PORT] [--secret-file PATH] [--devices N] [--tls-cert PATH --tls-key "
     "PATH --tls-ca PATH]",
     "host this machine's devices for coordinators (hydra run FILE --nodes HOST:PORT,...)",
     cmd_node},
};

std::string usage() {
  std::string out = "usage: hydra COMMAND [ARGS]\nTrains many models at once with Hydra.\n\n";
  for (const Command& c : kCommands)
    out += "  hydra " + std::string(c.usage) + "\n      " + c.summary + "\n";
  out +=
      "  hydra help\n      print this help\n\n`hydra COMMAND --help` describes a command's "
      "flags. The sweep-file format is in README.md.\n";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "help") == 0 || std::strcmp(argv[1], "--help") == 0 ||
      std::strcmp(argv[1], "-h") == 0) {
    std::fputs(usage().c_str(), argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const Command& c : kCommands) {
    if (c.name != std::string(argv[1])) continue;
    const std::string program = std::string("hydra ") + c.name;
    try {
      return c.main(argc - 1, argv + 1);
    } catch (const examples::UsageError& e) {
      std::fprintf(stderr, "%s: %s\n(see hydra %s --help)\n", program.c_str(), e.what(), c.name);
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
      return 1;
    }
  }
  std::string names;
  for (const Command& c : kCommands)
    names += (names.empty() ? "" : ", ") + std::string(c.name);
  std::fprintf(stderr, "hydra: unknown command '%s'; the commands are %s, help\n", argv[1],
               names.c_str());
  return 2;
}
