#pragma once
// Accounting of one remote device's link (coordinator <-> node), for RunReport::links.
#include <cstdint>
#include <string>

namespace hydra {

struct LinkStats {
  std::string device;                  // the device's name in the run ("127.0.0.1:7000/cpu:0")
  std::string node;                    // the node's address
  std::uint64_t tasks = 0;             // results applied
  std::uint64_t requeued = 0;          // tasks handed back to the scheduler when the link was lost
  std::uint64_t joins = 0;             // successful handshakes (1 + rejoins)
  std::uint64_t tasks_since_join = 0;  // results applied since the last handshake
  // Tasks sent to the node and then given back to the scheduler for an idle device (the node is
  // told to skip them; a result that still comes is dropped), and results dropped that way.
  std::uint64_t given_back = 0, dropped_results = 0;
  std::uint64_t bytes_sent = 0, bytes_received = 0;  // request / result payloads
  // Coordinator-side seconds: encoding requests, round trips minus the node's own work (network
  // and queueing), the node's load + compute + store, and checking + applying results.
  double encode_seconds = 0, network_seconds = 0, node_seconds = 0, apply_seconds = 0;
};

}  // namespace hydra
