// A character-level GPT sweep on the King James Bible: several make_gpt configurations (width,
// depth, heads, learning rate) trained at once by hydra::run with AdamW and global grad-norm
// clipping on next-character windows, ranked by validation loss (and bits per character). At
// the end the best model writes ~200 characters: its trained parameters come back through
// JobSpec::on_finish and the decoding runs on the host with the kernels API.
//
//   examples/data/fetch_bible.sh                    # once: .data/bible/kjv.txt
//   build/examples/sweep_char_gpt                   # 5 configurations, 300 steps each
//   build/examples/sweep_char_gpt --quick           # smoke run (< 30 s)
//   build/examples/sweep_char_gpt --steps 2000 --context 128 --temperature 0 --prompt "Jesus"
//
// Reports (trace.json for https://ui.perfetto.dev, gantt.svg, curves, CSVs) go to --out
// (default runs/char_gpt).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>
#include <string>
#include <vector>

#include "actors/hydra.hpp"
#include "examples/example_cli.hpp"
#include "kernels/model_zoo.hpp"
#include "kernels/optim/adamw.hpp"
#include "kernels/random.hpp"
#include "runtime/data/text_corpus.hpp"
#include "runtime/duration_format.hpp"
#include "runtime/results_table.hpp"

using namespace hydra;

namespace {

struct Options {
  long long steps = 300;
  long long context = 64;
  long long batch_size = 32;
  long long eval_every = 75;
  long long val_windows = 256;
  double clip = 1.0;
  long long devices = 0;
  long long device_memory_mib = 0;
  std::string policy = "lrtf";
  std::string out = "runs/char_gpt";
  std::string corpus;
  std::string only;
  std::string prompt = "And God said";
  long long gen_chars = 200;
  double temperature = 0.8;
  long long seed = 1;
  bool quick = false;
  bool no_progress = false;
};

struct Config {
  std::int64_t dim, layers, heads;
  double lr;
  std::string name() const {
    char buf[96];
    std::snprintf(buf, sizeof buf, "gpt-d%lld-l%lld-h%lld-lr%g", static_cast<long long>(dim),
                  static_cast<long long>(layers), static_cast<long long>(heads), lr);
    return buf;
  }
};

std::vector<Config> configurations() {
  return {
      {64, 2, 4, 3e-3},   // the baseline
      {64, 2, 4, 1e-2},   // higher learning rate
      {64, 4, 4, 3e-3},   // deeper
      {96, 2, 6, 3e-3},   // wider, more heads
      {128, 2, 8, 2e-3},  // wider still
  };
}

std::string number(double x, const char* format = "%g") {
  char buf[48];
  std::snprintf(buf, sizeof buf, format, x);
  return buf;
}

bool parse(int argc, char** argv, Options& o) {
  examples::Flags f("sweep_char_gpt",
                    "Trains several character-level GPTs on the King James Bible at once with\n"
                    "Hydra's shard-parallel runtime, ranks them by validation loss and samples\n"
                    "text from the best one.");
  f.add_int("--steps", &o.steps, 1, 1000000, "N", "training steps per model (--quick: 60)");
  f.add_int("--context", &o.context, 8, 512, "T", "characters per training window");
  f.add_int("--batch-size", &o.batch_size, 1, 4096, "N", "windows per minibatch");
  f.add_int("--eval-every", &o.eval_every, 1, 1000000, "N",
            "steps between validations (--quick: 30)");
  f.add_int("--val-windows", &o.val_windows, 1, 1000000, "N",
            "validation windows, spread evenly over the held-out last 10% of the text "
            "(--quick: 64)");
  f.add_double("--clip", &o.clip, 0.0, 1e6, "NORM",
               "global grad-norm clipping threshold; 0 turns clipping off");
  examples::add_device_flags(f, &o.devices, &o.device_memory_mib, &o.policy);
  f.add_string("--out", &o.out, "DIR", "output directory for the reports and checkpoints");
  f.add_string("--corpus", &o.corpus, "FILE",
               "text file to train on (default " + default_kjv_path() +
                   ", written by examples/data/fetch_bible.sh)");
  f.add_string("--only", &o.only, "TEXT", "train only configurations whose name contains TEXT");
  f.add_string("--prompt", &o.prompt, "TEXT", "text the generation starts from");
  f.add_int("--gen-chars", &o.gen_chars, 0, 100000, "N", "characters to generate (0: none)");
  f.add_double("--temperature", &o.temperature, 0.0, 10.0, "T",
               "sampling temperature; 0 decodes greedily (the most likely character)");
  f.add_int("--seed", &o.seed, 0, 1LL << 40, "N", "initialisation, shuffling and sampling seed");
  f.add_switch("--quick", &o.quick,
               "smoke run: 60 steps, validation every 30 on 64 windows (< 30 s on 2 cores)");
  f.add_switch("--no-progress", &o.no_progress, "no live progress display");
  if (!f.parse(argc, argv)) return false;
  if (o.quick) {
    if (!f.given("--steps")) o.steps = 60;
    if (!f.given("--eval-every")) o.eval_every = 30;
    if (!f.given("--val-windows")) o.val_windows = 64;
  }
  return true;
}

// Parameter values of a trained model, copied to host memory.
using Weights = std::vector<Tensor>;

// Continues `prompt` by `n` characters with the model, on the host: each step runs the model
// over the last `context` characters and draws the next one from the last position's softmax
// at `temperature` (0: argmax).
std::string generate(Model& model, const CharVocab& vocab, const std::string& prompt,
                     std::int64_t context, std::int64_t n, double temperature, std::uint64_t seed) {
  ExecContext ctx = ExecContext::on(Device::host());
  std::vector<std::int32_t> ids = vocab.encode(prompt);
  std::vector<Stash> stashes;
  std::string out;
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t t = std::min<std::int64_t>(context, static_cast<std::int64_t>(ids.size()));
    const std::vector<std::int32_t> window(ids.end() - t, ids.end());
    const Tensor logits = model.forward(ctx, Tensor::from_ints(window, {1, t}), stashes, false);
    ctx.synchronize();
    const std::vector<float> all = logits.to_floats();  // [1, t, vocab]
    const std::int64_t v = vocab.size();
    const float* last = all.data() + (t - 1) * v;
    std::int32_t next = 0;
    for (std::int32_t c = 1; c < v; ++c)
      if (last[c] > last[next]) next = c;
    if (temperature > 0) {
      std::vector<double> p(static_cast<std::size_t>(v));
      double sum = 0;
      for (std::int64_t c = 0; c < v; ++c)
        sum += p[static_cast<std::size_t>(c)] = std::exp((last[c] - last[next]) / temperature);
      double u = static_cast<double>(uniform01(seed, static_cast<std::uint64_t>(k))) * sum;
      for (std::int32_t c = 0; c < v; ++c) {
        u -= p[static_cast<std::size_t>(c)];
        if (u < 0) {
          next = c;
          break;
        }
      }
    }
    ids.push_back(next);
    out += vocab.byte(next);
  }
  return out;
}

}  // namespace

