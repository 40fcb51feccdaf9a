#pragma once
// C++20 coroutines on CAF actors.
//
//   Task<T>            a lazily started coroutine returning T; awaitable from another Task.
//   request<R>(self, dest, args...)
//                      awaitable: sends a request and resumes the coroutine with the response
//                      (an R) inside the response handler, i.e. on `self`'s own context. An error
//                      response resumes it by throwing hydra::Error.
//   start(self, task, done)
//                      runs `task` as a root coroutine of actor `self`; `done` receives the result
//                      or the exception. Make any response promise before calling start().
//
// Lifetimes: a chain of awaiting Tasks hangs off one root frame. When CAF drops a pending response
// handler without calling it (the awaiting actor terminated), the root frame is destroyed, and with
// it every frame of the chain and their locals: nothing leaks and nothing resumes on a dead actor.
#include <caf/all.hpp>

#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "kernels/core/error.hpp"

namespace hydra::actors {

namespace detail {

// The state shared by all frames of one chain: the root frame's handle.
struct Chain {
  std::coroutine_handle<> root;
  bool finished = false;
};

struct PromiseBase {
  std::coroutine_handle<> continuation;  // the awaiting parent, or null for a root
  std::shared_ptr<Chain> chain;
  std::exception_ptr error;

  std::suspend_always initial_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
};

template <class T>
struct Promise;

}  // namespace detail

template <class T = void>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  Task() = default;
  explicit Task(Handle h) : handle_(h) {}
  Task(Task&& o) noexcept : handle_(std::exchange(o.handle_, {})) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      reset();
      handle_ = std::exchange(o.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  // Awaiting a Task starts it; the awaiting coroutine resumes when it finishes.
  bool await_ready() const noexcept { return false; }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
    handle_.promise().continuation = parent;
    handle_.promise().chain = parent.promise().chain;
    return handle_;
  }
  T await_resume() { return handle_.promise().take(); }

  Handle release() { return std::exchange(handle_, {}); }

 private:
  void reset() {
    if (handle_) handle_.destroy();
    handle_ = {};
  }
  Handle handle_;
};

namespace detail {

struct FinalAwaiter {
  bool await_ready() const noexcept { return false; }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
    auto& p = h.promise();
    if (p.continuation) return p.continuation;
    // A root: report completion; the frame is destroyed by whoever owns the root (start()).
    if (p.chain) p.chain->finished = true;
    return std::noop_coroutine();
  }
  void await_resume() const noexcept {}
};

template <class T>
struct Promise : PromiseBase {
  std::optional<T> value;
  Task<T> get_return_object() {
    return Task<T>(std::coroutine_handle<Promise>::from_promise(*this));
  }
  FinalAwaiter final_suspend() noexcept { return {}; }
  template <class U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T take() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};

template <>
struct Promise<void> : PromiseBase {
  Task<void> get_return_object() {
    return Task<void>(std::coroutine_handle<Promise>::from_promise(*this));
  }
  FinalAwaiter final_suspend() noexcept { return {}; }
  void return_void() {}
  void take() {
    if (error) std::rethrow_exception(error);
  }
};

// Held by both response handlers of one request. If CAF destroys the handlers without calling
// either (the actor is gone), the chain's root frame is destroyed.
class Resumer {
 public:
  Resumer(std::coroutine_handle<> waiting, std::shared_ptr<Chain> chain)
      : waiting_(waiting), chain_(std::move(chain)) {}
  Resumer(const Resumer&) = delete;
  Resumer& operator=(const Resumer&) = delete;
  ~Resumer() {
    if (!resumed_ && chain_ && chain_->root) {
      auto root = std::exchange(chain_->root, {});
      root.destroy();
    }
  }
  // Resumes the waiting frame; destroys the chain's root if the coroutine ran to its end.
  void resume() {
    resumed_ = true;
    auto chain = chain_;
    waiting_.resume();
    if (chain && chain->finished && chain->root) {
      auto root = std::exchange(chain->root, {});
      root.destroy();
    }
  }

 private:
  std::coroutine_handle<> waiting_;
  std::shared_ptr<Chain> chain_;
  bool resumed_ = false;
};

}  // namespace detail

// Awaitable request. R is the single response type (use caf::message for anything).
template <class R, class... Args>
class RequestAwaiter {
 public:
  RequestAwaiter(caf::event_based_actor* self, caf::actor dest, caf::duration timeout, Args... args)
      : self_(self), dest_(std::move(dest)), timeout_(timeout), args_(std::move(args)...) {}

  bool await_ready() const noexcept { return false; }

  template <class P>
  void await_suspend(std::coroutine_handle<P> h) {
    auto resumer = std::make_shared<detail::Resumer>(h, h.promise().chain);
    auto handle = std::apply(
        [&](auto&... a) { return self_->request(dest_, timeout_, std::move(a)...); }, args_);
    handle.then(
        [this, resumer](R& r) {
          result_.template emplace<1>(std::move(r));
          resumer->resume();
        },
        [this, resumer](caf::error& e) {
          result_.template emplace<2>(self_->system().render(e));
          resumer->resume();
        });
  }

  R await_resume() {
    if (result_.index() == 2)
      throw Error("request to actor " + std::to_string(dest_.id()) +
                  " failed: " + std::get<2>(result_));
    return std::move(std::get<1>(result_));
  }

 private:
  caf::event_based_actor* self_;
  caf::actor dest_;
  caf::duration timeout_;
  std::tuple<Args...> args_;
  std::variant<std::monostate, R, std::string> result_;
};

template <class R, class... Args>
RequestAwaiter<R, std::decay_t<Args>...> request(caf::event_based_actor* self,
                                                 const caf::actor& dest, Args&&... args) {
  return {self, dest, caf::infinite, std::forward<Args>(args)...};
}

template <class R, class... Args>
RequestAwaiter<R, std::decay_t<Args>...> request_within(caf::event_based_actor* self,
                                                        const caf::actor& dest,
                                                        caf::duration timeout, Args&&... args) {
  return {self, dest, timeout, std::forward<Args>(args)...};
}

// Outcome of a root coroutine: its value, or the exception it ended with.
template <class T>
using Outcome =
    std::variant<std::conditional_t<std::is_void_v<T>, std::monostate, T>, std::exception_ptr>;

namespace detail {

template <class T>
Task<void> run_root(Task<T> task, std::function<void(Outcome<T>)> done) {
  Outcome<T> out;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(task);
      out.template emplace<0>();
    } else {
      out.template emplace<0>(co_await std::move(task));
    }
  } catch (...) {
    out.template emplace<1>(std::current_exception());
  }
  if (done) done(std::move(out));
}

}  // namespace detail

// Starts `task` as a root coroutine on actor `self` (call from within one of its handlers).
// It runs until its first suspension before start() returns.
template <class T>
void start(caf::event_based_actor* self, Task<T> task, std::function<void(Outcome<T>)> done = {}) {
  (void)self;
  auto root = detail::run_root<T>(std::move(task), std::move(done)).release();
  auto chain = std::make_shared<detail::Chain>();
  chain->root = root;
  root.promise().chain = chain;
  root.resume();
  // Finished without suspending on a request: destroy now. Otherwise the Resumer that resumes it
  // last destroys it.
  if (chain->finished && chain->root) {
    auto r = std::exchange(chain->root, {});
    r.destroy();
  }
}

}  // namespace hydra::actors
