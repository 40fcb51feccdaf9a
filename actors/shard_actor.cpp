#include "actors/shard_actor.hpp"

#include "actors/messages.hpp"

namespace hydra::actors {

caf::behavior shard_actor(caf::event_based_actor* self, std::shared_ptr<ShardState> state,
                          caf::actor scheduler) {
  auto busy = std::make_shared<bool>(false);
  return {
      [self, state, scheduler, busy](run_atom, TaskPtr& t) -> caf::result<TaskPtr> {
        if (*busy)
          return caf::make_error(caf::sec::runtime_error, "shard " + std::to_string(state->shard) +
                                                              " of job " + state->job_name +
                                                              " already has a task in flight");
        if (t->kind == TaskKind::backward && !state->has_stash(t->micro_batch))
          return caf::make_error(caf::sec::runtime_error,
                                 "backward of shard " + std::to_string(state->shard) +
                                     " micro-batch " + std::to_string(t->micro_batch) +
                                     " without a preceding training forward");
        t->state = state;
        *busy = true;
        auto rp = self->make_response_promise();
        self->request(scheduler, caf::infinite, submit_atom::value, t)
            .then(
                [rp, busy](TaskPtr& done) mutable {
                  *busy = false;
                  rp.deliver(done);
                },
                [rp, busy](caf::error& e) mutable {
                  *busy = false;
                  rp.deliver(std::move(e));
                });
        return rp;
      },
  };
}

}  // namespace hydra::actors