namespace {

int run_example(Options& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const TextCorpus corpus = opt.corpus.empty() ? load_kjv_corpus() : load_text_corpus(opt.corpus);
  for (char c : opt.prompt)
    if (!corpus.vocab.contains(c))
      throw examples::UsageError(
          "--prompt: " +
          (c > ' ' && c < 127 ? "the character '" + std::string(1, c) + "'"
                              : "the byte " + std::to_string(static_cast<unsigned char>(c))) +
          " does not occur in " + corpus.path);
  LmDatasets lm =
      make_lm_datasets(corpus.ids, {.context = opt.context, .stride = 0, .val_fraction = 0.1});
  // Validation windows spread evenly over the held-out part (a slice of the whole of it would
  // cost more than the training at these step counts).
  const std::int64_t held_out = lm.validation.size();
  if (held_out == 0) throw Error("the text is too short for one validation window");
  const std::int64_t nval = std::min<std::int64_t>(opt.val_windows, held_out);
  std::vector<std::int64_t> val_idx;
  for (std::int64_t i = 0; i < nval; ++i)
    val_idx.push_back(i * held_out / nval);
  const DataSplits data{lm.train, lm.validation.subset(val_idx)};
  const std::int64_t vocab = corpus.vocab.size();
  std::printf(
      "Corpus %s: %zu characters, vocabulary of %lld; %lld training windows of %lld "
      "characters, %lld validation windows (of %lld held out) (%.1f s)\n",
      corpus.path.c_str(), corpus.text.size(), static_cast<long long>(vocab),
      static_cast<long long>(lm.train.size()), opt.context, static_cast<long long>(nval),
      static_cast<long long>(held_out), examples::seconds_since(t0));

  std::mutex mutex;
  std::map<std::string, Weights> trained;  // filled by on_finish, on the job actors' threads
  std::map<std::string, Config> configs;
  std::vector<JobSpec> jobs;
  for (const Config& c : configurations()) {
    const std::string name = c.name();
    if (!opt.only.empty() && name.find(opt.only) == std::string::npos) continue;
    configs[name] = c;
    JobSpec j;
    j.name = name;
    j.config = {{"dim", std::to_string(c.dim)},
                {"layers", std::to_string(c.layers)},
                {"heads", std::to_string(c.heads)},
                {"lr", number(c.lr)}};
    j.make_model = [c, vocab, context = opt.context] {
      return make_gpt(vocab, context, c.dim, c.heads, c.layers);
    };
    j.make_optimizer = [lr = c.lr] { return std::make_unique<AdamW>(lr, 0.9, 0.99, 1e-8, 0.01); };
    j.data = [data] { return data; };
    j.data_key = "kjv-" + std::to_string(opt.context);
    j.batch_size = opt.batch_size;
    j.max_steps = opt.steps;
    j.eval_every = opt.eval_every;
    j.clip_grad_norm = opt.clip;
    j.seed = static_cast<std::uint64_t>(opt.seed);
    j.on_finish = [&mutex, &trained, name](Model& m) {
      Weights w;
      for (Parameter* p : m.parameters())
        w.push_back(p->value.to(Device::host()).clone());
      const std::lock_guard<std::mutex> lock(mutex);
      trained[name] = std::move(w);
    };
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
    device_list += (device_list.empty() ? "" : ", ") + d.device.str();
  std::printf(
      "Training %zu GPTs at once on %s: %lld steps of %lld windows, AdamW, grad-norm clip %g, "
      "policy %s\n",
      jobs.size(), device_list.c_str(), opt.steps, opt.batch_size, opt.clip, opt.policy.c_str());
  std::fflush(stdout);

  RunReport r = run(jobs, ro);

  // Bits per character: the cross-entropy in nats over ln 2, shown as one more column.
  for (JobResult& j : r.jobs)
    if (j.best_step >= 0) j.config["val_bpc"] = number(j.best_val_loss / std::numbers::ln2, "%.3f");
  const std::string table = format_results_table(r.jobs, "val_loss");
  std::printf(
      "\nResults, ranked by best validation loss (nats per character; val_bpc in bits; "
      "\"best val acc\" is next-character accuracy):\n%s\n",
      table.c_str());
  examples::print_utilisation(r);
  const examples::TraceTotals tt = examples::trace_totals(r.trace);
  std::printf(
      "  %zu compute tasks, %.1f s of compute; %s loaded and %s stored host<->device "
      "(%.1f%% of device time in transfers)\n",
      tt.tasks, tt.compute_s, examples::mib(double(tt.load_bytes)).c_str(),
      examples::mib(double(tt.store_bytes)).c_str(), 100.0 * tt.transfer_share());

  const JobResult* best = nullptr;
  for (const JobResult& j : r.jobs)
    if (j.status == JobStatus::done && j.best_step >= 0 &&
        (!best || j.best_val_loss < best->best_val_loss))
      best = &j;
  std::printf("Sweep of %zu models: %s in the runtime, %s in all (data load included)\n",
              r.jobs.size(), format_duration(r.seconds).c_str(),
              format_duration(examples::seconds_since(t0)).c_str());

  std::filesystem::create_directories(opt.out);
  write_results_csv(r.jobs, (std::filesystem::path(opt.out) / "results.csv").string());
  {
    std::ofstream txt(std::filesystem::path(opt.out) / "results.txt");
    txt << "Results, ranked by best validation loss:\n"
        << table << "\nutilisation: " << examples::utilisation_line(r) << "\nwall: " << r.seconds
        << " s\n";
  }
  examples::print_outputs(examples::complete_outputs(r, opt.out), opt.out);
  if (best == nullptr) {
    std::fprintf(stderr, "sweep_char_gpt: no model finished\n");
    return 1;
  }

  std::printf("\nBest: %s, validation loss %.4f nats = %.3f bits per character at step %lld\n",
              best->name.c_str(), best->best_val_loss, best->best_val_loss / std::numbers::ln2,
              static_cast<long long>(best->best_step));
  if (opt.gen_chars > 0) {
    const auto it = trained.find(best->name);
    if (it == trained.end()) throw Error("on_finish did not deliver " + best->name);
    const Config& c = configs.at(best->name);
    Model model = make_gpt(vocab, opt.context, c.dim, c.heads, c.layers);
    model.init(0);
    const std::vector<Parameter*> params = model.parameters();
    const Weights& w = it->second;
    check(params.size() == w.size(), "parameter count mismatch for " + best->name);
    for (std::size_t i = 0; i < params.size(); ++i) {
      check(params[i]->value.shape() == w[i].shape(), "parameter shape mismatch");
      params[i]->value = w[i];
    }
    const auto g0 = std::chrono::steady_clock::now();
    const std::string text = generate(model, corpus.vocab, opt.prompt, opt.context, opt.gen_chars,
                                      opt.temperature, static_cast<std::uint64_t>(opt.seed));
    std::printf("\n%lld characters from %s after %lld steps (%s, %.1f s):\n----\n%s%s\n----\n",
                opt.gen_chars, best->name.c_str(), static_cast<long long>(best->steps),
                opt.temperature > 0 ? ("temperature " + number(opt.temperature)).c_str() : "greedy",
                examples::seconds_since(g0), opt.prompt.c_str(), text.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_program<Options>("sweep_char_gpt", argc, argv, parse, run_example);
}
