#include "runtime/sweep/sweep_file.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "kernels/core/error.hpp"

namespace hydra::sweep {

namespace {

using json = nlohmann::json;

// Parses one file; every error names the file and the field.
class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error("sweep file " + source_ + ": \"" + field + "\": " + what);
  }
  [[noreturn]] void expected(const std::string& field, const std::string& what,
                             const json& got) const {
    fail(field, "expected " + what + ", got " + shown(got));
  }
  static std::string shown(const json& v) {
    std::string s = v.dump();
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
  }
  static std::string join(const std::vector<std::string>& parts, const std::string& sep = ", ") {
    std::string out;
    for (const std::string& p : parts)
      out += (out.empty() ? "" : sep) + p;
    return out;
  }
  static std::string quoted(const std::vector<std::string>& parts) {
    std::vector<std::string> q;
    for (const std::string& p : parts)
      q.push_back("\"" + p + "\"");
    return join(q);
  }
  static std::string path(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
  }

  // `v` must be an object whose keys are all in `allowed`.
  void object(const json& v, const std::string& field, const std::vector<std::string>& allowed) {
    if (!v.is_object()) expected(field.empty() ? "(top level)" : field, "an object", v);
    for (const auto& [key, value] : v.items())
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
        fail(path(field, key),
             "unknown key; the keys of " +
                 (field.empty() ? std::string("a sweep file") : "\"" + field + "\"") + " are " +
                 quoted(allowed));
  }

  std::int64_t integer(const json& v, const std::string& field, std::int64_t lo, std::int64_t hi,
                       const std::string& what) const {
    if (v.is_number_integer()) {
      const auto x = v.get<std::int64_t>();
      if (x >= lo && x <= hi) return x;
    } else if (v.is_number_unsigned()) {
      const auto x = v.get<std::uint64_t>();
      if (x <= static_cast<std::uint64_t>(hi) && static_cast<std::int64_t>(x) >= lo)
        return static_cast<std::int64_t>(x);
    }
    expected(field, what, v);
  }
  std::int64_t integer(const json& v, const std::string& field, std::int64_t lo,
                       std::int64_t hi) const {
    return integer(v, field, lo, hi, range_text(lo, hi));
  }
  static std::string range_text(std::int64_t lo, std::int64_t hi) {
    if (hi == std::numeric_limits<std::int64_t>::max())
      return lo == 1 ? "a positive integer" : "an integer >= " + std::to_string(lo);
    return "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  }
  double number(const json& v, const std::string& field, double lo, double hi, bool lo_open,
                const std::string& what) const {
    if (v.is_number()) {
      const double x = v.get<double>();
      if (std::isfinite(x) && (lo_open ? x > lo : x >= lo) && x <= hi) return x;
    }
    expected(field, what, v);
  }
  std::string choice(const json& v, const std::string& field,
                     const std::vector<std::string>& allowed) const {
    if (v.is_string()) {
      const auto s = v.get<std::string>();
      if (std::find(allowed.begin(), allowed.end(), s) != allowed.end()) return s;
    }
    expected(field, "one of " + quoted(allowed), v);
  }
  std::string string(const json& v, const std::string& field) const {
    if (!v.is_string() || v.get<std::string>().empty()) expected(field, "a non-empty string", v);
    return v.get<std::string>();
  }
  // A choice or a non-empty list of distinct choices.
  std::vector<std::string> choices(const json& v, const std::string& field,
                                   const std::vector<std::string>& allowed) const {
    const std::string what = "one of " + quoted(allowed) + " or a list of them";
    if (v.is_string()) {
      if (std::find(allowed.begin(), allowed.end(), v.get<std::string>()) == allowed.end())
        expected(field, what, v);
      return {v.get<std::string>()};
    }
    if (!v.is_array() || v.empty()) expected(field, what, v);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string f = field + "[" + std::to_string(i) + "]";
      const std::string s = choice(v[i], f, allowed);
      if (std::find(out.begin(), out.end(), s) != out.end())
        fail(f, "\"" + s + "\" is listed twice");
      out.push_back(s);
    }
    return out;
  }

