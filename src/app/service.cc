#include "app/service.h"

#include <charconv>
#include <filesystem>
#include <sstream>

#include "admin/admin.h"
#include "api/access_log.h"
#include "log/log.h"

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

Result<std::unique_ptr<SqliteStore>, std::string> OpenStore(const std::string& data_dir,
                                                            std::size_t cache_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return "cannot create data directory " + data_dir + ": " + ec.message();
  // A commit's responses reach the server threads together (HttpServer::ResponseBatch). A store
  // opened read-only says on standard error when it can write again.
  return SqliteStore::Open(
      {.path = data_dir + "/callgate.db",
       .cache_bytes = cache_bytes,
       .completion_scope = HttpServer::ResponseBatch::Run,
       .notice = [](const std::string& line) { LogNotice(LogLevel::kInfo, line); }});
}

Result<std::unique_ptr<Service>, std::string> Service::Start(ServiceConfig config, Clock clock) {
  // Each connection holds a descriptor: allow as many as the hard limit lets (the default
  // max_connections is counted from it).
  RaiseFdLimit();
  std::unique_ptr<Service> service(new Service());
  auto store = OpenStore(config.data_dir, config.cache_bytes);
  if (!store) return store.error();
  service->store_ = std::move(*store);
  if (config.demo) {
    std::ostringstream out, err;
    service->demo_key_ = EnsureDemoTenant({*service->store_, clock(), out, err});
    if (!service->demo_key_) return "cannot create the demo tenant: " + err.str();
  }
  service->tenants_ = std::make_unique<TenantDirectory>(*service->store_);
  if (!service->tenants_->Start()) return "cannot read tenants from " + config.data_dir;
  if (config.access_log) config.api.observers.push_back(AccessLog());
  service->api_ =
      std::make_unique<Api>(ApiStores{*service->store_, *service->store_, *service->tenants_},
                            std::move(clock), std::move(config.api));
  Api& api = *service->api_;
  service->server_ = std::make_unique<HttpServer>(
      config.server,
      [&api](HttpRequest&& request, Respond respond) { api.Handle(std::move(request), respond); },
      [&api](boost::beast::http::status status) { return api.Reject(status); });
  auto port = service->server_->Listen();
  if (!port) return port.error();
  return service;
}

Service::~Service() {
  // The server goes first (it calls into the API), the store last (it drains queued writes).
  server_.reset();
  api_.reset();
  tenants_.reset();
  store_.reset();
}

void Service::Run() { server_->Run(); }

void Service::Stop() { server_->Stop(); }

}  // namespace callgate
