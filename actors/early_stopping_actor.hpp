#pragma once
// One actor per run with RuntimeOptions::early_stopping: it owns the rule (runtime/
// early_stopping.hpp) and serialises every call to it. It calls add_job for every job when it
// starts, before any message.
//
//   (es_report_atom, job, step, total_steps, val_loss, val_accuracy) -> StopVerdict
//       a job validated: report() to the rule, then decide(). go_on and stop are answered at
//       once; wait parks the job (its response is kept, so the job submits no tasks and the
//       devices go to other jobs) until decide() says otherwise.
//   (es_ended_atom, job)
//       a job finished, failed or was stopped: job_ended() to the rule.
//
// After each report and each job end, decide() is asked again for every parked job (in name
// order) and the ones no longer told to wait get their answer. An exception thrown by the rule
// answers the reporting (or re-asked) job with an error, which fails that job.
#include <caf/all.hpp>

#include <memory>
#include <string>
#include <vector>

#include "runtime/early_stopping.hpp"

namespace hydra::actors {

using es_report_atom = caf::atom_constant<caf::atom("esreport")>;  // job -> early stopping
using es_ended_atom = caf::atom_constant<caf::atom("esended")>;    // job -> early stopping

struct StopVerdict {
  StopDecision decision = StopDecision::go_on;  // go_on or stop (never wait)
  std::string reason;                           // stop: EarlyStopping::reason(job)
};

caf::behavior early_stopping_actor(caf::event_based_actor* self,
                                   std::shared_ptr<EarlyStopping> rule,
                                   std::vector<std::string> jobs);

}  // namespace hydra::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(hydra::actors::StopVerdict)
