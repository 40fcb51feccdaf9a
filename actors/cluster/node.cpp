#include "actors/cluster/node.hpp"

#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include <chrono>
#include <csignal>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "actors/cluster/link_config.hpp"
#include "actors/cluster/protocol.hpp"
#include "actors/cluster/remote_task.hpp"
#include "actors/cluster/tls.hpp"
#include "actors/cluster/wire.hpp"
#include "kernels/core/memory_pool.hpp"

namespace hydra::cluster {

namespace {

constexpr std::size_t max_pending = 64, max_sessions = 16;

class Log {
 public:
  explicit Log(std::FILE* f) : f_(f) {}
  void line(const std::string& s) {
    std::lock_guard lock(mu_);
    std::fprintf(f_, "hydra node: %s\n", s.c_str());
    std::fflush(f_);
  }

 private:
  std::FILE* f_;
  std::mutex mu_;
};

// Tasks a coordinator withdrew (cancel_atom) before the device ran them, by session key and
// sequence number; shared by the node actor (which adds) and the device's worker (which skips).
class Cancelled {
 public:
  void add(const std::string& key, std::uint64_t seq) {
    std::lock_guard lock(mu_);
    if (set_.size() >= max_entries) set_.erase(set_.begin());
    set_.emplace(key, seq);
  }
  bool take(const std::string& key, std::uint64_t seq) {
    std::lock_guard lock(mu_);
    return set_.erase({key, seq}) > 0;
  }

