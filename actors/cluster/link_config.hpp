#pragma once
// The actor-system settings of a node link, the same on both sides (the node program and a
// coordinator's hydra::run): CAF's middleman with Hydra's application identifier (a peer of
// another application is refused by CAF's own handshake), the link's liveness timeout, and
// mutual TLS when its files are given.
#include <caf/fwd.hpp>

#include "actors/cluster/tls_files.hpp"

namespace hydra::cluster {

// Loads the middleman into `cfg` with Hydra's application identifier and the link timeout: a
// connection that carried nothing (not even a heartbeat) for `timeout_seconds` is closed and its
// remote actors are reported down (exit_reason::remote_link_unreachable); heartbeats go every
// timeout / 15, so a live link, busy or idle, is never closed. With `tls` enabled, CAF's OpenSSL
// module too (use_tls).
void configure_link(caf::actor_system_config& cfg, double timeout_seconds, const TlsFiles& tls);

}  // namespace hydra::cluster
