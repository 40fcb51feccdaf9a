#pragma once
// The coordinator's side of a cluster node: the handshake (connect_node) and one proxy actor per
// remote device that speaks the device-actor protocol to the scheduler.
//
// Device protocol supported by the proxy: (pull_atom, index, slots) to the scheduler at start
// (RemoteDeviceConfig::slots, 2 by default: while the node computes one task the next one's
// request, with its state, already travels, so transfer overlaps compute) and one slot back after
// each task; (run_atom, TaskPtr) -> (done_atom, TaskPtr); (steal_atom) gives back the newest task
// that waits behind another on the node (the node is told to skip it, and a result that still
// comes for it is dropped), else nothing; (prefetch_atom) and (drop_atom) are ignored (the state
// travels with the task, and the second slot already overlaps its transfer).
//
// Faults: the proxy monitors the node actor. When the link is lost (the node process died, the
// connection closed or was reset, or nothing arrived for middleman.connection-timeout while
// heartbeats go every middleman.heartbeat-interval) or the node sends a result that fails its
// MAC or checks, the proxy exits with exit_reason::remote_link_unreachable; the scheduler then
// puts the tasks it had sent to it back in the ready queue. Home memory is only changed when a
// checked result is applied, so they run again elsewhere from the same state. A result is applied
// at most once: only for a task the proxy still has in flight under that sequence number, and a
// later proxy (after a rejoin) has a new session key, so nothing from an earlier link passes its
// MAC check.
#include <caf/all.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/cluster/link_stats.hpp"
#include "runtime/trace.hpp"

namespace hydra::cluster {

struct RemoteDeviceInfo {
  std::string name;  // on the node: "cpu:0"
  std::size_t budget = 0;
};

struct NodeLink {
  std::string address;  // "HOST:PORT"
  caf::actor node;
  std::string session;  // session key
  std::vector<RemoteDeviceInfo> devices;
};

// Splits "HOST:PORT"; throws hydra::Error naming `what` and the address when malformed.
std::pair<std::string, std::uint16_t> parse_address(const std::string& address,
                                                    const std::string& what);

// Connects to the node at `address` and runs the handshake with `secret`. Throws hydra::Error
// when the node cannot be reached, refuses the secret, fails to prove it knows the secret, or
// does not answer within `timeout`.
NodeLink connect_node(caf::actor_system& sys, const std::string& address, const std::string& secret,
                      std::chrono::milliseconds timeout);

// Counters of every remote device of a run (shared by the proxies, read at the end).
struct LinkCounters {
  std::mutex mu;
  std::vector<LinkStats> links;  // by remote index
};

struct RemoteDeviceConfig {
  int index = 0;     // the scheduler's device index
  std::string name;  // "HOST:PORT/cpu:0"
  int remote = 0;    // the device's index on the node
  int link = 0;      // index into LinkCounters::links
  int slots = 2;     // tasks sent to the node at once (1: no overlap of transfer and compute)
  NodeLink node;
};

caf::behavior remote_device_actor(caf::event_based_actor* self, RemoteDeviceConfig config,
                                  caf::actor scheduler, std::shared_ptr<Trace> trace,
                                  std::shared_ptr<LinkCounters> counters);

}  // namespace hydra::cluster