  // A searched integer: N, [N, ...] or {"min": A, "max": B, "log": false}.
  SearchValues<std::int64_t> int_values(const json& v, const std::string& field, std::int64_t lo,
                                        std::int64_t hi) {
    const std::string one = range_text(lo, hi);
    const std::string what = one + ", a list of them or a range {\"min\": A, \"max\": B}";
    SearchValues<std::int64_t> out;
    if (v.is_number()) {
      out.values.push_back(integer(v, field, lo, hi, what));
    } else if (v.is_array()) {
      if (v.empty()) expected(field, what, v);
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string f = field + "[" + std::to_string(i) + "]";
        const std::int64_t x = integer(v[i], f, lo, hi, one);
        if (std::find(out.values.begin(), out.values.end(), x) != out.values.end())
          fail(f, std::to_string(x) + " is listed twice");
        out.values.push_back(x);
      }
    } else if (v.is_object()) {
      object(v, field, {"min", "max", "log"});
      if (!v.contains("min") || !v.contains("max"))
        fail(field, "a range needs both \"min\" and \"max\"");
      out.is_range = true;
      out.min = integer(v["min"], field + ".min", lo, hi, one);
      out.max = integer(v["max"], field + ".max", lo, hi, one);
      if (out.max < out.min) fail(field + ".max", "must be >= \"" + field + ".min\"");
      if (v.contains("log")) out.log = boolean(v["log"], field + ".log");
    } else {
      expected(field, what, v);
    }
    return out;
  }
  // A searched positive number: x, [x, ...] or {"min": a, "max": b, "log": true}.
  SearchValues<double> real_values(const json& v, const std::string& field, double hi) {
    std::ostringstream h;
    h << hi;
    const std::string one = "a number in (0, " + h.str() + "]";
    const std::string what = one + ", a list of them or a range {\"min\": a, \"max\": b}";
    SearchValues<double> out;
    if (v.is_number()) {
      out.values.push_back(number(v, field, 0, hi, true, what));
    } else if (v.is_array()) {
      if (v.empty()) expected(field, what, v);
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string f = field + "[" + std::to_string(i) + "]";
        const double x = number(v[i], f, 0, hi, true, one);
        if (std::find(out.values.begin(), out.values.end(), x) != out.values.end())
          fail(f, shown(v[i]) + " is listed twice");
        out.values.push_back(x);
      }
    } else if (v.is_object()) {
      object(v, field, {"min", "max", "log"});
      if (!v.contains("min") || !v.contains("max"))
        fail(field, "a range needs both \"min\" and \"max\"");
      out.is_range = true;
      out.log = true;
      out.min = number(v["min"], field + ".min", 0, hi, true, one);
      out.max = number(v["max"], field + ".max", 0, hi, true, one);
      if (out.max < out.min) fail(field + ".max", "must be >= \"" + field + ".min\"");
      if (v.contains("log")) out.log = boolean(v["log"], field + ".log");
    } else {
      expected(field, what, v);
    }
    return out;
  }
  bool boolean(const json& v, const std::string& field) const {
    if (!v.is_boolean()) expected(field, "true or false", v);
    return v.get<bool>();
  }

  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

