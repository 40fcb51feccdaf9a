// Successive halving rules (runtime/sweep/asha.hpp) driven with scripted validation reports.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "runtime/sweep/asha.hpp"
#include "runtime/sweep/time_budget.hpp"

using namespace hydra;
using namespace hydra::sweep;

namespace {

Asha make(bool sync, double min_resource, double eta, int rungs, bool maximize = true) {
  AshaOptions o;
  o.synchronous = sync;
  o.min_resource = min_resource;
  o.reduction_factor = eta;
  o.max_rungs = rungs;
  o.maximize = maximize;
  return Asha(o);
}

std::set<std::string> stopped(const Asha& a) {
  std::set<std::string> out;
  for (const Asha::Judgement& j : a.decisions())
    if (j.stopped) out.insert(j.job);
  return out;
}

}  // namespace

TEST_CASE("asha: a job goes on only inside the top 1/eta of the jobs at its rung so far") {
  Asha a = make(false, 10, 2, 2);  // rungs at steps 10 and 20
  for (const char* j : {"a", "b", "c", "d"})
    a.add_job(j);
  auto at = [&](const char* job, std::int64_t step, double acc) {
    a.report(job, step, 40, 1 - acc, acc);
    return a.decide(job);
  };
  CHECK(at("a", 5, 0.1) == StopDecision::go_on);  // before the first rung: nothing to judge
  CHECK(a.decisions().empty());
  CHECK(at("a", 10, 0.5) == StopDecision::go_on);  // 1 at the rung: keeps 1
  CHECK(at("b", 10, 0.6) == StopDecision::go_on);  // best of 2, keeps 1
  CHECK(at("c", 10, 0.4) == StopDecision::stop);   // 3rd of 3, keeps 1
  CHECK(at("d", 10, 0.7) == StopDecision::go_on);  // best of 4, keeps 2
  CHECK(a.reason("c").find(
            "ASHA rung 0 (step 10): val_accuracy 0.4 ranks 3 of 3, the top 1 go on") == 0);
  CHECK(a.reason("a").empty());
  CHECK(at("a", 20, 0.55) == StopDecision::go_on);
  CHECK(at("b", 20, 0.65) == StopDecision::go_on);
  CHECK(at("d", 20, 0.5) == StopDecision::stop);   // 3rd of 3 at rung 1
  CHECK(at("a", 40, 0.6) == StopDecision::go_on);  // the end: no rung
  CHECK(stopped(a) == std::set<std::string>{"c", "d"});
  REQUIRE(a.decisions().size() == 7);
  CHECK(a.decisions()[2].job == "c");
  CHECK(a.decisions()[2].rung == 0);
  CHECK(a.decisions()[6].rung == 1);
  // A stopped job stays stopped; a repeated report (a resumed job) changes nothing.
  a.report("c", 30, 40, 0.1, 0.9);
  CHECK(a.decide("c") == StopDecision::stop);
  a.report("b", 20, 40, 0.9, 0.1);
  CHECK(a.decide("b") == StopDecision::go_on);
  CHECK(a.decisions().size() == 7);
}

TEST_CASE("asha: sha waits for the rung to fill and keeps the same jobs in any arrival order") {
  const std::vector<std::pair<std::string, double>> acc = {
      {"a", 0.5}, {"b", 0.6}, {"c", 0.4}, {"d", 0.7}, {"e", 0.65}};
  std::vector<std::size_t> order = {0, 1, 2, 3, 4};
  int permutations = 0;
  do {
    Asha a = make(true, 10, 2, 1);
    for (const auto& [name, x] : acc)
      a.add_job(name);
    for (std::size_t k = 0; k < order.size(); ++k) {
      const auto& [name, x] = acc[order[k]];
      a.report(name, 10, 40, 1 - x, x);
      const StopDecision d = a.decide(name);
      if (k + 1 < order.size()) {
        CHECK(d == StopDecision::wait);
      } else {
        CHECK(d != StopDecision::wait);
      }
    }
    // Every parked job asked again: the top floor(5/2) = 2 (d, e) go on.
    for (const auto& [name, x] : acc)
      CHECK(a.decide(name) ==
            (name == "d" || name == "e" ? StopDecision::go_on : StopDecision::stop));
    CHECK(stopped(a) == std::set<std::string>{"a", "b", "c"});
    ++permutations;
  } while (std::next_permutation(order.begin(), order.end()));
  CHECK(permutations == 120);
}

