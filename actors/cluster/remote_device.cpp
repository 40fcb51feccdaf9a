#include "actors/cluster/remote_device.hpp"

#include <caf/io/all.hpp>
#include <caf/openssl/manager.hpp>

#include <cerrno>
#include <cstdlib>
#include <map>
#include <set>

#include "actors/cluster/protocol.hpp"
#include "actors/cluster/remote_task.hpp"
#include "actors/cluster/wire.hpp"
#include "actors/messages.hpp"

namespace hydra::cluster {

std::pair<std::string, std::uint16_t> parse_address(const std::string& address,
                                                    const std::string& what) {
  const auto colon = address.rfind(':');
  const std::string form =
      what + ": expected HOST:PORT with a port in [1, 65535], got '" + address + "'";
  if (colon == std::string::npos || colon == 0) throw Error(form);
  const std::string port = address.substr(colon + 1);
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || errno == ERANGE || v < 1 || v > 65535) throw Error(form);
  return {address.substr(0, colon), static_cast<std::uint16_t>(v)};
}

NodeLink connect_node(caf::actor_system& sys, const std::string& address, const std::string& secret,
                      std::chrono::milliseconds timeout) {
  check(!secret.empty(), "RuntimeOptions: node_secret must not be empty when nodes are given");
  auto [host, port] = parse_address(address, "RuntimeOptions: node address");
  caf::scoped_actor self{sys};
  // The middleman's connect, bounded by `timeout` (middleman().remote_actor waits forever, e.g. on
  // a link that accepts the connection and then goes silent).
  // With CAF's OpenSSL module loaded (cluster::use_tls), the link is mutual TLS.
  const bool tls = sys.has_openssl_manager();
  NodeLink link;
  link.address = address;
  std::string unreachable;
  self->request(tls ? sys.openssl_manager().actor_handle() : sys.middleman().actor_handle(),
                timeout, caf::connect_atom::value, host, port)
      .receive(
          [&](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
            if (ptr)
              link.node = caf::actor_cast<caf::actor>(std::move(ptr));
            else
              unreachable = "no node actor on that port";
          },
          [&](caf::error& e) { unreachable = sys.render(e); });
  if (!link.node)
    throw Error("node " + address + ": cannot connect: " + unreachable +
                (tls ? " (TLS: the node must run with TLS and have a certificate signed by "
                       "node_tls.ca, and its CA must have signed node_tls.certificate)"
                     : " (a node started with TLS, `hydra node --tls-*`, takes only "
                       "coordinators with node_tls / --node-tls-*)"));
  const std::string cn = random_bytes(nonce_bytes);
  std::string nn, failure;
  // Every handshake reply is (atom, string, string); refused_atom carries the reason.
  auto ask = [&](auto... request) {
    caf::atom_value kind = refused_atom::value;
    std::string a, b;
    self->request(link.node, timeout, request...)
        .receive(
            [&](caf::atom_value k, std::string& x, std::string& y) {
              kind = k;
              a = std::move(x);
              b = std::move(y);
            },
            [&](caf::error& e) {
              kind = caf::atom("noanswer");
              a = sys.render(e);
            });
    return std::make_tuple(kind, a, b);
  };
  auto [k1, n, proof] = ask(hello_atom::value, cn);
  if (k1 == caf::atom("noanswer"))
    failure = "no answer to the handshake: " + n;
  else if (k1 == refused_atom::value)
    failure = "refused: " + n;
  else if (k1 != challenge_atom::value || n.size() != nonce_bytes ||
           !same_mac(proof, hmac(secret, "hydra-node" + cn + n))) {
    // Our proof is not sent to a node that could not prove itself; it is told why.
    failure = "wrong shared secret (the node's proof does not match node_secret)";
    self->send(link.node, refused_atom::value, std::string("wrong shared secret"));
  } else
    nn = n;
  if (failure.empty()) {
    auto [k2, devices, mac] = ask(auth_atom::value, hmac(secret, "hydra-coordinator" + nn + cn));
    link.session = hmac(secret, "hydra-session" + cn + nn);
    if (k2 == caf::atom("noanswer")) {
      failure = "no answer to the handshake: " + devices;
    } else if (k2 == refused_atom::value) {
      failure = "refused: " + devices;
    } else if (k2 != welcome_atom::value ||
               !same_mac(mac, hmac(link.session, "welcome" + devices))) {
      failure = "the welcome message failed its MAC";
    } else {
      try {
        Reader r(devices);
        const std::size_t count = r.count(1024);
        for (std::size_t i = 0; i < count; ++i) {
          RemoteDeviceInfo d;
          d.name = r.str();
          d.budget = r.u64();
          link.devices.push_back(d);
        }
        r.expect_end();
        if (link.devices.empty()) failure = "the node has no devices";
      } catch (const WireError& e) {
        failure = e.what();
      }
    }
  }
  if (!failure.empty()) throw Error("node " + address + ": " + failure);
  return link;
}

