// One model larger than every device's memory budget, and larger than all budgets together,
// trained by spilling: Hydra cuts the model into shards that fit half a device (the running
// shard plus the prefetched next one), keeps every shard's parameters, gradients and AdamW
// state in host memory, and moves a shard onto whichever device runs its next task and back.
// Prints the model's bytes against the budgets, the shard plan, the validation loss as it
// falls, the bytes moved host <-> device with the time share of the transfers, and the
// utilisation.
//
//   examples/data/fetch_fashion_mnist.sh                  # once: the dataset into .data/
//   build/examples/train_larger_than_device               # ~147 MB model on 2 x 48 MiB devices
//   build/examples/train_larger_than_device --quick       # smoke run (< 20 s)
//   build/examples/train_larger_than_device --devices 3 --device-memory 32 --width 768 --depth 12
//
// Reports (trace.json for https://ui.perfetto.dev, gantt.svg, curves, CSVs) go to --out
// (default runs/larger_than_device).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "examples/example_cli.hpp"
#include "kernels/core/memory_pool.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "runtime/data/fashion_mnist.hpp"
#include "runtime/duration_format.hpp"
#include "runtime/partitioner.hpp"

using namespace hydra;

namespace {

struct Options {
  long long width = 1024;
  long long depth = 9;
  long long devices = 2;
  long long device_memory_mib = 48;
  std::string optimizer = "adamw";
  double lr = 3e-4;
  long long epochs = 1;
  long long train_samples = 40000;
  long long val_samples = 2000;
  long long batch_size = 256;
  long long evals = 5;
  std::string policy = "lrtf";
  std::string out = "runs/larger_than_device";
  std::string data_dir;
  long long seed = 1;
  bool quick = false;
  bool no_progress = false;
};

bool parse(int argc, char** argv, Options& o) {
  examples::Flags f("train_larger_than_device",
                    "Trains one wide MLP on Fashion-MNIST whose parameters and optimizer state\n"
                    "exceed every device's memory budget and all budgets together, by spilling\n"
                    "shards between host memory and the devices.");
  f.add_int("--width", &o.width, 16, 16384, "N", "units per hidden layer");
  f.add_int("--depth", &o.depth, 1, 256, "N", "hidden layers");
  f.add_int("--devices", &o.devices, 1, 64, "N", "virtual CPU devices cpu:0..N-1");
  f.add_int("--device-memory", &o.device_memory_mib, 1, 1 << 20, "MiB",
            "memory budget of each device");
  f.add_choice("--optimizer", &o.optimizer, {"adamw", "sgd"},
               "adamw (2 state tensors per parameter) or sgd with momentum 0.9 (1)");
  f.add_double("--lr", &o.lr, 1e-8, 10.0, "LR", "learning rate");
  f.add_int("--epochs", &o.epochs, 1, 1000, "N", "epochs");
  f.add_int("--train-samples", &o.train_samples, 100, 58000, "N",
            "training images, from a seeded shuffle of the training set (--quick: 2048)");
  f.add_int("--val-samples", &o.val_samples, 100, 10000, "N",
            "validation images held out from the same shuffle (--quick: 500)");
  f.add_int("--batch-size", &o.batch_size, 1, 4096, "N", "minibatch size");
  f.add_int("--evals", &o.evals, 1, 1000, "N", "validations over the run (the last at the end)");
  f.add_choice("--policy", &o.policy, {"lrtf", "fifo", "random"}, "scheduling policy");
  f.add_string("--out", &o.out, "DIR", "output directory for the reports and checkpoints");
  f.add_string(
      "--data-dir", &o.data_dir, "DIR",
      "directory with the Fashion-MNIST IDX files (default " + default_fashion_mnist_dir() + ")");
  f.add_int("--seed", &o.seed, 0, 1LL << 40, "N", "data split, initialisation and shuffling seed");
  f.add_switch("--quick", &o.quick, "smoke run: 2048 training and 500 validation images");
  f.add_switch("--no-progress", &o.no_progress, "no live progress display");
  if (!f.parse(argc, argv)) return false;
  if (o.quick) {
    if (!f.given("--train-samples")) o.train_samples = 2048;
    if (!f.given("--val-samples")) o.val_samples = 500;
    if (!f.given("--evals")) o.evals = 2;
  }
  examples::check_fashion_mnist_samples(o.train_samples, o.val_samples);
  return true;
}

Model make_model(const Options& o) {
  return make_mlp(784, std::vector<std::int64_t>(static_cast<std::size_t>(o.depth), o.width), 10);
}

}  // namespace

