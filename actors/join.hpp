#pragma once
// Running several coroutines of one actor at once: `co_await when_all(self, std::move(tasks))`
// starts every Task<void> as its own root coroutine on `self` (each runs until its first
// suspension, typically a request), and resumes the awaiting coroutine once all of them have
// finished; it then rethrows the first exception any of them ended with. A failing task does not
// cancel the others (their requests are in flight), it only makes the join throw at the end.
//
// Lifetimes follow coroutine.hpp: when the actor terminates, CAF drops the children's pending
// response handlers, their frames are destroyed, and the last of them destroys the awaiting
// chain's root frame.
#include <exception>
#include <memory>
#include <utility>
#include <vector>

#include "actors/coroutine.hpp"

namespace hydra::actors {

namespace detail {

struct JoinState {
  std::coroutine_handle<> waiting;
  std::shared_ptr<Chain> chain;
  std::size_t remaining = 0;
  std::exception_ptr* error = nullptr;  // in the awaiter, which lives in the waiting frame
  bool suspended = false, resumed = false;

  JoinState() = default;
  JoinState(const JoinState&) = delete;
  JoinState& operator=(const JoinState&) = delete;
  ~JoinState() {
    // The children were destroyed without finishing (the actor is gone): so is the waiting chain.
    if (suspended && !resumed && chain && chain->root) {
      auto root = std::exchange(chain->root, {});
      root.destroy();
    }
  }
  void finish_one(std::exception_ptr e) {
    if (e && !*error) *error = e;
    if (--remaining > 0 || !suspended) return;
    resumed = true;
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
  JoinAwaiter(caf::event_based_actor* self, std::vector<Task<void>> tasks)
      : self_(self), tasks_(std::move(tasks)) {}
  bool await_ready() const noexcept { return tasks_.empty(); }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    auto state = std::make_shared<JoinState>();
    state->waiting = h;
    state->chain = h.promise().chain;
    state->remaining = tasks_.size();
    state->error = &error_;
    for (Task<void>& t : tasks_)
      start<void>(self_, std::move(t), [state](Outcome<void> out) {
        state->finish_one(out.index() == 1 ? std::get<1>(out) : nullptr);
      });
    tasks_.clear();
    if (state->remaining == 0) return false;  // all finished without suspending
    state->suspended = true;
    return true;
  }
  void await_resume() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  caf::event_based_actor* self_;
  std::vector<Task<void>> tasks_;
  std::exception_ptr error_;
};

}  // namespace detail

inline detail::JoinAwaiter when_all(caf::event_based_actor* self, std::vector<Task<void>> tasks) {
  return {self, std::move(tasks)};
}

}  // namespace hydra::actors