namespace {

struct InFlight {
  actors::TaskPtr task;
  double start = 0, sent = 0;  // trace clock: encoding started, request sent
  std::size_t request_bytes = 0;
  std::size_t behind = 0;  // tasks in flight before it when it was sent (the node runs them first)
};

struct ProxyState {
  RemoteDeviceConfig cfg;
  caf::actor scheduler;
  std::shared_ptr<Trace> trace;
  std::shared_ptr<LinkCounters> counters;
  std::uint64_t seq = 0;
  std::map<std::uint64_t, InFlight> inflight;
  // Sequence numbers of tasks given back to the scheduler after they were sent: their results,
  // if the node still sends them, are dropped. The node answers in sequence order, so a result
  // for a later sequence number means it will not answer the earlier ones any more.
  std::set<std::uint64_t> given_back;
  // The smallest round trip minus the node's own work of a task that waited behind no other
  // (twice the one-way latency), to place the node's phases on the trace clock.
  double min_overhead = -1;
  double last_compute_end = 0;
  bool lost = false;

  template <class F>
  void count(F f) {
    std::lock_guard lock(counters->mu);
    f(counters->links.at(static_cast<std::size_t>(cfg.link)));
  }
};

// Clears what a device filled in, for a task that goes back to the scheduler unrun.
void reset_measurements(actors::ShardTask& t) {
  t.load_start = t.load_end = t.compute_start = t.compute_end = t.store_start = t.store_end = 0;
  t.load_bytes = t.store_bytes = 0;
  t.prefetched = t.prefetch_hit = false;
  t.error.clear();
}

void lose(caf::event_based_actor* self, ProxyState& s, const std::string& why) {
  if (s.lost) return;
  s.lost = true;
  const auto n = s.inflight.size();
  std::fprintf(stderr, "hydra: %s lost (%s); %zu task(s) go back to the scheduler\n",
               s.cfg.name.c_str(), why.c_str(), n);
  s.count([&](LinkStats& l) { l.requeued += n; });
  for (auto& [seq, f] : s.inflight)
    reset_measurements(*f.task);
  s.inflight.clear();
  self->quit(caf::exit_reason::remote_link_unreachable);
}

// Places the node's load, compute and store of a task on the trace clock. The node runs its
// tasks one at a time in order, so a task sent while others were in flight waited there: its
// phases end one one-way latency before its result arrived, and its load covers encoding,
// sending and waiting (it overlapped the compute of the tasks before it).
void place(ProxyState& s, const InFlight& f, const NodeSeconds& node, double received,
           double applied, actors::ShardTask& t) {
  const double node_total = node.load + node.compute + node.store;
  const double overhead = std::max(0.0, (received - f.sent) - node_total);
  if (f.behind == 0 && (s.min_overhead < 0 || overhead < s.min_overhead)) s.min_overhead = overhead;
  const double one_way = (s.min_overhead < 0 ? overhead : s.min_overhead) / 2;
  const double node_end = std::max(f.sent + node_total, received - one_way);
  t.load_start = f.start;
  t.compute_end = node_end - node.store;
  t.compute_start = std::max(t.compute_end - node.compute, s.last_compute_end);
  t.compute_end = std::max(t.compute_end, t.compute_start);
  t.load_end = t.compute_start;
  t.store_start = t.compute_end;
  t.store_end = applied;
  s.last_compute_end = t.compute_end;
  s.count([&](LinkStats& l) {
    l.network_seconds += overhead;
    l.node_seconds += node_total;
  });
}

}  // namespace

