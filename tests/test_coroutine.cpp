#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "actors/coroutine.hpp"

using namespace hydra;
using namespace hydra::actors;

namespace {

using go_atom = caf::atom_constant<caf::atom("go")>;

std::atomic<int> probes_alive{0};
struct Probe {
  Probe() { ++probes_alive; }
  ~Probe() { --probes_alive; }
};

caf::behavior doubler() {
  return {[](int x) -> caf::result<int> {
    if (x < 0) return caf::make_error(caf::sec::invalid_argument, "negative input");
    return x * 2;
  }};
}

// Never answers: keeps every promise until it is killed.
caf::behavior black_hole(caf::event_based_actor* self) {
  auto pending = std::make_shared<std::vector<caf::response_promise>>();
  return {[self, pending](int) { pending->push_back(self->make_response_promise()); }};
}

Task<int> twice(caf::event_based_actor* self, caf::actor d, int x) {
  int a = co_await request<int>(self, d, x);
  co_return co_await request<int>(self, d, a);
}

Task<int> body(caf::event_based_actor* self, caf::actor d, int x) {
  Probe probe;
  int four = co_await twice(self, d, x);
  int two = co_await request<int>(self, d, x);
  co_return four + two;
}

caf::behavior driver(caf::event_based_actor* self, caf::actor d) {
  return {[self, d](go_atom, int x) -> caf::result<int> {
    auto rp = self->make_response_promise();
    start<int>(self, body(self, d, x), [rp](Outcome<int> out) mutable {
      if (out.index() == 0) {
        rp.deliver(std::get<0>(out));
      } else {
        try {
          std::rethrow_exception(std::get<1>(out));
        } catch (const std::exception& e) {
          rp.deliver(caf::make_error(caf::sec::runtime_error, e.what()));
        }
      }
    });
    return rp;
  }};
}

}  // namespace

TEST_CASE("a coroutine awaits nested CAF requests and answers through a response promise") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto d = sys.spawn(doubler);
  auto drv = sys.spawn(driver, d);
  caf::scoped_actor self{sys};
  int got = 0;
  self->request(drv, std::chrono::seconds(10), go_atom::value, 5)
      .receive([&](int r) { got = r; }, [&](caf::error& e) { FAIL(sys.render(e)); });
  CHECK(got == 5 * 4 + 5 * 2);
  CHECK(probes_alive == 0);
}

TEST_CASE("an error response resumes the coroutine with an exception") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto d = sys.spawn(doubler);
  auto drv = sys.spawn(driver, d);
  caf::scoped_actor self{sys};
  std::string error;
  self->request(drv, std::chrono::seconds(10), go_atom::value, -1)
      .receive([&](int) { FAIL("expected an error"); },
               [&](caf::error& e) { error = sys.render(e); });
  CHECK(error.find("negative input") != std::string::npos);
  CHECK(probes_alive == 0);
}

TEST_CASE("killing an actor that awaits a response destroys its coroutine frames") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto hole = sys.spawn(black_hole);
  auto drv = sys.spawn(driver, hole);
  caf::scoped_actor self{sys};
  self->send(drv, go_atom::value, 1);
  // The coroutine is now suspended in `twice`, waiting for an answer that never comes.
  for (int i = 0; i < 500 && probes_alive == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  REQUIRE(probes_alive == 1);
  self->send_exit(drv, caf::exit_reason::kill);
  for (int i = 0; i < 500 && probes_alive != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  CHECK(probes_alive == 0);
  self->send_exit(hole, caf::exit_reason::kill);
}