TEST_CASE("asha: sha does not wait for a job that ended or cannot reach the rung") {
  Asha a = make(true, 10, 3, 2);  // rungs at 10 and 30
  for (const char* j : {"a", "b", "c", "short"})
    a.add_job(j);
  a.report("short", 5, 8, 0.5, 0.5);  // 8 steps in all: never reaches step 10
  a.report("a", 10, 100, 0.5, 0.5);
  CHECK(a.decide("a") == StopDecision::wait);
  a.report("b", 10, 100, 0.4, 0.6);
  CHECK(a.decide("b") == StopDecision::wait);
  a.job_ended("c");                            // failed before its first validation
  CHECK(a.decide("a") == StopDecision::stop);  // 2 recorded: keeps 1 (b)
  CHECK(a.decide("b") == StopDecision::go_on);
  // One validation past two rungs: judged at both in turn (b alone at rung 1: goes on).
  a.report("b", 40, 100, 0.3, 0.7);
  CHECK(a.decide("b") == StopDecision::go_on);
  REQUIRE(a.decisions().size() == 3);
  CHECK(a.decisions()[2].rung == 1);
}

TEST_CASE("asha: rungs in epochs use each job's steps per epoch and val_loss is minimised") {
  Asha a = make(false, 1, 3, 3, /*maximize=*/false);
  a.add_job("small");
  a.add_job("big");
  a.add_job("nan");
  a.set_steps_per_unit("small", 50);  // rung steps 50, 150, 450
  a.set_steps_per_unit("big", 12.5);  // 13, 38, 113
  a.set_steps_per_unit("nan", 50);
  CHECK(a.rung_step("small", 0) == 50);
  CHECK(a.rung_step("small", 2) == 450);
  CHECK(a.rung_step("big", 0) == 13);
  CHECK(a.rung_step("big", 1) == 38);
  a.report("big", 12, 100, 0.5, 0);
  CHECK(a.decisions().empty());
  a.report("big", 13, 100, 2.0, 0);
  CHECK(a.decide("big") == StopDecision::go_on);
  a.report("nan", 50, 500, std::nan(""), 0);  // NaN ranks last
  CHECK(a.decide("nan") == StopDecision::stop);
  a.report("small", 50, 500, 1.0, 0);  // lower loss than big: best of 3, keeps 1
  CHECK(a.decide("small") == StopDecision::go_on);
  CHECK(stopped(a) == std::set<std::string>{"nan"});
}

TEST_CASE("asha: bad parameters are refused") {
  CHECK_THROWS(make(false, 0, 3, 1));
  CHECK_THROWS(make(false, 1, 1, 1));
  CHECK_THROWS(make(false, 1, 3, 0));
}

TEST_CASE("asha: a spent time budget stops every job that validates and says why") {
  auto inner = std::make_shared<Asha>(make(false, 10, 2, 1));
  TimeBudget live(1000, inner), spent(0.0, nullptr);
  live.add_job("a");
  live.report("a", 10, 40, 0.5, 0.5);
  CHECK(live.decide("a") == StopDecision::go_on);
  CHECK(inner->decisions().size() == 1);  // the inner rule saw the report
  spent.add_job("a");
  spent.report("a", 10, 40, 0.5, 0.5);
  CHECK(spent.decide("a") == StopDecision::stop);
  CHECK(spent.reason("a").find("time budget of 0 s spent") == 0);
}