caf::behavior remote_device_actor(caf::event_based_actor* self, RemoteDeviceConfig config,
                                  caf::actor scheduler, std::shared_ptr<Trace> trace,
                                  std::shared_ptr<LinkCounters> counters) {
  auto s = std::make_shared<ProxyState>();
  s->cfg = std::move(config);
  s->scheduler = scheduler;
  s->trace = std::move(trace);
  s->counters = std::move(counters);
  s->count([](LinkStats& l) { l.tasks_since_join = 0; });
  self->monitor(s->cfg.node.node);
  self->set_down_handler([self, s](caf::down_msg& dm) {
    if (dm.source == s->cfg.node.node.address())
      lose(self, *s, "node down: " + self->system().render(dm.reason));
  });
  self->set_default_handler(caf::drop);
  self->send(scheduler, actors::pull_atom::value, s->cfg.index, std::max(1, s->cfg.slots));
  using namespace actors;
  return {
      [self, s](run_atom, TaskPtr& t) {
        InFlight f;
        f.task = t;
        f.start = s->trace->now();
        std::string request;
        try {
          request = encode_request(*t);
        } catch (const std::exception& e) {
          t->error = e.what();
          t->device = s->cfg.index;
          t->device_name = s->cfg.name;
          t->compute_start = t->compute_end = t->store_start = t->store_end = s->trace->now();
          self->send(s->scheduler, done_atom::value, t);
          self->send(s->scheduler, pull_atom::value, s->cfg.index, 1);
          return;
        }
        const std::uint64_t seq = ++s->seq;
        const std::string mac =
            hmac(s->cfg.node.session, mac_input("req", s->cfg.remote, seq, request));
        f.request_bytes = request.size();
        f.sent = s->trace->now();
        f.behind = s->inflight.size();
        s->count([&](LinkStats& l) {
          l.bytes_sent += request.size();
          l.encode_seconds += f.sent - f.start;
        });
        self->send(s->cfg.node.node, task_atom::value, s->cfg.remote, seq, std::move(request), mac);
        s->inflight.emplace(seq, std::move(f));
      },
      [self, s](result_atom, std::uint64_t seq, const std::string& result, const std::string& mac) {
        const auto& sender = self->current_sender();
        if (!sender || sender->node() != s->cfg.node.node.node()) {
          std::fprintf(stderr, "hydra: %s: dropped a result from another node (sequence %llu)\n",
                       s->cfg.name.c_str(), static_cast<unsigned long long>(seq));
          return;
        }
        const bool given_back = s->given_back.count(seq) > 0;
        s->given_back.erase(s->given_back.begin(), s->given_back.upper_bound(seq));
        auto it = s->inflight.find(seq);
        if (it == s->inflight.end()) {
          // A task given back to the scheduler that the node ran anyway, or an answer to nothing
          // this proxy has in flight (a duplicate): never applied.
          s->count([](LinkStats& l) { ++l.dropped_results; });
          if (!given_back)
            std::fprintf(stderr, "hydra: %s: dropped an unexpected result (sequence %llu)\n",
                         s->cfg.name.c_str(), static_cast<unsigned long long>(seq));
          return;
        }
        if (!same_mac(mac,
                      hmac(s->cfg.node.session, mac_input("res", s->cfg.remote, seq, result)))) {
          lose(self, *s, "a result failed its MAC");
          return;
        }
        const double received = s->trace->now();
        InFlight f = std::move(it->second);
        s->inflight.erase(it);
        ShardTask& t = *f.task;
        NodeSeconds node;
        try {
          node = apply_result(result, t);
        } catch (const std::exception& e) {
          s->inflight.emplace(seq, std::move(f));
          lose(self, *s, std::string("a malformed result: ") + e.what());
          return;
        }
        const double applied = s->trace->now();
        t.device = s->cfg.index;
        t.device_name = s->cfg.name;
        place(*s, f, node, received, applied, t);
        t.load_bytes = f.request_bytes;
        t.store_bytes = result.size();
        t.prefetched = f.behind > 0;  // its transfer overlapped the node's work on another task
        t.prefetch_hit = false;
        s->count([&](LinkStats& l) {
          ++l.tasks;
          ++l.tasks_since_join;
          l.bytes_received += result.size();
          l.apply_seconds += applied - received;
        });
        self->send(s->scheduler, done_atom::value, f.task);
        self->send(s->scheduler, pull_atom::value, s->cfg.index, 1);
      },
      [self, s](steal_atom) {
        // An idle device wants work: give back the newest task that waits behind another on the
        // node, and tell the node to skip it.
        TaskPtr given;
        if (s->inflight.size() >= 2) {
          auto it = std::prev(s->inflight.end());
          const std::uint64_t seq = it->first;
          given = it->second.task;
          s->inflight.erase(it);
          s->given_back.insert(seq);
          reset_measurements(*given);
          s->count([](LinkStats& l) { ++l.given_back; });
          self->send(s->cfg.node.node, cancel_atom::value, s->cfg.remote, seq,
                     hmac(s->cfg.node.session, mac_input("cnl", s->cfg.remote, seq, "")));
        }
        self->send(s->scheduler, stolen_atom::value, s->cfg.index, given);
      },
      [](prefetch_atom, TaskPtr&) {},
      [](drop_atom) {},
      [self](stop_atom) { self->quit(); },
  };
}

}  // namespace hydra::cluster