void parse_dataset(Parser& p, const json& v, DatasetSpec& d) {
  if (v.is_string()) {
    d.name = p.choice(v, "dataset", {"fashion-mnist", "kjv", "synthetic"});
  } else {
    p.object(
        v, "dataset",
        {"name", "path", "train_samples", "val_samples", "context", "features", "classes", "seed"});
    if (!v.contains("name"))
      p.fail("dataset.name", "missing; one of \"fashion-mnist\", \"kjv\", \"synthetic\"");
    d.name = p.choice(v["name"], "dataset.name", {"fashion-mnist", "kjv", "synthetic"});
    if (v.contains("path")) d.path = p.string(v["path"], "dataset.path");
    if (v.contains("train_samples"))
      d.train_samples = p.integer(v["train_samples"], "dataset.train_samples", 1, kMax);
    if (v.contains("val_samples"))
      d.val_samples = p.integer(v["val_samples"], "dataset.val_samples", 1, kMax);
    if (v.contains("seed"))
      d.seed = static_cast<std::uint64_t>(p.integer(v["seed"], "dataset.seed", 0, kMax));
    auto only_for = [&](const char* key, const char* dataset) {
      if (v.contains(key) && d.name != dataset)
        p.fail(std::string("dataset.") + key,
               std::string("only for dataset \"") + dataset + "\", not \"" + d.name + "\"");
    };
    only_for("context", "kjv");
    only_for("features", "synthetic");
    only_for("classes", "synthetic");
    if (v.contains("context")) d.context = p.integer(v["context"], "dataset.context", 2, 4096);
    if (v.contains("features"))
      d.features = p.integer(v["features"], "dataset.features", 1, 1 << 20);
    if (v.contains("classes")) {
      d.classes = p.integer(v["classes"], "dataset.classes", 2, 1 << 16);
      if (d.classes % 2 != 0) p.expected("dataset.classes", "an even integer >= 2", v["classes"]);
    }
  }
  if (d.name == "fashion-mnist") {
    if (d.train_samples == 0) d.train_samples = 30000;
    if (d.val_samples == 0) d.val_samples = 5000;
    if (d.train_samples + d.val_samples > 60000)
      p.fail("dataset.train_samples", std::to_string(d.train_samples) + " + dataset.val_samples " +
                                          std::to_string(d.val_samples) +
                                          " exceeds the 60000 Fashion-MNIST training images");
  } else if (d.name == "synthetic") {
    if (d.train_samples == 0) d.train_samples = 4000;
    if (d.val_samples == 0) d.val_samples = 1000;
  } else if (d.val_samples == 0) {
    d.val_samples = 256;  // kjv: validation windows; train_samples 0 = every window
  }
}

void parse_model(Parser& p, const json& v, const std::string& field, const std::string& dataset,
                 ModelSpace& m) {
  p.object(v, field, {"family", "width", "depth", "heads"});
  if (!v.contains("family"))
    p.fail(field + ".family", "missing; one of \"mlp\", \"cnn\", \"gpt\" or a list of them");
  m.family = p.choices(v["family"], field + ".family", {"mlp", "cnn", "gpt"});
  for (const std::string& f : m.family) {
    const bool ok =
        dataset == "kjv" ? f == "gpt" : (f == "mlp" || (f == "cnn" && dataset == "fashion-mnist"));
    if (!ok)
      p.fail(field + ".family", "\"" + f + "\" does not fit dataset \"" + dataset +
                                    "\"; allowed: " +
                                    (dataset == "kjv"             ? std::string("\"gpt\"")
                                     : dataset == "fashion-mnist" ? std::string("\"mlp\", \"cnn\"")
                                                                  : std::string("\"mlp\"")));
  }
  const bool cnn = std::find(m.family.begin(), m.family.end(), "cnn") != m.family.end();
  if (v.contains("width")) m.width = p.int_values(v["width"], field + ".width", 1, kMax);
  if (v.contains("depth")) m.depth = p.int_values(v["depth"], field + ".depth", 1, cnn ? 3 : 64);
  if (v.contains("heads")) {
    if (m.family != std::vector<std::string>{"gpt"})
      p.fail(field + ".heads", "only for family \"gpt\"");
    m.heads = p.int_values(v["heads"], field + ".heads", 1, 256);
  }
}

