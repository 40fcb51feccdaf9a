#pragma once
// The messages between a coordinator and a cluster node (CAF remote messages whose only element
// types are atoms, integers and byte strings, so nothing but CAF's built-in types is ever
// deserialised from the network).
//
// Handshake (the secret never travels; cn, nn: 32 random bytes from each side):
//   coordinator -> node   (hello_atom, cn)
//   node -> coordinator   (challenge_atom, nn, HMAC(secret, "hydra-node" cn nn))
//   coordinator -> node   (auth_atom, HMAC(secret, "hydra-coordinator" nn cn))
//   node -> coordinator   (welcome_atom, devices, HMAC(session, "welcome" devices))
//                         or (refused_atom, reason, "") and the node logs the refusal
// (every handshake reply is (atom, string, string)).
// session = HMAC(secret, "hydra-session" cn nn). The node acts on nothing from a CAF node (the
// coordinator process) before its proof checked out, and every later message carries a MAC
// under the session key over its direction, device, sequence number and payload; sequence numbers
// strictly increase per device, so a message cannot be forged, altered or replayed:
//   proxy -> node         (task_atom, int device, uint64 seq, request, mac)
//   node -> proxy         (result_atom, uint64 seq, result, mac)
//   proxy -> node         (cancel_atom, int device, uint64 seq, mac): the proxy gave task `seq`
//                         back to the scheduler (another device runs it); the node skips it if it
//                         has not started it. Its result, if any comes, is dropped by the proxy.
#include <caf/all.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace hydra::cluster {

using hello_atom = caf::atom_constant<caf::atom("nhello")>;
using challenge_atom = caf::atom_constant<caf::atom("nchalnge")>;
using auth_atom = caf::atom_constant<caf::atom("nauth")>;
using welcome_atom = caf::atom_constant<caf::atom("nwelcome")>;
using refused_atom = caf::atom_constant<caf::atom("nrefused")>;
using task_atom = caf::atom_constant<caf::atom("ntask")>;
using result_atom = caf::atom_constant<caf::atom("nresult")>;
using cancel_atom = caf::atom_constant<caf::atom("ncancel")>;

inline constexpr std::size_t nonce_bytes = 32;
inline constexpr const char* app_identifier = "hydra-cluster-1";

inline std::string mac_input(const char* direction, int device, std::uint64_t seq,
                             const std::string& payload) {
  std::string s(direction);
  s += ':' + std::to_string(device) + ':' + std::to_string(seq) + ':';
  s += payload;
  return s;
}

}  // namespace hydra::cluster
