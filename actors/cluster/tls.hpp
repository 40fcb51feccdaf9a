#pragma once
// Mutual TLS for node links through CAF 0.17's OpenSSL module (libcaf_openssl). What that module
// does (0.17.6, libcaf_openssl/src/openssl/session.cpp): once any of openssl.certificate, key,
// passphrase, cafile or capath is set, every connection it accepts or makes gets a fresh OpenSSL
// context (TLS_method, cipher list "HIGH:!aNULL:!MD5") with that certificate and key, trusts only
// the configured CA, and sets SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT: both sides must
// present a certificate that chains to the CA, or the handshake fails and the connection is
// closed before BASP, CAF's protocol parser, sees a byte. Host names are not checked: any
// certificate the CA signed is accepted, so use a CA for the cluster alone. A TLS failure is not
// reported to the application (CAF logs it at INFO level only), so a node cannot log it; the
// coordinator's connect fails.
#include <caf/fwd.hpp>

#include <string>

#include "actors/cluster/tls_files.hpp"

namespace hydra::cluster {

// Throws hydra::Error naming `what` unless `files` is empty or holds all three files, readable,
// the key belongs to the certificate, and the certificate verifies against the CA (CAF's module
// would otherwise throw from its I/O thread, or every handshake would fail without a word).
void check_tls(const TlsFiles& files, const std::string& what);

// Loads CAF's OpenSSL module into `cfg` with `files` (after the middleman: cfg.load<middleman>()
// first). Connect and publish through sys.openssl_manager().actor_handle() (caf::openssl::publish)
// then; the plain middleman's still speak plain TCP.
void use_tls(caf::actor_system_config& cfg, const TlsFiles& files);

}  // namespace hydra::cluster
