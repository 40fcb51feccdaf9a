#pragma once
// A cluster node: hosts this machine's devices for a coordinator that runs the scheduler
// (build/examples/hydra_node is the program). It publishes one node actor on HOST:PORT through
// CAF's middleman; a coordinator joins with the shared-secret handshake of
// actors/cluster/protocol.hpp, after which its remote-device proxies send shard tasks (with their
// state) that the node runs on its devices, one at a time per device in the order they came, and
// answers; a task its proxy withdrew (cancel_atom) before it started is skipped.
//
// Refused and logged (to `log`, one line each), never acted on: a peer that fails the handshake
// (wrong secret), messages from a CAF node without a session, messages with a bad MAC, a replayed
// or out-of-order sequence number, a device out of range, malformed payloads (the coordinator gets
// an error result for an authenticated request it cannot decode), and messages of any other type.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "actors/hydra.hpp"

namespace hydra::cluster {

struct NodeOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise ("0.0.0.0": all interfaces)
  std::uint16_t port = 0;          // 0: the OS picks a free port (printed)
  std::string secret;              // shared with the coordinator; must not be empty
  // Mutual TLS (actors/cluster/tls.hpp): the node's certificate and key, and the CA whose
  // signature a coordinator's certificate must carry. Set: the port speaks TLS only, and a peer
  // without such a certificate is disconnected before CAF's protocol parser reads anything.
  TlsFiles tls;
  std::vector<DeviceSpec> devices = {{Device::cpu(0), 0}};
  // A coordinator link that carried nothing for this long is closed (the coordinator's side
  // does the same with RuntimeOptions::node_link_timeout_seconds); see configure_link.
  double link_timeout_seconds = 3;
  double exit_after_seconds = 0;  // > 0: shut down after this long (tests); 0: run until killed
  // Fault injection for tests: > 0: the process kills itself (SIGKILL, as kill -9 would) when the
  // crash_after_tasks-th authenticated task arrives, before running it.
  int crash_after_tasks = 0;
};

// Publishes the node, prints "hydra node listening on HOST:PORT (N devices)" (", mutual TLS" after
// "devices" with TLS) to stdout (flushed)
// and serves until exit_after_seconds pass (forever when 0). Throws hydra::Error for bad options
// or when the port cannot be bound.
void run_node(const NodeOptions& options, std::FILE* log = stderr);

}  // namespace hydra::cluster
