#pragma once
// Running several coroutines of one actor at once.
//
//   TaskGroup group(self);
//   group.spawn(task);            // starts a Task<void> as its own root coroutine on `self` (it
//                                 // runs until its first suspension, typically a request)
//   co_await std::move(group).join();
//                                 // resumes once every spawned task has finished, then rethrows
//                                 // the first exception any of them ended with
//
// A running task may spawn more tasks into the group through a copy of the group (a dataflow:
// the task that completes a successor's inputs starts it); the join waits for those as well. A
// failing task does not cancel the others (their requests are in flight); it only makes the join
// throw at the end. `co_await when_all(self, std::move(tasks))` is the fixed-set shorthand.
//
// Lifetimes follow coroutine.hpp: join() hands the awaiting coroutine's reference to the group
// over to the running tasks. When the actor terminates, CAF drops their pending response
// handlers, their frames are destroyed, and with the last of them the group, which destroys the
// awaiting chain's root frame.
#include <exception>
#include <memory>
#include <utility>
#include <vector>

#include "actors/coroutine.hpp"

namespace hydra::actors {

namespace detail {

struct GroupState : std::enable_shared_from_this<GroupState> {
  caf::event_based_actor* self = nullptr;
  std::coroutine_handle<> waiting;
  std::shared_ptr<Chain> chain;
  std::size_t running = 0;
  std::exception_ptr error;
  std::exception_ptr* out = nullptr;  // in the join's awaiter, which lives in the waiting frame
  bool suspended = false, resumed = false;

  GroupState() = default;
  GroupState(const GroupState&) = delete;
  GroupState& operator=(const GroupState&) = delete;
  ~GroupState() {
    // The tasks were destroyed without finishing (the actor is gone): so is the waiting chain.
    if (suspended && !resumed && chain && chain->root) {
      auto root = std::exchange(chain->root, {});
      root.destroy();
    }
  }
  void spawn(Task<void> t) {
    ++running;
    start<void>(self, std::move(t), [s = shared_from_this()](Outcome<void> o) {
      s->finish_one(o.index() == 1 ? std::get<1>(o) : nullptr);
    });
  }
  void finish_one(std::exception_ptr e) {
    if (e && !error) error = e;
    if (--running > 0 || !suspended) return;
    resumed = true;
    *out = error;
    auto c = chain;
    waiting.resume();
    if (c && c->finished && c->root) {
      auto root = std::exchange(c->root, {});
      root.destroy();
    }
  }
};

class JoinAwaiter {
 public:
  explicit JoinAwaiter(std::shared_ptr<GroupState> state) : state_(std::move(state)) {}
  bool await_ready() const noexcept { return state_->running == 0; }
  template <class P>
  void await_suspend(std::coroutine_handle<P> h) {
    state_->waiting = h;
    state_->chain = h.promise().chain;
    state_->out = &error_;
    state_->suspended = true;
    state_.reset();  // the running tasks hold the group now
  }
  void await_resume() {
    if (state_) error_ = state_->error;  // finished before suspending
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::shared_ptr<GroupState> state_;
  std::exception_ptr error_;
};

}  // namespace detail

class TaskGroup {
 public:
  explicit TaskGroup(caf::event_based_actor* self)
      : state_(std::make_shared<detail::GroupState>()) {
    state_->self = self;
  }
  void spawn(Task<void> t) { state_->spawn(std::move(t)); }
  // Awaitable once, by the coroutine that made the group.
  detail::JoinAwaiter join() && { return detail::JoinAwaiter(std::move(state_)); }

 private:
  std::shared_ptr<detail::GroupState> state_;
};

inline detail::JoinAwaiter when_all(caf::event_based_actor* self, std::vector<Task<void>> tasks) {
  TaskGroup group(self);
  for (Task<void>& t : tasks)
    group.spawn(std::move(t));
  return std::move(group).join();
}

}  // namespace hydra::actors
