#include "actors/cluster/link_config.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "actors/cluster/protocol.hpp"
#include "actors/cluster/tls.hpp"

namespace hydra::cluster {

namespace {

void set_link_timeout(caf::actor_system_config& cfg, double timeout_seconds) {
  const auto timeout = std::chrono::duration_cast<caf::timespan>(
      std::chrono::duration<double>(std::max(0.1, timeout_seconds)));
  cfg.set("middleman.heartbeat-interval", caf::timespan{timeout / 15});
  cfg.set("middleman.connection-timeout", timeout);
}

}  // namespace

void configure_link(caf::actor_system_config& cfg, double timeout_seconds, const TlsFiles& tls) {
  cfg.load<caf::io::middleman>();
  cfg.set("middleman.app-identifiers", std::vector<std::string>{app_identifier});
  set_link_timeout(cfg, timeout_seconds);
  if (tls.enabled()) use_tls(cfg, tls);
}

}  // namespace hydra::cluster
