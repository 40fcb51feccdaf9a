#include "actors/sweep_jobs.hpp"

#include <algorithm>

#include "kernels/layers/all.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/optim/sgd.hpp"
#include "runtime/data/fashion_mnist.hpp"
#include "runtime/data/synthetic.hpp"
#include "runtime/data/text_corpus.hpp"
#include "runtime/sweep/time_budget.hpp"

namespace hydra {

namespace {

// `n` indices spread evenly over [0, size).
std::vector<std::int64_t> spread(std::int64_t n, std::int64_t size) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < n; ++i)
    out.push_back(i * size / n);
  return out;
}

struct LoadedData {
  DataSplits splits;
  std::int64_t features = 0, classes = 0, vocab = 0;
  std::string summary;
};

LoadedData load_data(const sweep::DatasetSpec& d, bool quick) {
  LoadedData out;
  std::int64_t train = d.train_samples, val = d.val_samples;
  if (quick) {
    train = train > 0 ? std::min<std::int64_t>(train, 4000) : 4000;
    val = std::min<std::int64_t>(val, d.name == "kjv" ? 64 : 1000);
  }
  if (d.name == "fashion-mnist") {
    const std::string dir = d.path.empty() ? default_fashion_mnist_dir() : d.path;
    const Dataset all = load_fashion_mnist(dir, FashionMnistSplit::train);
    const std::vector<std::int64_t> perm = seeded_permutation(all.size(), d.seed);
    out.splits = {all.subset({perm.begin(), perm.begin() + train}),
                  all.subset({perm.end() - val, perm.end()})};
    out.features = 784;
    out.classes = 10;
    out.summary = "fashion-mnist from " + dir;
  } else if (d.name == "synthetic") {
    const Dataset all = make_synthetic_classification(train + val, d.features, d.classes, d.seed);
    auto [t, v] = all.split(train);
    out.splits = {t, v};
    out.features = d.features;
    out.classes = d.classes;
    out.summary = "synthetic data (" + std::to_string(d.features) + " features, " +
                  std::to_string(d.classes) + " classes)";
  } else {
    const TextCorpus corpus = d.path.empty() ? load_kjv_corpus() : load_text_corpus(d.path);
    const LmDatasets lm =
        make_lm_datasets(corpus.ids, {.context = d.context, .stride = 0, .val_fraction = 0.1});
    if (lm.validation.size() == 0)
      throw Error("dataset " + corpus.path + ": too short for one validation window of " +
                  std::to_string(d.context) + " characters");
    const std::int64_t nt = train > 0 ? std::min(train, lm.train.size()) : lm.train.size();
    const std::int64_t nv = std::min(val, lm.validation.size());
    out.splits = {nt == lm.train.size() ? lm.train : lm.train.subset(spread(nt, lm.train.size())),
                  lm.validation.subset(spread(nv, lm.validation.size()))};
    out.vocab = corpus.vocab.size();
    out.summary = "kjv from " + corpus.path + " (vocabulary " + std::to_string(out.vocab) +
                  ", windows of " + std::to_string(d.context) + " characters)";
  }
  out.summary += ": " + std::to_string(out.splits.train.size()) + " training and " +
                 std::to_string(out.splits.validation.size()) + " validation samples";
  return out;
}

// Conv 3x3 (width * 2^i channels), ReLU, MaxPool 2 per level, then Linear to the classes.
Model conv_net(std::int64_t width, std::int64_t depth, std::int64_t classes) {
  Model m;
  std::int64_t channels = 1, size = 28;
  for (std::int64_t i = 0; i < depth; ++i) {
    const std::int64_t next = width << i;
    m.emplace<Conv2d>(channels, next, 3, 1, 1).emplace<ReLU>().emplace<MaxPool2d>(2);
    channels = next;
    size /= 2;
  }
  m.emplace<Flatten>().emplace<Linear>(channels * size * size, classes);
  return m;
}

// conv_net as a model spec (kernels/model_spec.hpp), so cluster nodes can build it.
std::string conv_net_spec(std::int64_t width, std::int64_t depth, std::int64_t classes) {
  std::string s = "layers";
  std::int64_t channels = 1, size = 28;
  for (std::int64_t i = 0; i < depth; ++i) {
    const std::int64_t next = width << i;
    s += std::string(" conv2d ") + std::to_string(channels) + " " + std::to_string(next) +
         " 3 1 1; relu; maxpool2d 2;";
    channels = next;
    size /= 2;
  }
  return s + std::string(" flatten; linear ") + std::to_string(channels * size * size) + " " +
         std::to_string(classes);
}

}  // namespace

