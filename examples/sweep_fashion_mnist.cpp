// The main job: a hyperparameter sweep of MLPs and CNNs on Fashion-MNIST, every configuration
// trained at once by hydra::run on the default devices (all GPUs, else two virtual CPU devices),
// shard tasks of all models sharing the devices. Shows the live progress display, then prints
// the results ranked by validation accuracy and the per-device utilisation, and writes the run's
// reports (trace.json, gantt.svg, curve SVGs, results/curves/utilisation CSVs, results.txt,
// checkpoints/) to the output directory.
//
//   examples/data/fetch_fashion_mnist.sh              # once: the dataset into .data/
//   build/examples/sweep_fashion_mnist                # 14 configurations, 2 epochs on 30000 images
//   build/examples/sweep_fashion_mnist --quick        # smoke run (< 30 s)
//   build/examples/sweep_fashion_mnist --devices 4 --device-memory 64 --policy fifo
//   build/examples/sweep_fashion_mnist --epochs 10 --train-samples 55000 --out runs/fm-long
//
// Then open runs/fashion_mnist/trace.json in https://ui.perfetto.dev (or gantt.svg in a
// browser) to see the shard tasks of the models interleaved on the devices.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "examples/example_cli.hpp"
#include "kernels/layers/all.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "runtime/data/fashion_mnist.hpp"
#include "runtime/duration_format.hpp"
#include "runtime/results_table.hpp"

using namespace hydra;

namespace {

struct Options {
  long long epochs = 2;
  long long train_samples = 30000;
  long long val_samples = 5000;
  long long batch_size = 128;
  long long evals_per_epoch = 2;
  long long devices = 0;  // 0: default devices
  long long device_memory_mib = 0;
  std::string policy = "lrtf";
  std::string out = "runs/fashion_mnist";
  std::string data_dir;
  std::string only;
  long long seed = 1;
  bool quick = false;
  bool no_progress = false;
};

// One point of the sweep.
struct Config {
  std::string name;
  std::string family;     // mlp or cnn
  std::string width;      // hidden units (mlp) or channels of the convolutions (cnn)
  int depth = 0;          // hidden layers (mlp) or convolutions (cnn)
  std::string optimizer;  // sgd (momentum 0.9) or adamw
  double lr = 0;
  std::function<Model()> make_model;
};

// Conv 3x3 (c1) ReLU MaxPool, Conv 3x3 (c2) ReLU MaxPool, Linear to 10 classes.
Model small_cnn(std::int64_t c1, std::int64_t c2) {
  Model m;
  m.emplace<Conv2d>(1, c1, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2);
  m.emplace<Conv2d>(c1, c2, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2);
  m.emplace<Flatten>().emplace<Linear>(c2 * 7 * 7, 10);
  return m;
}

std::string lr_text(double lr) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", lr);
  return buf;
}

std::vector<Config> configurations() {
  std::vector<Config> out;
  auto mlp = [&](std::int64_t width, int depth, const std::string& opt, double lr) {
    const std::string w = std::to_string(width);
    out.push_back({"mlp-" + w + "x" + std::to_string(depth) + "-" + opt + "-" + lr_text(lr), "mlp",
                   w, depth, opt, lr, [width, depth] {
                     return make_mlp(784, std::vector<std::int64_t>(depth, width), 10);
                   }});
  };
  // Width x depth x optimizer x learning rate, chosen to span good and poor settings.
  mlp(128, 1, "sgd", 0.05);
  mlp(256, 1, "adamw", 1e-3);
  mlp(256, 2, "sgd", 0.02);
  mlp(256, 2, "sgd", 0.1);
  mlp(256, 3, "adamw", 3e-3);
  mlp(512, 1, "sgd", 0.05);
  mlp(512, 2, "adamw", 1e-3);
  mlp(512, 2, "adamw", 1e-4);
  mlp(1024, 1, "adamw", 1e-3);
  mlp(1024, 2, "sgd", 0.05);
  out.push_back({"cnn-lenet-adamw-0.002", "cnn", "6-16", 2, "adamw", 2e-3,
                 [] { return make_cnn(1, 28, 10); }});
  out.push_back(
      {"cnn-lenet-sgd-0.05", "cnn", "6-16", 2, "sgd", 0.05, [] { return make_cnn(1, 28, 10); }});
  out.push_back({"cnn-16-32-adamw-0.001", "cnn", "16-32", 2, "adamw", 1e-3,
                 [] { return small_cnn(16, 32); }});
  out.push_back(
      {"cnn-8-16-sgd-0.02", "cnn", "8-16", 2, "sgd", 0.02, [] { return small_cnn(8, 16); }});
  return out;
}