namespace {

int run_example(Options& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const int slots = opt.optimizer == "adamw" ? 2 : 1;
  const std::size_t budget = static_cast<std::size_t>(opt.device_memory_mib) << 20;

  // The model's size on a device: f32 values, gradients and optimizer state.
  const Model probe = make_model(opt);
  const auto params = static_cast<std::size_t>(probe.parameter_count());
  const std::size_t values = params * 4, state = values * static_cast<std::size_t>(slots);
  const std::size_t model_bytes = 2 * values + state;
  const std::size_t all_budgets = budget * static_cast<std::size_t>(opt.devices);
  std::printf("Model: MLP 784 -> %lld x %lld -> 10, %zu layers, %.2f M parameters\n", opt.depth,
              opt.width, probe.size(), static_cast<double>(params) / 1e6);
  std::printf("  values %s + gradients %s + %s state %s = %s\n",
              examples::mib(double(values)).c_str(), examples::mib(double(values)).c_str(),
              opt.optimizer == "adamw" ? "AdamW m, v" : "SGD momentum",
              examples::mib(double(state)).c_str(), examples::mib(double(model_bytes)).c_str());
  std::printf("Devices: %lld virtual CPU devices x %s = %s in all\n", opt.devices,
              examples::mib(double(budget)).c_str(), examples::mib(double(all_budgets)).c_str());
  std::printf("  the model is %.1fx one device's budget and %.2fx all budgets together\n",
              double(model_bytes) / double(budget), double(model_bytes) / double(all_budgets));
  if (model_bytes <= all_budgets)
    std::printf(
        "  note: with these flags the model fits the devices together; raise --width "
        "or --depth, or lower --device-memory, to need spilling\n");

  // The runtime plans the same way: shards that fit half the smallest budget.
  PartitionOptions po;
  po.budget_bytes = budget / 2;
  po.optimizer_slots = slots;
  const std::vector<ShardSpec> plan =
      partition(probe, {opt.batch_size, 1, kFashionMnistSide, kFashionMnistSide}, po);
  std::printf("Shard plan for batch %lld (each shard within half a budget, %s):\n", opt.batch_size,
              examples::mib(double(po.budget_bytes)).c_str());
  std::printf("  %-5s %-9s %-32s %11s %11s %11s %11s %10s\n", "shard", "layers", "first layer",
              "params+opt", "stash", "working", "total", "GFLOP/step");
  for (std::size_t s = 0; s < plan.size(); ++s) {
    const ShardSpec& p = plan[s];
    std::string first = probe.layer(p.begin).name();
    if (p.end - p.begin > 1) first += " +" + std::to_string(p.end - p.begin - 1);
    const std::string range = "[" + std::to_string(p.begin) + ", " + std::to_string(p.end) + ")";
    std::printf("  %-5zu %-9s %-32s %11s %11s %11s %11s %10.3f\n", s, range.c_str(), first.c_str(),
                examples::mib(double(p.memory.parameters)).c_str(),
                examples::mib(double(p.memory.stash)).c_str(),
                examples::mib(double(p.memory.working)).c_str(),
                examples::mib(double(p.memory.total())).c_str(), 3 * p.forward_flops / 1e9);
  }

  const std::string dir = opt.data_dir.empty() ? default_fashion_mnist_dir() : opt.data_dir;
  const Dataset all = load_fashion_mnist(dir, FashionMnistSplit::train);
  const DataSplits data = examples::seeded_split(all, opt.train_samples, opt.val_samples, opt.seed);
  const std::int64_t steps =
      opt.epochs * ((opt.train_samples + opt.batch_size - 1) / opt.batch_size);
  std::printf("Fashion-MNIST: %lld training, %lld validation images; %lld steps of %lld\n",
              opt.train_samples, opt.val_samples, static_cast<long long>(steps), opt.batch_size);

  JobSpec job;
  job.name = "mlp-" + std::to_string(opt.depth) + "x" + std::to_string(opt.width);
  job.config = {{"width", std::to_string(opt.width)},
                {"depth", std::to_string(opt.depth)},
                {"opt", opt.optimizer}};
  job.make_model = [&opt] { return make_model(opt); };
  job.make_optimizer = [&opt]() -> OptimizerPtr {
    if (opt.optimizer == "sgd") return std::make_unique<SGD>(opt.lr, 0.9);
    return std::make_unique<AdamW>(opt.lr, 0.9, 0.999, 1e-8, 0.0);
  };
  job.data = [data] { return data; };
  job.batch_size = opt.batch_size;
  job.epochs = opt.epochs;
  job.eval_every = std::max<std::int64_t>(1, (steps + opt.evals - 1) / opt.evals);
  job.seed = static_cast<std::uint64_t>(opt.seed);

  RuntimeOptions ro;
  ro.devices = examples::make_devices(opt.devices, opt.device_memory_mib);
  ro.policy = opt.policy;
  ro.progress = !opt.no_progress;
  ro.out_dir = opt.out;
  for (const DeviceSpec& d : ro.devices)
    memory_pool(d.device).reset_peak();
  std::fflush(stdout);

  const RunReport r = run({job}, ro);

  const JobResult& res = r.jobs.at(0);
  if (res.status != JobStatus::done) throw Error("training failed: " + res.error);
  std::set<int> shards;
  for (const TraceEvent& e : r.trace)
    shards.insert(e.shard);
  std::printf("\nTrained %lld steps in %s on %zu shards (planned %zu)\n",
              static_cast<long long>(res.steps), format_duration(res.seconds).c_str(),
              shards.size(), plan.size());
  std::printf("Validation (%lld images):\n  %6s %6s %10s %9s\n", opt.val_samples, "step", "epoch",
              "val loss", "val acc");
  for (std::size_t i = 0; i < res.val_loss.size(); ++i)
    std::printf("  %6lld %6.2f %10.4f %8.2f%%\n", static_cast<long long>(res.val_loss[i].step),
                res.val_loss[i].epoch, res.val_loss[i].value, 100.0 * res.val_accuracy.at(i).value);
  if (res.val_loss.size() >= 2)
    std::printf("  validation loss %s from %.4f to %.4f\n",
                res.val_loss.back().value < res.val_loss.front().value ? "fell" : "did NOT fall",
                res.val_loss.front().value, res.val_loss.back().value);

  const examples::TraceTotals tt = examples::trace_totals(r.trace);
  const double moved = double(tt.load_bytes + tt.store_bytes);
  std::printf("\nHost <-> device traffic: %s loaded, %s stored (%s, %.1fx the model per step)\n",
              examples::mib(double(tt.load_bytes)).c_str(),
              examples::mib(double(tt.store_bytes)).c_str(), examples::mib(moved).c_str(),
              moved / double(model_bytes) / double(std::max<std::int64_t>(1, res.steps)));
  std::printf(
      "  transfer time %.1f s (loads %.1f s, stores %.1f s) vs compute %.1f s: transfers are "
      "%.1f%% of device time, %.2f GB/s\n",
      tt.load_s + tt.store_s, tt.load_s, tt.store_s, tt.compute_s, 100.0 * tt.transfer_share(),
      tt.load_s + tt.store_s > 0 ? moved / (tt.load_s + tt.store_s) / 1e9 : 0.0);
  examples::print_utilisation(r);
  double sum = 0;
  for (const auto& [device, u] : r.utilisation)
    sum += u;
  std::printf(
      "  sum %.2f: one model's shards run one after another (each needs the previous one's "
      "output), so about one device computes at a time while the others load\n",
      sum);
  std::printf("Peak memory in use per device (budget %s):", examples::mib(double(budget)).c_str());
  for (const DeviceSpec& d : ro.devices)
    std::printf("  %s %s", d.device.str().c_str(),
                examples::mib(double(memory_pool(d.device).peak())).c_str());
  std::printf("\nWall: %s in the runtime, %s in all\n", format_duration(r.seconds).c_str(),
              format_duration(examples::seconds_since(t0)).c_str());
  examples::print_outputs(examples::complete_outputs(r, opt.out), opt.out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_program<Options>("train_larger_than_device", argc, argv, parse, run_example);
}
