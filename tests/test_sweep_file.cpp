// Sweep files: every kind of mistake rejected with a message naming the field and what is
// allowed; the grid and seeded random expansion.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "kernels/core/error.hpp"
#include "runtime/sweep/search_space.hpp"
#include "runtime/sweep/sweep_file.hpp"

using namespace hydra;
using namespace hydra::sweep;

namespace {

const char* kGood = R"({
  "name": "fm",
  "dataset": {"name": "fashion-mnist", "train_samples": 2000, "val_samples": 500},
  "model": {"family": ["mlp", "cnn"], "width": [64, 128], "depth": [1, 2]},
  "training": {"optimizer": ["sgd", "adamw"], "lr": [0.01, 0.001], "batch_size": 64},
  "budget": {"epochs": 3, "evals_per_epoch": 2},
  "early_stopping": {"method": "asha", "min_resource": 1, "reduction_factor": 3, "max_rungs": 2},
  "devices": {"kind": "cpu", "count": 2, "memory_mib": 256}
})";

// kGood with `from` replaced by `to` (which must occur).
std::string edit(const std::string& from, const std::string& to) {
  std::string s = kGood;
  const auto at = s.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, from);
  return s.replace(at, from.size(), to);
}

std::string error_of(const std::string& text) {
  try {
    parse_sweep_text(text, "x.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("sweep file: the example is accepted with its values and defaults") {
  const SweepFile s = parse_sweep_text(kGood, "x.json");
  CHECK(s.name == "fm");
  CHECK(s.dataset.train_samples == 2000);
  REQUIRE(s.models.size() == 1);
  CHECK(s.models[0].family == std::vector<std::string>{"mlp", "cnn"});
  CHECK(s.models[0].width.values == std::vector<std::int64_t>{64, 128});
  CHECK(s.training.lr.values == std::vector<double>{0.01, 0.001});
  CHECK(s.budget.epochs == 3);
  CHECK(s.early_stopping.method == "asha");
  CHECK(s.early_stopping.max_rungs == 2);
  CHECK(s.devices.count == 2);
  CHECK(s.metric == "val_accuracy");
  CHECK(s.policy == "lrtf");
  // Defaults: name from the file, adamw 1e-3, batch 128, 2 validations per epoch.
  const SweepFile d = parse_sweep_text(
      R"({"dataset": "synthetic", "model": {"family": "mlp"}, "budget": {"epochs": 1}})",
      "dir/tiny.json");
  CHECK(d.name == "tiny");
  CHECK(d.training.optimizer == std::vector<std::string>{"adamw"});
  CHECK(d.training.lr.values == std::vector<double>{1e-3});
  CHECK(d.training.batch_size.values == std::vector<std::int64_t>{128});
  CHECK(d.budget.evals_per_epoch == 2);
  CHECK(d.early_stopping.method == "none");
  CHECK(d.devices.kind == "default");
}

TEST_CASE("sweep file: each kind of mistake is rejected naming the field and the allowed values") {
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {"{", "sweep file x.json: not valid JSON: parse error at line 1"},
      {"[1]", "\"(top level)\": expected an object, got [1]"},
      {edit(R"("name": "fm",)", R"("name": "fm", "colour": 3,)"),
       "\"colour\": unknown key; the keys of a sweep file are \"name\", \"dataset\""},
      {edit(R"("name": "fm",)", R"("name": "a/b",)"), "\"name\": expected letters, digits"},
      {edit(R"("train_samples": 2000, )", ""), "(accepted)"},
      {edit(R"("name": "fashion-mnist")", R"("name": "cifar")"),
       "\"dataset.name\": expected one of \"fashion-mnist\", \"kjv\", \"synthetic\", got "
       "\"cifar\""},
      {edit(R"("train_samples": 2000)", R"("train_samples": -5)"),
       "\"dataset.train_samples\": expected a positive integer, got -5"},
      {edit(R"("train_samples": 2000)", R"("train_samples": 59600)"),
       "\"dataset.train_samples\": 59600 + dataset.val_samples 500 exceeds the 60000"},
      {edit(R"("val_samples": 500)", R"("val_samples": 500, "context": 8)"),
       "\"dataset.context\": only for dataset \"kjv\", not \"fashion-mnist\""},
      {edit(R"("val_samples": 500)", R"("val_samples": 500, "shuffle": true)"),
       "\"dataset.shuffle\": unknown key; the keys of \"dataset\" are \"name\", \"path\""},
      {edit(R"("family": ["mlp", "cnn"])", R"("family": "resnet")"),
       "\"model.family\": expected one of \"mlp\", \"cnn\", \"gpt\" or a list of them, got "
       "\"resnet\""},
      {edit(R"("family": ["mlp", "cnn"])", R"("family": ["mlp", "gpt"])"),
       "\"model.family\": \"gpt\" does not fit dataset \"fashion-mnist\"; allowed: \"mlp\", "
       "\"cnn\""},
      {edit(R"("family": ["mlp", "cnn"])", R"("family": ["mlp", "mlp"])"),
       "\"model.family[1]\": \"mlp\" is listed twice"},
      {edit(R"("width": [64, 128])", R"("width": "abc")"),
       "sweep file x.json: \"model.width\": expected a positive integer, a list of them or a "
       "range {\"min\": A, \"max\": B}, got \"abc\""},
      {edit(R"("width": [64, 128])", R"("width": [64, 0])"),
       "\"model.width[1]\": expected a positive integer, got 0"},
      {edit(R"("width": [64, 128])", R"("width": [64, 64])"),
       "\"model.width[1]\": 64 is listed twice"},
      {edit(R"("width": [64, 128])", R"("width": [])"), "\"model.width\": expected"},
      {edit(R"("depth": [1, 2])", R"("depth": [1, 4])"),
       "\"model.depth[1]\": expected an integer in [1, 3], got 4"},
      {edit(R"("depth": [1, 2])", R"("depth": 2, "heads": 4)"),
       "\"model.heads\": only for family \"gpt\""},
      {edit(R"("width": [64, 128])", R"("width": {"min": 64})"),
       "\"model.width\": a range needs both \"min\" and \"max\""},
      {edit(R"("width": [64, 128])", R"("width": {"min": 64, "max": 128})"),
       "\"model.width\": a range {\"min\", \"max\"} needs \"search.method\": \"random\""},
      {edit(R"("optimizer": ["sgd", "adamw"])", R"("optimizer": "adam")"),
       "\"training.optimizer\": expected one of \"sgd\", \"adamw\" or a list of them, got "
       "\"adam\""},
      {edit(R"("lr": [0.01, 0.001])", R"("lr": [0.01, -1])"),
       "\"training.lr[1]\": expected a number in (0, 10], got -1"},
      {edit(R"("batch_size": 64)", R"("batch_size": 64.5)"), "\"training.batch_size\": expected"},
      {edit(R"("batch_size": 64)", R"("batch_size": 64, "momentum": 1.5)"),
       "\"training.momentum\": expected a number in [0, 1), got 1.5"},
      {edit(R"("epochs": 3, )", ""), "\"budget.epochs\": give exactly one of"},
      {edit(R"("epochs": 3, )", R"("epochs": 3, "steps": 10, )"),
       "\"budget.steps\": give exactly one of \"budget.epochs\" and \"budget.steps\""},
      {edit(R"("evals_per_epoch": 2)", R"("evals_per_epoch": 2, "time_seconds": 0)"),
       "\"budget.time_seconds\": expected a number of seconds > 0, got 0"},
      {edit(R"("evals_per_epoch": 2)", R"("evals_per_epoch": 2, "eval_every": 5)"),
       "\"budget.eval_every\": give at most one of"},
      {edit(R"("method": "asha")", R"("method": "hyperband")"),
       "\"early_stopping.method\": expected one of \"none\", \"asha\", \"sha\", got "
       "\"hyperband\""},
      {edit(R"("reduction_factor": 3)", R"("reduction_factor": 1)"),
       "\"early_stopping.reduction_factor\": expected a number > 1, got 1"},
      {edit(R"("min_resource": 1)", R"("min_resource": 3)"),
       "\"early_stopping.min_resource\": the first rung (3 epochs) must come before the end of "
       "the budget (3 epochs)"},
      {edit(R"("max_rungs": 2)", R"("max_rungs": 2, "metric": "val_loss")"),
       "\"early_stopping.metric\": unknown key; the keys of \"early_stopping\" are \"method\""},
      {edit(R"("method": "asha", )", ""), "\"early_stopping.method\": missing"},
      {edit(R"("kind": "cpu")", R"("kind": "tpu")"),
       "\"devices.kind\": expected one of \"default\", \"cpu\", \"gpu\", \"nodes\", got \"tpu\""},
      {edit(R"("count": 2)", R"("count": 100)"),
       "\"devices.count\": expected an integer in [1, 64], got 100"},
      {edit(R"("kind": "cpu", "count": 2, )", R"("kind": "nodes", "nodes": ["a:b"], )"),
       "\"devices.nodes[0]\": expected \"host:port\", got \"a:b\""},
      {edit(R"("name": "fm",)", R"("name": "fm", "metric": "accuracy",)"),
       "\"metric\": expected one of \"val_accuracy\", \"val_loss\", got \"accuracy\""},
      {edit(R"("name": "fm",)", R"("name": "fm", "search": {"method": "random"},)"),
       "\"search.trials\": missing; random search needs the number of trials"},
      {edit(R"("name": "fm",)", R"("name": "fm", "search": {"trials": 3},)"),
       "\"search.trials\": only with \"search.method\": \"random\""},
      {edit(R"("name": "fm",)", R"("name": "fm", "policy": "sjf",)"),
       "\"policy\": expected one of \"lrtf\", \"fifo\", \"random\", got \"sjf\""},
      {R"({"dataset": "kjv", "model": {"family": "mlp"}, "budget": {"steps": 10}})",
       "\"model.family\": \"mlp\" does not fit dataset \"kjv\"; allowed: \"gpt\""},
      {R"({"dataset": "synthetic", "model": {"family": "mlp"}})", "\"budget\": missing"},
      {R"({"dataset": "synthetic", "model": [{"family": "mlp"}, {"family": "cnn"}],
           "budget": {"epochs": 1}})",
       "\"model[1].family\": \"cnn\" does not fit dataset \"synthetic\"; allowed: \"mlp\""},
      {R"({"dataset": "synthetic", "model": [], "budget": {"epochs": 1}})",
       "\"model\": expected a model object or a non-empty list of them, got []"},
  };
  for (const Case& c : cases) {
    const std::string got = error_of(c.text);
    INFO("sweep file: " << c.text);
    INFO("error: " << got);
    CHECK(got.find(c.expected) != std::string::npos);
    if (c.expected != "(accepted)") CHECK(got.rfind("sweep file x.json: ", 0) == 0);
  }
}