OptimizerPtr make_optimizer(const std::string& name, double lr) {
  if (name == "sgd") return std::make_unique<SGD>(lr, 0.9);
  return std::make_unique<AdamW>(lr, 0.9, 0.999, 1e-8, 1e-4);
}

bool parse(int argc, char** argv, Options& o) {
  examples::Flags f("sweep_fashion_mnist",
                    "Trains a sweep of MLP and CNN configurations on Fashion-MNIST all at once\n"
                    "with Hydra's shard-parallel runtime and reports the ranked results.");
  f.add_int("--epochs", &o.epochs, 1, 1000, "N", "epochs per configuration (--quick: 1)");
  f.add_int("--train-samples", &o.train_samples, 100, 55000, "N",
            "training images, from a seeded shuffle of the training set (--quick: 4000)");
  f.add_int("--val-samples", &o.val_samples, 100, 10000, "N",
            "validation images, held out from the same shuffle (--quick: 1000)");
  f.add_int("--batch-size", &o.batch_size, 1, 4096, "N", "minibatch size");
  f.add_int("--evals-per-epoch", &o.evals_per_epoch, 1, 100, "N",
            "validations per epoch (and one at the end)");
  examples::add_device_flags(f, &o.devices, &o.device_memory_mib, &o.policy);
  f.add_string("--out", &o.out, "DIR", "output directory for the reports and checkpoints");
  f.add_string(
      "--data-dir", &o.data_dir, "DIR",
      "directory with the Fashion-MNIST IDX files (default " + default_fashion_mnist_dir() + ")");
  f.add_string("--only", &o.only, "TEXT", "train only configurations whose name contains TEXT");
  f.add_int("--seed", &o.seed, 0, 1LL << 40, "N", "data split, initialisation and shuffling seed");
  f.add_switch("--quick", &o.quick,
               "smoke run: 1 epoch on 4000 images, 1000 for validation (< 30 s on 2 cores)");
  f.add_switch("--no-progress", &o.no_progress, "no live progress display");
  if (!f.parse(argc, argv)) return false;
  if (o.quick) {
    if (!f.given("--epochs")) o.epochs = 1;
    if (!f.given("--train-samples")) o.train_samples = 4000;
    if (!f.given("--val-samples")) o.val_samples = 1000;
  }
  examples::check_fashion_mnist_samples(o.train_samples, o.val_samples);
  return true;
}

}  // namespace

