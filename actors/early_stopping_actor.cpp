#include "actors/early_stopping_actor.hpp"

#include <cstdio>
#include <map>

#include "kernels/core/error.hpp"

namespace hydra::actors {

namespace {

struct EarlyStoppingState {
  std::shared_ptr<EarlyStopping> rule;
  std::map<std::string, caf::response_promise> parked;  // by job name

  StopVerdict verdict(const std::string& job, StopDecision d) const {
    StopVerdict v;
    v.decision = d;
    if (d == StopDecision::stop) v.reason = rule->reason(job);
    return v;
  }
  // Asks decide() again for every parked job but `skip`; answers those no longer waiting.
  void recheck(const std::string& skip) {
    for (auto it = parked.begin(); it != parked.end();) {
      if (it->first == skip) {
        ++it;
        continue;
      }
      try {
        const StopDecision d = rule->decide(it->first);
        if (d == StopDecision::wait) {
          ++it;
          continue;
        }
        it->second.deliver(verdict(it->first, d));
      } catch (const std::exception& e) {
        it->second.deliver(caf::make_error(caf::sec::runtime_error,
                                           std::string("early stopping rule: ") + e.what()));
      }
      it = parked.erase(it);
    }
  }
};

}  // namespace

caf::behavior early_stopping_actor(caf::event_based_actor* self,
                                   std::shared_ptr<EarlyStopping> rule,
                                   std::vector<std::string> jobs) {
  auto st = std::make_shared<EarlyStoppingState>();
  st->rule = std::move(rule);
  for (const std::string& j : jobs)
    st->rule->add_job(j);
  return {
      [self, st](es_report_atom, const std::string& job, std::int64_t step,
                 std::int64_t total_steps, double val_loss,
                 double val_accuracy) -> caf::result<StopVerdict> {
        StopDecision d;
        try {
          st->rule->report(job, step, total_steps, val_loss, val_accuracy);
          d = st->rule->decide(job);
        } catch (const std::exception& e) {
          st->recheck(job);
          return caf::make_error(caf::sec::runtime_error,
                                 std::string("early stopping rule: ") + e.what());
        }
        st->recheck(job);
        if (d != StopDecision::wait) {
          try {
            return st->verdict(job, d);
          } catch (const std::exception& e) {
            return caf::make_error(caf::sec::runtime_error,
                                   std::string("early stopping rule: ") + e.what());
          }
        }
        auto rp = self->make_response_promise();
        st->parked[job] = rp;
        return rp;
      },
      [st](es_ended_atom, const std::string& job) {
        try {
          st->rule->job_ended(job);
        } catch (const std::exception& e) {
          // The job is over either way: no job to fail, so say it.
          std::fprintf(stderr, "hydra: early stopping rule: job_ended(%s) threw: %s\n", job.c_str(),
                       e.what());
        }
        st->parked.erase(job);
        st->recheck("");
      },
  };
}

}  // namespace hydra::actors