 private:
  static constexpr std::size_t max_entries = 1024;
  std::mutex mu_;
  std::set<std::pair<std::string, std::uint64_t>> set_;
};

// One detached actor per device: runs requests one at a time, in order, and answers the proxy
// directly; a request its coordinator withdrew before it started is skipped (no answer).
void device_worker(caf::blocking_actor* self, Device device, int index, std::shared_ptr<Log> log,
                   std::shared_ptr<Cancelled> cancelled) {
  Stream compute(device), copy(device);
  NodeModels models;
  bool running = true;
  self->receive_while(running)(
      [&](task_atom, std::uint64_t seq, const std::string& request, const std::string& key,
          const caf::actor& reply_to) {
        if (cancelled->take(key, seq)) return;
        std::string result;
        try {
          result = run_request(request, device, compute, copy, models);
        } catch (const std::exception& e) {
          log->line("device " + std::to_string(index) + ": request " + std::to_string(seq) +
                    " refused: " + e.what());
          result = encode_error_result(std::string("node refused the request: ") + e.what());
        }
        const std::string mac = hmac(key, mac_input("res", index, seq, result));
        self->send(reply_to, result_atom::value, seq, std::move(result), mac);
      },
      [&](actors::stop_atom) { running = false; });
}

struct Pending {
  std::string cn, nn;
};
struct Session {
  std::string key;
  std::vector<std::uint64_t> last_seq;  // per device
};

struct NodeState {
  std::string secret;
  std::string devices_payload;
  std::vector<caf::actor> workers;
  std::vector<std::shared_ptr<Cancelled>> cancelled;  // per device
  std::map<caf::node_id, Pending> pending;
  std::map<caf::node_id, Session> sessions;
  std::shared_ptr<Log> log;
  int crash_after_tasks = 0;
  int tasks = 0;
};

std::string peer(caf::event_based_actor* self) {
  const auto& s = self->current_sender();
  return s ? to_string(s->node()) : std::string("<anonymous>");
}

caf::behavior node_actor(caf::event_based_actor* self, std::shared_ptr<NodeState> st) {
  self->set_default_handler(
      [st](caf::scheduled_actor* a, caf::message_view& m) -> caf::result<caf::message> {
        const auto& s = a->current_sender();
        st->log->line("dropped an unexpected message from " +
                      (s ? to_string(s->node()) : std::string("<anonymous>")) + ": " +
                      to_string(m.content()).substr(0, 200));
        return caf::sec::unexpected_message;
      });
  return {
      [self, st](hello_atom, const std::string& cn) -> caf::result<caf::message> {
        const auto& s = self->current_sender();
        if (!s || cn.size() != nonce_bytes) {
          st->log->line("refused a hello from " + peer(self) + ": malformed nonce");
          return caf::make_message(refused_atom::value, std::string("malformed hello"),
                                   std::string());
        }
        if (st->pending.size() >= max_pending) st->pending.erase(st->pending.begin());
        Pending p{cn, random_bytes(nonce_bytes)};
        st->pending[s->node()] = p;
        return caf::make_message(challenge_atom::value, p.nn,
                                 hmac(st->secret, "hydra-node" + p.cn + p.nn));
      },
      [self, st](auth_atom, const std::string& proof) -> caf::result<caf::message> {
        const auto& s = self->current_sender();
        auto it = s ? st->pending.find(s->node()) : st->pending.end();
        if (it == st->pending.end()) {
          st->log->line("refused an auth from " + peer(self) + ": no hello before it");
          return caf::make_message(refused_atom::value, std::string("no handshake in progress"),
                                   std::string());
        }
        const Pending p = it->second;
        st->pending.erase(it);
        if (!same_mac(proof, hmac(st->secret, "hydra-coordinator" + p.nn + p.cn))) {
          st->log->line("refused " + peer(self) + ": wrong shared secret");
          return caf::make_message(refused_atom::value, std::string("wrong shared secret"),
                                   std::string());
        }
        if (st->sessions.size() >= max_sessions && !st->sessions.count(s->node()))
          st->sessions.erase(st->sessions.begin());
        Session session;
        session.key = hmac(st->secret, "hydra-session" + p.cn + p.nn);
        session.last_seq.assign(st->workers.size(), 0);
        st->sessions[s->node()] = session;
        st->log->line("coordinator " + peer(self) + " joined");
        return caf::make_message(welcome_atom::value, st->devices_payload,
                                 hmac(session.key, "welcome" + st->devices_payload));
      },
      [self, st](refused_atom, const std::string& why) {
        const auto& s = self->current_sender();
        if (s) st->pending.erase(s->node());
        st->log->line("refused by " + peer(self) + ": " + why.substr(0, 200));
      },
      [self, st](task_atom, int device, std::uint64_t seq, std::string& request,
                 const std::string& mac) {
        const auto& s = self->current_sender();
        auto it = s ? st->sessions.find(s->node()) : st->sessions.end();
        if (it == st->sessions.end()) {
          st->log->line("refused a task from " + peer(self) + ": not authenticated");
          return;
        }
        Session& session = it->second;
        if (device < 0 || device >= static_cast<int>(st->workers.size())) {
          st->log->line("refused a task from " + peer(self) + ": no device " +
                        std::to_string(device));
          return;
        }
        if (!same_mac(mac, hmac(session.key, mac_input("req", device, seq, request)))) {
          st->log->line("refused a task from " + peer(self) + ": bad MAC");
          return;
        }
        std::uint64_t& last = session.last_seq[static_cast<std::size_t>(device)];
        if (seq <= last) {
          st->log->line("refused a task from " + peer(self) + ": replayed sequence number " +
                        std::to_string(seq));
          return;
        }
        last = seq;
        if (st->crash_after_tasks > 0 && ++st->tasks >= st->crash_after_tasks) {
          st->log->line("crashing on purpose (crash_after_tasks)");
          std::raise(SIGKILL);
        }
        self->send(st->workers[static_cast<std::size_t>(device)], task_atom::value, seq,
                   std::move(request), session.key, caf::actor_cast<caf::actor>(s));
      },
      [self, st](cancel_atom, int device, std::uint64_t seq, const std::string& mac) {
        const auto& s = self->current_sender();
        auto it = s ? st->sessions.find(s->node()) : st->sessions.end();
        if (it == st->sessions.end()) {
          st->log->line("refused a cancel from " + peer(self) + ": not authenticated");
          return;
        }
        const Session& session = it->second;
        if (device < 0 || device >= static_cast<int>(st->workers.size()) ||
            !same_mac(mac, hmac(session.key, mac_input("cnl", device, seq, "")))) {
          st->log->line("refused a cancel from " + peer(self) + ": bad device or MAC");
          return;
        }
        // Only a task that was sent can be withdrawn (a replayed cancel finds nothing to skip).
        if (seq == 0 || seq > session.last_seq[static_cast<std::size_t>(device)]) return;
        st->cancelled[static_cast<std::size_t>(device)]->add(session.key, seq);
      },
  };
}

}  // namespace

void run_node(const NodeOptions& options, std::FILE* log_file) {
  check(!options.secret.empty(), "node: the shared secret must not be empty");
  check(!options.devices.empty(), "node: no devices");
  check(options.link_timeout_seconds >= 0.1, "node: the link timeout must be at least 0.1 s");
  check_tls(options.tls, "node");
  const bool tls = options.tls.enabled();
  auto log = std::make_shared<Log>(log_file);
  std::set<Device> cpus;
  Writer desc;
  desc.u32(static_cast<std::uint32_t>(options.devices.size()));
  for (const DeviceSpec& d : options.devices) {
    check(d.device.kind == DeviceKind::cpu || d.device.kind == DeviceKind::cuda,
          "node: device " + d.device.str() + " cannot run tasks (use cpu:N or cuda:N)");
    if (d.device.kind == DeviceKind::cpu) {
      check(cpus.insert(d.device).second, "node: device " + d.device.str() + " listed twice");
      if (d.memory_bytes > 0) set_memory_capacity(d.device, d.memory_bytes);
    }
    desc.str(d.device.str());
    desc.u64(d.memory_bytes > 0 ? d.memory_bytes : memory_pool(d.device).capacity());
  }
  set_blas_threads(1);

  caf::actor_system_config cfg;
  configure_link(cfg, options.link_timeout_seconds, options.tls);
  caf::actor_system sys{cfg};
  auto st = std::make_shared<NodeState>();
  st->secret = options.secret;
  st->devices_payload = desc.bytes();
  st->log = log;
  st->crash_after_tasks = options.crash_after_tasks;
  for (std::size_t i = 0; i < options.devices.size(); ++i) {
    st->cancelled.push_back(std::make_shared<Cancelled>());
    st->workers.push_back(sys.spawn<caf::detached>(device_worker, options.devices[i].device,
                                                   static_cast<int>(i), log, st->cancelled.back()));
  }
  auto node = sys.spawn(node_actor, st);
  auto port = tls ? caf::openssl::publish(node, options.port, options.host.c_str(), true)
                  : sys.middleman().publish(node, options.port, options.host.c_str(), true);
  if (!port) {
    for (auto& w : st->workers)
      caf::anon_send(w, actors::stop_atom::value);
    caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
    throw Error("node: cannot listen on " + options.host + ":" + std::to_string(options.port) +
                ": " + sys.render(port.error()));
  }
  std::printf("hydra node listening on %s:%u (%zu devices%s)\n", options.host.c_str(),
              static_cast<unsigned>(*port), options.devices.size(), tls ? ", mutual TLS" : "");
  std::fflush(stdout);
  {
    caf::scoped_actor self{sys};
    const auto until = std::chrono::steady_clock::now() +
                       (options.exit_after_seconds > 0
                            ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                  std::chrono::duration<double>(options.exit_after_seconds))
                            : std::chrono::hours(24 * 365 * 100));
    while (std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          until - std::chrono::steady_clock::now(), std::chrono::seconds(1)));
  }
  log->line("shutting down");
  caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
  for (auto& w : st->workers)
    caf::anon_send(w, actors::stop_atom::value);
}

}  // namespace hydra::cluster