void parse_training(Parser& p, const json& v, TrainingSpace& t) {
  p.object(v, "training",
           {"optimizer", "lr", "batch_size", "momentum", "weight_decay", "clip_grad_norm"});
  if (v.contains("optimizer"))
    t.optimizer = p.choices(v["optimizer"], "training.optimizer", {"sgd", "adamw"});
  if (v.contains("lr")) t.lr = p.real_values(v["lr"], "training.lr", 10.0);
  if (v.contains("batch_size"))
    t.batch_size = p.int_values(v["batch_size"], "training.batch_size", 1, kMax);
  if (v.contains("momentum"))
    t.momentum =
        p.number(v["momentum"], "training.momentum", 0, 0.999999, false, "a number in [0, 1)");
  if (v.contains("weight_decay"))
    t.weight_decay =
        p.number(v["weight_decay"], "training.weight_decay", 0, 1, false, "a number in [0, 1]");
  if (v.contains("clip_grad_norm"))
    t.clip_grad_norm = p.number(v["clip_grad_norm"], "training.clip_grad_norm", 0, 1e6, false,
                                "a number >= 0 (0: no clipping)");
}

void parse_search(Parser& p, const json& v, SearchSpec& s) {
  if (v.is_string()) {
    s.method = p.choice(v, "search", {"grid", "random"});
  } else {
    p.object(v, "search", {"method", "trials", "seed"});
    if (v.contains("method")) s.method = p.choice(v["method"], "search.method", {"grid", "random"});
    if (v.contains("trials")) {
      if (s.method != "random") p.fail("search.trials", "only with \"search.method\": \"random\"");
      s.trials = p.integer(v["trials"], "search.trials", 1, 10000);
    }
    if (v.contains("seed"))
      s.seed = static_cast<std::uint64_t>(p.integer(v["seed"], "search.seed", 0, kMax));
  }
  if (s.method == "random" && s.trials == 0)
    p.fail("search.trials", "missing; random search needs the number of trials (1 to 10000)");
}

void parse_budget(Parser& p, const json& v, BudgetSpec& b) {
  p.object(v, "budget", {"epochs", "steps", "time_seconds", "evals_per_epoch", "eval_every"});
  if (v.contains("epochs")) b.epochs = p.integer(v["epochs"], "budget.epochs", 1, 100000);
  if (v.contains("steps")) b.steps = p.integer(v["steps"], "budget.steps", 1, 1000000000);
  if ((b.epochs > 0) == (b.steps > 0))
    p.fail(b.epochs > 0 ? "budget.steps" : "budget.epochs",
           "give exactly one of \"budget.epochs\" and \"budget.steps\"");
  if (v.contains("time_seconds"))
    b.time_seconds =
        p.number(v["time_seconds"], "budget.time_seconds", 0, 1e9, true, "a number of seconds > 0");
  if (v.contains("evals_per_epoch") && v.contains("eval_every"))
    p.fail("budget.eval_every",
           "give at most one of \"budget.evals_per_epoch\" and \"budget.eval_every\"");
  if (v.contains("evals_per_epoch")) {
    if (b.epochs == 0) p.fail("budget.evals_per_epoch", "only with \"budget.epochs\"");
    b.evals_per_epoch = p.integer(v["evals_per_epoch"], "budget.evals_per_epoch", 1, 10000);
  }
  if (v.contains("eval_every"))
    b.eval_every = p.integer(v["eval_every"], "budget.eval_every", 1, kMax);
  if (b.evals_per_epoch == 0 && b.eval_every == 0) {
    if (b.epochs > 0)
      b.evals_per_epoch = 2;
    else
      b.eval_every = std::max<std::int64_t>(1, b.steps / 4);
  }
}

