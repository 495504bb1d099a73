#include "app/service.h"

#include <charconv>
#include <sstream>
#include <thread>

#include "admin/admin.h"
#include "api/access_log.h"
#include "log/log.h"
#include "notify/notifier.h"

namespace callgate {

Instant SystemNow() {
  return std::chrono::time_point_cast<Millis>(std::chrono::system_clock::now());
}

bool ParseListen(std::string_view listen, ServerOptions& server) {
  const auto colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string_view port_text = listen.substr(colon + 1);
  unsigned short port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size()) {
    return false;
  }
  server.address = host;
  server.port = port;
  return true;
}

Result<std::unique_ptr<Service>, std::string> Service::Start(ServiceConfig config, Clock clock) {
  // Each connection holds a descriptor: allow as many as the hard limit lets (the default
  // max_connections is counted from it).
  RaiseFdLimit();
  std::unique_ptr<Service> service(new Service());
  service->metrics_ = std::make_unique<Metrics>();
  Metrics& metrics = *service->metrics_;
  auto stores = Stores::Open(config.store, metrics.CommitObserver());
  if (!stores) return stores.error();
  service->stores_ = std::move(*stores);
  Stores& store = *service->stores_;
  if (config.demo) {
    std::ostringstream out, err;
    service->demo_key_ = EnsureDemoTenant({store.tenants(), clock(), out, err});
    if (!service->demo_key_) return "cannot create the demo tenant: " + err.str();
  }
  service->tenants_ = std::make_unique<TenantDirectory>(store.tenants());
  if (!service->tenants_->Start()) return "cannot read tenants from the " + store.description();
  if (NotificationOutbox* outbox = store.pairs().outbox()) {
    // Installed before the first request: every change from now on records its notifications.
    outbox->SetNotifier(MakeNotifier(*service->tenants_, clock));
    config.notify.observer = [&metrics](const DeliveryReport& r) {
      metrics.ObserveNotification(r);
    };
    service->deliverer_ = std::make_unique<Deliverer>(store.pairs(), *outbox, *service->tenants_,
                                                      clock, std::move(config.notify));
  } else {
    LogNotice(LogLevel::kWarn, "this store keeps no outbox: no notification is recorded or sent");
  }
  metrics.Instrument(config.api);
  if (config.access_log) config.api.observers.push_back(AccessLog());
  service->api_ =
      std::make_unique<Api>(ApiStores{store.pairs(), store.tenants(), *service->tenants_},
                            std::move(clock), std::move(config.api));
  Api& api = *service->api_;
  service->server_ = std::make_unique<HttpServer>(
      config.server,
      [&api](HttpRequest&& request, Respond respond) { api.Handle(std::move(request), respond); },
      [&api](boost::beast::http::status status) { return api.Reject(status); });
  auto port = service->server_->Listen();
  if (!port) return port.error();
  if (service->deliverer_) service->deliverer_->Start();
  metrics.SetSources(
      {.connections = [&server = *service->server_] { return server.connection_stats(); },
       .pair_cache =
           [sqlite = store.sqlite()] {
             return sqlite ? sqlite->cache_stats() : PairCacheStats{};
           }});
  if (config.metrics_server) {
    service->metrics_server_ = std::make_unique<HttpServer>(
        *config.metrics_server,
        [&api](HttpRequest&& request, Respond respond) {
          api.Handle(std::move(request), respond, Api::Endpoints::kMetricsOnly);
        },
        [&api](boost::beast::http::status status) { return api.Reject(status); });
    auto metrics_port = service->metrics_server_->Listen();
    if (!metrics_port) return metrics_port.error();
  }
  return service;
}

Service::~Service() {
  // The servers go first (they call into the API), the store last but the metrics (it drains
  // queued writes, and reports their commits).
  metrics_server_.reset();
  server_.reset();
  // The deliverer stops (its batch in flight settled) before the notifier's directory goes.
  deliverer_.reset();
  if (NotificationOutbox* outbox = stores_ ? stores_->pairs().outbox() : nullptr) {
    outbox->SetNotifier({});
  }
  api_.reset();
  tenants_.reset();
  stores_.reset();
  metrics_.reset();
}

void Service::Run() {
  // The metrics listener serves on a thread of its own for as long as the main one serves.
  std::thread metrics;
  if (metrics_server_) metrics = std::thread([this] { metrics_server_->Run(); });
  server_->Run();
  if (metrics_server_) {
    metrics_server_->Stop();
    metrics.join();
  }
}

void Service::Stop() { server_->Stop(); }

}  // namespace callgate
