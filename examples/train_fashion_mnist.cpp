// Trains several MLP and CNN configurations on Fashion-MNIST, one after another, and prints
// per-epoch loss and accuracy and a final table sorted by test accuracy. (Once the multi-model
// runtime exists, these configurations become concurrent jobs.)
//
//   examples/data/fetch_fashion_mnist.sh          # once: fetch the dataset into .data/
//   build/examples/train_fashion_mnist            # all configurations, 3 epochs, CPU
//   build/examples/train_fashion_mnist --quick    # smoke run: 1 epoch on 10000 samples
//   build/examples/train_fashion_mnist --device cuda:0 --epochs 10
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/core/cuda_api.hpp"
#include "kernels/layers/all.hpp"
#include "kernels/loss.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "runtime/data/fashion_mnist.hpp"

using namespace hydra;

namespace {

struct Options {
  int epochs = 3;
  std::string device = "cpu";
  bool quick = false;
  std::int64_t batch_size = 128;
  std::uint64_t seed = 1;
  std::string data_dir;  // default: default_fashion_mnist_dir()
  std::string only;      // run only configurations whose name contains this
};

struct Config {
  std::string name;
  std::function<Model()> make_model;
  std::function<OptimizerPtr()> make_optimizer;
};

struct EvalResult {
  double loss = 0, accuracy = 0;
};

struct RunResult {
  std::string name, optimizer;
  std::int64_t params = 0;
  double train_loss = 0, train_accuracy = 0, test_loss = 0, test_accuracy = 0;
  double seconds = 0, samples_per_second = 0;
};

// `t` itself when it already lives on `device`, else a copy there.
Tensor on_device(const Tensor& t, Device device) {
  return t.device() == device ? t : t.to(device);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void usage(const char* argv0) {
  std::printf(
      "usage: %s [--epochs N] [--device cpu|auto|cpu:N|cuda:N] [--quick] [--batch-size N]\n"
      "          [--seed N] [--data-dir DIR] [--only NAME]\n"
      "  --epochs N      epochs per configuration (default 3; --quick: 1)\n"
      "  --device D      cpu (default), cuda:0 (needs a CUDA build and a GPU), or auto\n"
      "                  (cuda:0 when a GPU is available, else cpu)\n"
      "  --quick         smoke run: 1 epoch on the first 10000 training images, 2000 test images\n"
      "  --batch-size N  minibatch size (default 128)\n"
      "  --seed N        initialisation and shuffling seed (default 1)\n"
      "  --data-dir DIR  directory with the Fashion-MNIST IDX files\n"
      "                  (default $HYDRA_DATA_DIR/fashion-mnist or <repo>/.data/fashion-mnist)\n"
      "  --only NAME     train only configurations whose name contains NAME\n",
      argv0);
}

Options parse(int argc, char** argv) {
  Options o;
  bool epochs_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Error("option " + a + " needs a value (see --help)");
      return argv[++i];
    };
    auto integer = [&](long long lo) {
      const std::string v = value();
      char* end = nullptr;
      const long long x = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || x < lo)
        throw Error("option " + a + ": expected an integer >= " + std::to_string(lo) + ", got '" +
                    v + "'");
      return x;
    };
    if (a == "--help" || a == "-h") {
      usage(argv[0]);
      std::exit(0);
    } else if (a == "--epochs") {
      o.epochs = static_cast<int>(integer(1));
      epochs_given = true;
    } else if (a == "--device") {
      o.device = value();
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--batch-size") {
      o.batch_size = integer(1);
    } else if (a == "--seed") {
      o.seed = static_cast<std::uint64_t>(integer(0));
    } else if (a == "--data-dir") {
      o.data_dir = value();
    } else if (a == "--only") {
      o.only = value();
    } else {
      throw Error("unknown option '" + a + "' (see --help)");
    }
  }
  if (o.quick && !epochs_given) o.epochs = 1;
  return o;
}