void parse_early_stopping(Parser& p, const json& v, const BudgetSpec& budget,
                          EarlyStoppingSpec& e) {
  if (v.is_string()) {
    e.method = p.choice(v, "early_stopping", {"none", "asha", "sha"});
    if (e.method == "none") return;
  } else {
    p.object(v, "early_stopping",
             {"method", "resource", "min_resource", "reduction_factor", "max_rungs"});
    if (!v.contains("method"))
      p.fail("early_stopping.method", "missing; one of \"none\", \"asha\", \"sha\"");
    e.method = p.choice(v["method"], "early_stopping.method", {"none", "asha", "sha"});
    if (e.method == "none") {
      if (v.size() > 1)
        p.fail("early_stopping", "with \"method\": \"none\" there are no other keys");
      return;
    }
    if (v.contains("resource"))
      e.resource = p.choice(v["resource"], "early_stopping.resource", {"epochs", "steps"});
    if (v.contains("min_resource"))
      e.min_resource = p.number(v["min_resource"], "early_stopping.min_resource", 0, 1e9, true,
                                "a number > 0 (" + e.resource + ")");
    if (v.contains("reduction_factor"))
      e.reduction_factor = p.number(v["reduction_factor"], "early_stopping.reduction_factor", 1,
                                    1000, true, "a number > 1");
    if (v.contains("max_rungs"))
      e.max_rungs = p.integer(v["max_rungs"], "early_stopping.max_rungs", 1, 100);
  }
  if (e.resource == "epochs" && budget.epochs == 0)
    p.fail("early_stopping.resource",
           "\"epochs\" needs \"budget.epochs\"; with \"budget.steps\" use \"steps\"");
  const double total = e.resource == "epochs" ? double(budget.epochs) : double(budget.steps);
  if (e.resource == "steps" && budget.steps > 0 && e.min_resource >= total)
    p.fail("early_stopping.min_resource",
           "the first rung (" + std::to_string(static_cast<long long>(e.min_resource)) +
               " steps) must come before the end of the budget (" + std::to_string(budget.steps) +
               " steps)");
  if (e.resource == "epochs" && e.min_resource >= total) {
    std::ostringstream m;
    m << "the first rung (" << e.min_resource << " epochs) must come before the end of the budget ("
      << budget.epochs << " epochs)";
    p.fail("early_stopping.min_resource", m.str());
  }
}

void parse_devices(Parser& p, const json& v, DevicesSpec& d) {
  const std::vector<std::string> kinds = {"default", "cpu", "gpu", "nodes"};
  if (v.is_string()) {
    d.kind = p.choice(v, "devices", kinds);
  } else {
    p.object(v, "devices", {"kind", "count", "memory_mib", "nodes"});
    if (v.contains("kind")) d.kind = p.choice(v["kind"], "devices.kind", kinds);
    if (v.contains("count")) {
      if (d.kind != "cpu" && d.kind != "gpu")
        p.fail("devices.count", "only with \"devices.kind\" \"cpu\" or \"gpu\"");
      d.count = p.integer(v["count"], "devices.count", 1, 64);
    }
    if (v.contains("memory_mib"))
      d.memory_mib = p.integer(v["memory_mib"], "devices.memory_mib", 1, 1 << 24);
    if (v.contains("nodes")) {
      if (d.kind != "nodes") p.fail("devices.nodes", "only with \"devices.kind\": \"nodes\"");
      const json& n = v["nodes"];
      if (!n.is_array() || n.empty())
        p.expected("devices.nodes", "a non-empty list of \"host:port\" strings", n);
      for (std::size_t i = 0; i < n.size(); ++i) {
        const std::string f = "devices.nodes[" + std::to_string(i) + "]";
        const std::string s = p.string(n[i], f);
        const auto colon = s.rfind(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == s.size() ||
            s.find_first_not_of("0123456789", colon + 1) != std::string::npos)
          p.expected(f, "\"host:port\"", n[i]);
        d.nodes.push_back(s);
      }
    }
  }
  if (d.kind == "nodes" && d.nodes.empty())
    p.fail("devices.nodes", "missing; \"devices.kind\": \"nodes\" needs the list of \"host:port\"");
  if (d.kind == "cpu" && d.count == 0) d.count = 2;
}

}  // namespace

