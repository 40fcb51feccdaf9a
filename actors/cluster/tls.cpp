#include "actors/cluster/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <caf/actor_system_config.hpp>
#include <caf/openssl/manager.hpp>
#include <fstream>
#include <memory>

#include "kernels/core/error.hpp"

namespace hydra::cluster {

namespace {

std::string ssl_errors() {
  std::string s;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    s += s.empty() ? " (" : "; ";
    s += buf;
  }
  return s.empty() ? s : s + ")";
}

// An encrypted key is refused instead of prompting on the terminal.
int no_passphrase(char*, int, int, void*) {
  return 0;
}

}  // namespace

void check_tls(const TlsFiles& f, const std::string& what) {
  if (!f.enabled()) return;
  const std::pair<const char*, const std::string*> parts[] = {
      {"certificate", &f.certificate}, {"key", &f.key}, {"CA", &f.ca}};
  for (const auto& [name, path] : parts) {
    if (path->empty())
      throw Error(what + ": TLS needs a certificate, a key and a CA file; the " + name +
                  " file is missing");
    std::ifstream in(*path);
    if (!in) throw Error(what + ": cannot read the TLS " + name + " file '" + *path + "'");
  }
  ERR_clear_error();
  using Ctx = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;
  auto make_ctx = [&what] {
    Ctx c(SSL_CTX_new(TLS_method()), SSL_CTX_free);
    if (!c) throw Error(what + ": cannot create an OpenSSL context" + ssl_errors());
    SSL_CTX_set_default_passwd_cb(c.get(), no_passphrase);
    return c;
  };
  {
    // The key by itself first (OpenSSL refuses a key that does not match a loaded certificate).
    Ctx key_only = make_ctx();
    if (SSL_CTX_use_PrivateKey_file(key_only.get(), f.key.c_str(), SSL_FILETYPE_PEM) != 1)
      throw Error(what + ": '" + f.key + "' holds no unencrypted PEM private key" + ssl_errors());
  }
  Ctx ctx = make_ctx();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), f.certificate.c_str()) != 1)
    throw Error(what + ": '" + f.certificate + "' holds no PEM certificate" + ssl_errors());
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), f.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1)
    throw Error(what + ": the key '" + f.key + "' does not belong to the certificate '" +
                f.certificate + "'" + ssl_errors());
  if (SSL_CTX_load_verify_locations(ctx.get(), f.ca.c_str(), nullptr) != 1)
    throw Error(what + ": '" + f.ca + "' holds no PEM CA certificate" + ssl_errors());
  // One CA for the cluster: the other side checks this certificate against it, so must we.
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(ctx.get(), &chain);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> v(X509_STORE_CTX_new(),
                                                                    X509_STORE_CTX_free);
  if (!v || X509_STORE_CTX_init(v.get(), SSL_CTX_get_cert_store(ctx.get()),
                                SSL_CTX_get0_certificate(ctx.get()), chain) != 1)
    throw Error(what + ": cannot check the certificate" + ssl_errors());
  if (X509_verify_cert(v.get()) != 1)
    throw Error(what + ": the certificate '" + f.certificate +
                "' does not verify against the CA '" + f.ca +
                "': " + X509_verify_cert_error_string(X509_STORE_CTX_get_error(v.get())));
}

void use_tls(caf::actor_system_config& cfg, const TlsFiles& files) {
  cfg.openssl_certificate = files.certificate;
  cfg.openssl_key = files.key;
  cfg.openssl_cafile = files.ca;
  cfg.load<caf::openssl::manager>();
}

}  // namespace hydra::cluster
