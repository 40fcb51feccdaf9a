#pragma once
// The PEM files of one side of a mutually authenticated TLS link between a coordinator and a
// cluster node (RuntimeOptions::node_tls, NodeOptions::tls; actors/cluster/tls.hpp sets them up).
#include <string>

namespace hydra {

struct TlsFiles {
  std::string certificate;  // this side's certificate (a chain may follow it in the same file)
  std::string key;          // its private key, unencrypted
  std::string ca;           // the CA certificate that must have signed the other side's
  // All three or none; none: plain TCP (the shared-secret handshake still authenticates).
  bool enabled() const { return !certificate.empty() || !key.empty() || !ca.empty(); }
};

}  // namespace hydra