Device resolve_device(const std::string& text) {
  if (text == "cpu") return Device::host();
  if (text == "auto") return cuda::available() ? Device::cuda(0) : Device::host();
  const Device d = parse_device(text);
  if (d.is_cuda() && d.index >= cuda::device_count())
    throw Error("device " + text + " is not available (" + std::to_string(cuda::device_count()) +
                " CUDA devices" +
#ifdef HYDRA_WITH_CUDA
                ""
#else
                "; this build has no CUDA backend"
#endif
                + "); use --device cpu");
  return d;
}

std::vector<Config> configurations() {
  std::vector<Config> c;
  c.push_back({"mlp-256 adamw", [] { return make_mlp(784, {256}, 10); },
               [] { return std::make_unique<AdamW>(1e-3, 0.9, 0.999, 1e-8, 0.0); }});
  c.push_back({"mlp-256-128 sgd",
               [] {
                 return make_mlp(784, {256, 128}, 10);
               },
               [] { return std::make_unique<SGD>(0.05, 0.9); }});
  c.push_back({"mlp-512-256 dropout adamw",
               [] {
                 return make_mlp(784, {512, 256}, 10, 0.2);
               },
               [] { return std::make_unique<AdamW>(1e-3, 0.9, 0.999, 1e-8, 0.01); }});
  c.push_back({"cnn-16-32 adamw",
               [] {
                 // Conv 3x3 (16), pool, Conv 3x3 (32), pool, Linear 1568-64-10.
                 Model m;
                 m.emplace<Conv2d>(1, 16, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2);
                 m.emplace<Conv2d>(16, 32, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2);
                 m.emplace<Flatten>().emplace<Linear>(32 * 7 * 7, 64).emplace<ReLU>();
                 m.emplace<Linear>(64, 10);
                 return m;
               },
               [] { return std::make_unique<AdamW>(1e-3, 0.9, 0.999, 1e-8, 0.0); }});
  c.push_back({"cnn-lenet adamw", [] { return make_cnn(1, 28, 10); },
               [] { return std::make_unique<AdamW>(2e-3, 0.9, 0.999, 1e-8, 0.0); }});
  return c;
}

EvalResult evaluate(Model& model, const Dataset& data, ExecContext& ctx,
                    std::vector<Stash>& stashes) {
  DataLoader loader(data, {.batch_size = 1000, .shuffle = false});
  Batch b;
  double loss_sum = 0;
  std::int64_t correct = 0, count = 0;
  while (loader.next(b)) {
    const Tensor x = on_device(b.inputs, ctx.device);
    const Tensor y = on_device(b.labels, ctx.device);
    const LossResult r = softmax_cross_entropy(ctx, model.forward(ctx, x, stashes, false), y,
                                               /*with_grad=*/false);
    loss_sum += r.loss * static_cast<double>(r.count);
    correct += r.correct;
    count += r.count;
  }
  const double n = static_cast<double>(std::max<std::int64_t>(count, 1));
  return {loss_sum / n, static_cast<double>(correct) / n};
}