SweepPlan plan_sweep(const sweep::SweepFile& file, bool quick) {
  SweepPlan plan;
  plan.file = file;
  plan.trials = sweep::expand_search_space(file);
  const LoadedData data = load_data(file.dataset, quick);
  plan.data_summary = data.summary;
  const auto splits = std::make_shared<const DataSplits>(data.splits);
  sweep::BudgetSpec b = file.budget;
  if (quick) {  // a smoke run: 1 epoch or at most 60 steps
    if (b.epochs > 0) b.epochs = 1;
    if (b.steps > 0) {
      b.steps = std::min<std::int64_t>(b.steps, 60);
      if (b.eval_every > 0) b.eval_every = std::min<std::int64_t>(b.eval_every, 20);
    }
  }
  const sweep::TrainingSpace& tr = file.training;
  plan.budget = b;
  for (const sweep::Trial& t : plan.trials) {
    JobSpec j;
    j.name = t.name;
    j.config = t.config();
    const std::int64_t w = t.width, dep = t.depth, heads = t.heads;
    if (t.family == "mlp") {
      j.make_model = [in = data.features, classes = data.classes, w, dep] {
        return make_mlp(in, std::vector<std::int64_t>(static_cast<std::size_t>(dep), w), classes);
      };
      std::string hidden;
      for (std::int64_t i = 0; i < dep; ++i)
        hidden += std::string(i ? "," : "") + std::to_string(w);
      j.model_spec = std::string("mlp ") + std::to_string(data.features) + " " +
                     (hidden.empty() ? std::string("-") : hidden) + " " +
                     std::to_string(data.classes);
    } else if (t.family == "cnn") {
      j.make_model = [classes = data.classes, w, dep] { return conv_net(w, dep, classes); };
      j.model_spec = conv_net_spec(w, dep, data.classes);
    } else {
      j.make_model = [vocab = data.vocab, ctx = file.dataset.context, w, dep, heads] {
        return make_gpt(vocab, ctx, w, heads, dep);
      };
      j.model_spec = std::string("gpt ") + std::to_string(data.vocab) + " " +
                     std::to_string(file.dataset.context) + " " + std::to_string(w) + " " +
                     std::to_string(heads) + " " + std::to_string(dep);
    }
    j.make_optimizer = [opt = t.optimizer, lr = t.lr, m = tr.momentum,
                        wd = tr.weight_decay]() -> OptimizerPtr {
      if (opt == "sgd") return std::make_unique<SGD>(lr, m, wd);
      return std::make_unique<AdamW>(lr, 0.9, 0.999, 1e-8, wd);
    };
    j.data = [splits] { return *splits; };
    j.data_key = "sweep:" + file.name;
    j.batch_size = t.batch_size;
    const std::int64_t per_epoch = (data.splits.train.size() + t.batch_size - 1) / t.batch_size;
    if (b.epochs > 0) {
      j.epochs = b.epochs;
    } else {
      j.max_steps = b.steps;
    }
    j.eval_every =
        b.eval_every > 0
            ? b.eval_every
            : std::max<std::int64_t>(1, (per_epoch + b.evals_per_epoch - 1) / b.evals_per_epoch);
    j.seed = file.seed;
    j.clip_grad_norm = tr.clip_grad_norm;
    plan.steps_per_epoch.push_back(per_epoch);
    plan.total_steps.push_back(b.epochs > 0 ? b.epochs * per_epoch : b.steps);
    plan.jobs.push_back(std::move(j));
  }
  return plan;
}

std::vector<DeviceSpec> sweep_devices(const sweep::SweepFile& file) {
  const sweep::DevicesSpec& d = file.devices;
  const std::string where = "sweep file " + file.source + ": ";
  std::vector<DeviceSpec> out;
  if (d.kind == "nodes") return out;  // the nodes' devices only (sweep_nodes)
  if (d.kind == "cpu") {
    for (std::int64_t i = 0; i < d.count; ++i)
      out.push_back({Device::cpu(static_cast<int>(i)), 0});
  } else {
    out = default_devices();
    if (d.kind == "gpu") {
      const auto gpus =
          static_cast<std::int64_t>(std::count_if(out.begin(), out.end(), [](const DeviceSpec& s) {
            return s.device.kind == DeviceKind::cuda;
          }));
      if (gpus == 0)
        throw Error(where + "\"devices.kind\": \"gpu\", but there is no CUDA GPU here");
      if (d.count > gpus)
        throw Error(where + "\"devices.count\": " + std::to_string(d.count) + " GPUs asked, " +
                    std::to_string(gpus) + " here");
      if (d.count > 0) out.resize(static_cast<std::size_t>(d.count));
    }
  }
  for (DeviceSpec& s : out)
    if (d.memory_mib > 0) s.memory_bytes = static_cast<std::size_t>(d.memory_mib) << 20;
  return out;
}

std::vector<std::string> sweep_nodes(const sweep::SweepFile& file,
                                     const std::vector<std::string>& extra,
                                     const std::string& secret) {
  std::vector<std::string> out;
  if (file.devices.kind == "nodes") out = file.devices.nodes;
  out.insert(out.end(), extra.begin(), extra.end());
  if (!out.empty() && secret.empty())
    throw Error("sweep file " + file.source +
                ": the run uses cluster nodes but has no shared secret for them; give "
                "--node-secret-file PATH or set HYDRA_NODE_SECRET");
  return out;
}

std::shared_ptr<EarlyStopping> make_sweep_rule(const SweepPlan& plan,
                                               std::shared_ptr<sweep::Asha>* asha) {
  const sweep::SweepFile& f = plan.file;
  std::shared_ptr<sweep::Asha> sh;
  if (f.early_stopping.method != "none") {
    sweep::AshaOptions o;
    o.synchronous = f.early_stopping.method == "sha";
    o.min_resource = f.early_stopping.min_resource;
    o.reduction_factor = f.early_stopping.reduction_factor;
    o.max_rungs = static_cast<int>(f.early_stopping.max_rungs);
    o.maximize = f.metric == "val_accuracy";
    sh = std::make_shared<sweep::Asha>(o);
    for (std::size_t i = 0; i < plan.jobs.size(); ++i) {
      sh->add_job(plan.jobs[i].name);
      if (f.early_stopping.resource == "epochs")
        sh->set_steps_per_unit(plan.jobs[i].name, double(plan.steps_per_epoch[i]));
    }
  }
  if (asha) *asha = sh;
  if (f.budget.time_seconds > 0)
    return std::make_shared<sweep::TimeBudget>(f.budget.time_seconds, sh);
  return sh;
}

}  // namespace hydra