TEST_CASE("sweep file: a missing file is named") {
  CHECK_THROWS_WITH_AS(parse_sweep_file("/nonexistent/s.json"),
                       "sweep file /nonexistent/s.json: cannot be read (missing or no permission)",
                       Error);
}

TEST_CASE("sweep file: the grid is every combination once in a fixed order") {
  const std::vector<Trial> t = expand_search_space(parse_sweep_text(kGood, "x.json"));
  REQUIRE(t.size() == 2 * 2 * 2 * 2 * 2);
  CHECK(t[0].name == "mlp-w64-d1-sgd-lr0.01-b64");
  CHECK(t[1].name == "mlp-w64-d1-sgd-lr0.001-b64");
  CHECK(t.back().name == "cnn-w128-d2-adamw-lr0.001-b64");
  std::set<std::string> names;
  for (const Trial& x : t)
    names.insert(x.name);
  CHECK(names.size() == t.size());
  CHECK(t[0].config().at("opt") == "sgd");
  CHECK(t[0].config().count("heads") == 0);
}

TEST_CASE("sweep file: a list of model entries gives the union of their grids") {
  const std::string text = R"({"dataset": "fashion-mnist",
    "model": [{"family": "mlp", "width": [128, 512], "depth": [1, 2]},
              {"family": "cnn", "width": 8}],
    "training": {"optimizer": "sgd", "lr": 0.05}, "budget": {"epochs": 1}})";
  const std::vector<Trial> t = expand_search_space(parse_sweep_text(text, "m.json"));
  REQUIRE(t.size() == 5);
  CHECK(t[3].name == "mlp-w512-d2-sgd-lr0.05-b128");
  CHECK(t[4].name == "cnn-w8-d2-sgd-lr0.05-b128");  // cnn default depth 2
  const std::string twice = R"({"dataset": "synthetic",
    "model": [{"family": "mlp", "width": [64, 128]}, {"family": "mlp", "width": 64}],
    "budget": {"epochs": 1}})";
  CHECK_THROWS_WITH_AS(expand_search_space(parse_sweep_text(twice, "m.json")),
                       "sweep file m.json: \"model\": configuration "
                       "mlp-w64-d1-adamw-lr0.001-b128 comes from two model entries",
                       Error);
}