RunResult train(const Config& cfg, const Dataset& train_set, const Dataset& test_set,
                const Options& opt, Device device) {
  ExecContext ctx = ExecContext::on(device);
  Model model = cfg.make_model();
  model.init(opt.seed);
  model.to(device);
  OptimizerPtr optimizer = cfg.make_optimizer();
  const std::vector<Parameter*> params = model.parameters();
  RunResult result;
  result.name = cfg.name;
  result.optimizer = optimizer->name();
  result.params = model.parameter_count();
  std::printf("\n=== %s: %lld parameters, %s, batch %lld, %d epochs on %s\n", cfg.name.c_str(),
              static_cast<long long>(result.params), result.optimizer.c_str(),
              static_cast<long long>(opt.batch_size), opt.epochs, device.str().c_str());

  DataLoaderOptions lo{
      .batch_size = opt.batch_size, .shuffle = true, .drop_last = false, .seed = opt.seed};
  if (device.is_cuda()) lo.device = Device::pinned();
  DataLoader loader(train_set, lo);
  std::vector<Stash> stashes;
  const auto start = std::chrono::steady_clock::now();
  double train_seconds = 0;
  for (int epoch = 0; epoch < opt.epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    loader.start_epoch(epoch);
    Batch b;
    double loss_sum = 0;
    std::int64_t correct = 0, count = 0;
    while (loader.next(b)) {
      const Tensor x = on_device(b.inputs, device);
      const Tensor y = on_device(b.labels, device);
      model.zero_grad(ctx);
      const Tensor logits = model.forward(ctx, x, stashes, true);
      const LossResult r = softmax_cross_entropy(ctx, logits, y);
      model.backward(ctx, r.dlogits, stashes);
      optimizer->step(params, ctx);
      loss_sum += r.loss * static_cast<double>(r.count);
      correct += r.correct;
      count += r.count;
    }
    ctx.synchronize();
    const double epoch_seconds = seconds_since(epoch_start);
    train_seconds += epoch_seconds;
    result.train_loss = loss_sum / static_cast<double>(count);
    result.train_accuracy = static_cast<double>(correct) / static_cast<double>(count);
    const EvalResult test = evaluate(model, test_set, ctx, stashes);
    result.test_loss = test.loss;
    result.test_accuracy = test.accuracy;
    std::printf(
        "  epoch %2d  train loss %.4f  acc %.4f | test loss %.4f  acc %.4f | %6.1f s, "
        "%7.0f samples/s\n",
        epoch + 1, result.train_loss, result.train_accuracy, test.loss, test.accuracy,
        epoch_seconds, static_cast<double>(count) / epoch_seconds);
    std::fflush(stdout);
  }
  result.seconds = seconds_since(start);
  result.samples_per_second =
      static_cast<double>(loader.num_samples()) * opt.epochs / std::max(train_seconds, 1e-9);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options opt = parse(argc, argv);
    const Device device = resolve_device(opt.device);
    const std::string dir = opt.data_dir.empty() ? default_fashion_mnist_dir() : opt.data_dir;

    const auto load_start = std::chrono::steady_clock::now();
    Dataset train_set = load_fashion_mnist(dir, FashionMnistSplit::train);
    Dataset test_set = load_fashion_mnist(dir, FashionMnistSplit::test);
    if (opt.quick) {
      train_set = train_set.slice(0, 10000);
      test_set = test_set.slice(0, 2000);
    }
    std::printf("Fashion-MNIST from %s: %lld training, %lld test images (%.1f s to load)%s\n",
                dir.c_str(), static_cast<long long>(train_set.size()),
                static_cast<long long>(test_set.size()), seconds_since(load_start),
                opt.quick ? " [quick mode]" : "");

    std::vector<RunResult> results;
    for (const Config& cfg : configurations()) {
      if (!opt.only.empty() && cfg.name.find(opt.only) == std::string::npos) continue;
      results.push_back(train(cfg, train_set, test_set, opt, device));
    }
    if (results.empty()) throw Error("--only '" + opt.only + "' matches no configuration");

    std::stable_sort(results.begin(), results.end(), [](const RunResult& a, const RunResult& b) {
      return a.test_accuracy > b.test_accuracy;
    });
    std::printf("\nResults after %d epoch%s on %s, sorted by test accuracy:\n", opt.epochs,
                opt.epochs == 1 ? "" : "s", device.str().c_str());
    std::printf("%-4s %-28s %9s %10s %10s %9s %9s %8s %10s\n", "rank", "model", "params",
                "train loss", "train acc", "test loss", "test acc", "time s", "samples/s");
    int rank = 0;
    for (const RunResult& r : results)
      std::printf("%-4d %-28s %9lld %10.4f %10.4f %9.4f %9.4f %8.1f %10.0f\n", ++rank,
                  r.name.c_str(), static_cast<long long>(r.params), r.train_loss, r.train_accuracy,
                  r.test_loss, r.test_accuracy, r.seconds, r.samples_per_second);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_fashion_mnist: %s\n", e.what());
    return 1;
  }
}