SweepFile parse_sweep_text(const std::string& text, const std::string& source) {
  Parser p(source);
  json v;
  try {
    v = json::parse(text);
  } catch (const json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 3, column 5: ..."
    std::string what = e.what();
    if (const auto at = what.find("] "); at != std::string::npos) what = what.substr(at + 2);
    throw Error("sweep file " + source + ": not valid JSON: " + what);
  }
  SweepFile s;
  s.source = source;
  s.text = text;
  p.object(v, "",
           {"name", "dataset", "model", "training", "search", "budget", "early_stopping", "devices",
            "metric", "policy", "seed"});
  for (const char* key : {"dataset", "model", "budget"})
    if (!v.contains(key))
      p.fail(key, "missing; a sweep file needs \"dataset\", \"model\" and \"budget\"");
  s.name = std::filesystem::path(source).stem().string();
  if (v.contains("name")) {
    s.name = p.string(v["name"], "name");
    if (s.name.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") !=
            std::string::npos ||
        s.name[0] == '.')
      p.expected("name", "letters, digits, '_', '-' and '.' (it names the output directory)",
                 v["name"]);
  }
  parse_dataset(p, v["dataset"], s.dataset);
  if (v["model"].is_array()) {
    if (v["model"].empty())
      p.expected("model", "a model object or a non-empty list of them", v["model"]);
    for (std::size_t i = 0; i < v["model"].size(); ++i) {
      s.models.emplace_back();
      parse_model(p, v["model"][i], "model[" + std::to_string(i) + "]", s.dataset.name,
                  s.models.back());
    }
  } else {
    s.models.emplace_back();
    parse_model(p, v["model"], "model", s.dataset.name, s.models.back());
  }
  if (v.contains("training")) parse_training(p, v["training"], s.training);
  if (s.training.optimizer.empty()) s.training.optimizer = {"adamw"};
  if (s.training.lr.values.empty() && !s.training.lr.is_range) s.training.lr.values = {1e-3};
  if (s.training.batch_size.values.empty() && !s.training.batch_size.is_range)
    s.training.batch_size.values = {s.dataset.name == "kjv" ? 32 : 128};
  if (v.contains("search")) parse_search(p, v["search"], s.search);
  parse_budget(p, v["budget"], s.budget);
  if (v.contains("early_stopping"))
    parse_early_stopping(p, v["early_stopping"], s.budget, s.early_stopping);
  if (v.contains("devices")) parse_devices(p, v["devices"], s.devices);
  s.metric = s.dataset.name == "kjv" ? "val_loss" : "val_accuracy";
  if (v.contains("metric"))
    s.metric = p.choice(v["metric"], "metric", {"val_accuracy", "val_loss"});
  if (v.contains("policy")) s.policy = p.choice(v["policy"], "policy", {"lrtf", "fifo", "random"});
  if (v.contains("seed"))
    s.seed = static_cast<std::uint64_t>(p.integer(v["seed"], "seed", 0, kMax));
  // Ranges can only be sampled.
  if (s.search.method == "grid") {
    auto no_range = [&](bool is_range, const std::string& field) {
      if (is_range)
        p.fail(
            field,
            "a range {\"min\", \"max\"} needs \"search.method\": \"random\"; a grid takes a list");
    };
    for (std::size_t i = 0; i < s.models.size(); ++i) {
      const std::string m = s.models.size() == 1 ? "model" : "model[" + std::to_string(i) + "]";
      no_range(s.models[i].width.is_range, m + ".width");
      no_range(s.models[i].depth.is_range, m + ".depth");
      no_range(s.models[i].heads.is_range, m + ".heads");
    }
    no_range(s.training.lr.is_range, "training.lr");
    no_range(s.training.batch_size.is_range, "training.batch_size");
  }
  return s;
}

SweepFile parse_sweep_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("sweep file " + path + ": cannot be read (missing or no permission)");
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) throw Error("sweep file " + path + ": read error");
  return parse_sweep_text(text.str(), path);
}

}  // namespace hydra::sweep