TEST_CASE("sweep file: random search is seeded and stays inside its ranges") {
  const std::string text = R"({"dataset": "synthetic",
    "model": {"family": "mlp", "width": {"min": 16, "max": 512, "log": true}, "depth": [1, 2, 3]},
    "training": {"optimizer": ["sgd", "adamw"], "lr": {"min": 1e-4, "max": 1e-1}},
    "search": {"method": "random", "trials": 40, "seed": 7}, "budget": {"epochs": 1}})";
  const SweepFile s = parse_sweep_text(text, "r.json");
  const std::vector<Trial> a = expand_search_space(s), b = expand_search_space(s);
  REQUIRE(a.size() == 40);
  std::set<std::int64_t> depths;
  std::set<std::string> opts;
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].name == b[i].name);
    CHECK(a[i].width >= 16);
    CHECK(a[i].width <= 512);
    CHECK(a[i].lr >= 1e-4);
    CHECK(a[i].lr <= 1e-1);
    depths.insert(a[i].depth);
    opts.insert(a[i].optimizer);
  }
  CHECK(a[0].name.rfind("t00-mlp-", 0) == 0);
  CHECK(depths.size() == 3);  // 40 draws over 3 choices reach all of them
  CHECK(opts.size() == 2);
  SweepFile other = s;
  other.search.seed = 8;
  CHECK(expand_search_space(other)[0].name != a[0].name);
}

TEST_CASE("sweep file: a gpt width not divisible by its heads is named") {
  const std::string text = R"({"dataset": "kjv", "model": {"family": "gpt", "width": [64, 60],
    "heads": 8}, "budget": {"steps": 10}})";
  CHECK_THROWS_WITH_AS(
      expand_search_space(parse_sweep_text(text, "g.json")),
      "sweep file g.json: \"model.width\" 60 is not divisible by \"model.heads\" 8 (configuration "
      "gpt-w60-d2-h8-adamw-lr0.001-b32)",
      Error);
}