namespace {

int run_example(Options& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string dir = opt.data_dir.empty() ? default_fashion_mnist_dir() : opt.data_dir;
  const Dataset all = load_fashion_mnist(dir, FashionMnistSplit::train);
  const DataSplits data = examples::seeded_split(all, opt.train_samples, opt.val_samples, opt.seed);
  const double load_s = examples::seconds_since(t0);
  std::printf("Fashion-MNIST from %s: %lld training and %lld validation images (%.1f s)%s\n",
              dir.c_str(), opt.train_samples, opt.val_samples, load_s, opt.quick ? " [quick]" : "");

  const std::int64_t steps_per_epoch = (opt.train_samples + opt.batch_size - 1) / opt.batch_size;
  std::vector<JobSpec> jobs;
  for (const Config& c : configurations()) {
    if (!opt.only.empty() && c.name.find(opt.only) == std::string::npos) continue;
    JobSpec j;
    j.name = c.name;
    j.config = {{"model", c.family},
                {"width", c.width},
                {"depth", std::to_string(c.depth)},
                {"opt", c.optimizer},
                {"lr", lr_text(c.lr)}};
    j.make_model = c.make_model;
    j.make_optimizer = [o = c.optimizer, lr = c.lr] { return make_optimizer(o, lr); };
    j.data = [data] { return data; };
    j.data_key = "fashion-mnist";
    j.batch_size = opt.batch_size;
    j.epochs = opt.epochs;
    j.eval_every = std::max<std::int64_t>(
        1, (steps_per_epoch + opt.evals_per_epoch - 1) / opt.evals_per_epoch);
    j.seed = static_cast<std::uint64_t>(opt.seed);
    jobs.push_back(std::move(j));
  }
  if (jobs.empty())
    throw examples::UsageError("--only: '" + opt.only + "' matches no configuration");

  RuntimeOptions ro;
  ro.devices = examples::make_devices(opt.devices, opt.device_memory_mib);
  ro.policy = opt.policy;
  ro.policy_seed = static_cast<std::uint64_t>(opt.seed);
  ro.progress = !opt.no_progress;
  ro.out_dir = opt.out;
  std::string device_list;
  for (const DeviceSpec& d : ro.devices)
    device_list += (device_list.empty() ? "" : ", ") + d.device.str() +
                   (d.memory_bytes > 0 ? " (" + examples::mib(double(d.memory_bytes)) + ")" : "");
  std::printf(
      "Training %zu configurations at once on %s: %lld epoch%s of %lld steps (batch %lld), "
      "policy %s\n",
      jobs.size(), device_list.c_str(), opt.epochs, opt.epochs == 1 ? "" : "s",
      static_cast<long long>(steps_per_epoch), opt.batch_size, opt.policy.c_str());
  std::fflush(stdout);

  const RunReport r = run(jobs, ro);

  const std::string table = format_results_table(r.jobs, "val_accuracy");
  std::printf("\nResults, ranked by best validation accuracy (%lld held-out images):\n%s\n",
              opt.val_samples, table.c_str());
  examples::print_utilisation(r);
  const examples::TraceTotals tt = examples::trace_totals(r.trace);
  std::printf(
      "  %zu compute tasks, %.1f s of compute; %s loaded and %s stored host<->device "
      "(%.1f%% of device time in transfers)\n",
      tt.tasks, tt.compute_s, examples::mib(double(tt.load_bytes)).c_str(),
      examples::mib(double(tt.store_bytes)).c_str(), 100.0 * tt.transfer_share());

  std::size_t done = 0;
  const JobResult* best = nullptr;
  for (const JobResult& j : r.jobs) {
    if (j.status != JobStatus::done) continue;
    ++done;
    if (j.best_step >= 0 && (!best || j.best_val_accuracy > best->best_val_accuracy)) best = &j;
  }
  if (best)
    std::printf("\nBest: %s with %.2f%% validation accuracy (loss %.4f) at step %lld\n",
                best->name.c_str(), 100.0 * best->best_val_accuracy, best->best_val_loss,
                static_cast<long long>(best->best_step));
  std::printf("Sweep of %zu models: %s in the runtime, %s in all (data load included)\n",
              r.jobs.size(), format_duration(r.seconds).c_str(),
              format_duration(examples::seconds_since(t0)).c_str());

  {
    std::filesystem::create_directories(opt.out);
    std::ofstream txt(std::filesystem::path(opt.out) / "results.txt");
    txt << "Results, ranked by best validation accuracy:\n"
        << table << "\nutilisation: " << examples::utilisation_line(r) << "\nwall: " << r.seconds
        << " s\n";
  }
  examples::print_outputs(examples::complete_outputs(r, opt.out), opt.out);
  // A diverged configuration is a result of the sweep, not an error of the program.
  return done > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_program<Options>("sweep_fashion_mnist", argc, argv, parse, run_example);
}
