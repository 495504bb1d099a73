// Service: the whole callgate service wired together — the store (app/stores.h: SQLite in a data
// directory, or a Redis Cluster), the tenant directory, the API and the HTTP server — and every
// serve setting's default, each in the options struct of the part it configures. `callgate serve`
// (main.cpp) and the end-to-end tests both start the service through Service::Start, so they run
// the same wiring. Start, Run and Stop may be called from different threads; Stop is thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "api/api.h"
#include "app/stores.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "notify/deliverer.h"
#include "tenants/directory.h"

namespace callgate {

struct ServiceConfig {
  StoreConfig store;     // which store, and its settings
  ServerOptions server;  // address, threads, limits, timeouts
  ApiOptions api;        // rate limit, webhook secrets, call hold
  bool demo = false;     // create the demo tenant and a fresh key
  // A second listener that serves GET /metrics alone (--metrics-listen); none if unset.
  std::optional<ServerOptions> metrics_server;
  // One line per answered request on standard error (api/access_log.h). The format of every line
  // is the process's (log/log.h, ConfigureLog), not the service's.
  bool access_log = true;
  // Notifications (issue 13): the outbox's deliverer, on stores that keep an outbox.
  DelivererOptions notify;
};

// The wall clock, read once per request.
Instant SystemNow();

// "HOST:PORT" or "[v6 host]:PORT" into `server` (address and port); false if malformed.
bool ParseListen(std::string_view listen, ServerOptions& server);

class Service {
 public:
  // Opens the store, creates the demo tenant if asked, loads tenants and binds the server.
  // Error: a readable reason.
  static Result<std::unique_ptr<Service>, std::string> Start(ServiceConfig config, Clock clock);
  ~Service();  // stops the server if it runs, then commits queued writes and closes the store

  unsigned short port() const { return server_->port(); }
  // The --metrics-listen listener's port; 0 without one.
  unsigned short metrics_port() const { return metrics_server_ ? metrics_server_->port() : 0; }
  // The demo tenant's fresh key, when config.demo.
  const std::optional<std::string>& demo_key() const { return demo_key_; }
  Stores& stores() { return *stores_; }
  // With TLS: the certificate served, and its reload from the same files (SIGHUP).
  TlsCertificate tls_certificate() const { return server_->tls_certificate(); }
  Result<TlsCertificate, std::string> ReloadTls() { return server_->ReloadTls(); }

  // Serves until Stop(); in-flight requests finish first.
  void Run();
  void Stop();

 private:
  Service() = default;

  std::unique_ptr<Metrics> metrics_;  // told of commits by the store's writer: outlives the store
  std::unique_ptr<Stores> stores_;
  std::unique_ptr<TenantDirectory> tenants_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<Deliverer> deliverer_;  // null on a store without an outbox
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<HttpServer> metrics_server_;  // --metrics-listen; runs beside server_
  std::optional<std::string> demo_key_;
};

}  // namespace callgate
