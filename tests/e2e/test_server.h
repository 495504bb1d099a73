// TestServer: the real service (Service::Start: SQLite in a temp dir, HTTP on port 0) on a
// background thread, with a settable clock, its access log on and every line of the log in json,
// appended to the file CALLGATE_E2E_LOG names (standard error without it) for the log check
// (tests/logs/log_check.mjs); and HttpClient, a keep-alive Beast client that records every
// response, headers included, for the contract check (CALLGATE_CONTRACT_LOG, one JSON per line).
#pragma once

#include <fcntl.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "api/json.h"
#include "app/service.h"
#include "ingest/signature.h"
#include "log/log.h"
#include "tenants/api_key.h"

namespace callgate::testing {

// The log of the e2e run, as `callgate serve --log-format json` writes it, to CALLGATE_E2E_LOG.
// The log is the process's: configured once, by the first TestServer.
inline void ConfigureE2eLog() {
  static const bool configured = [] {
    const char* path = std::getenv("CALLGATE_E2E_LOG");
    const int fd = path ? ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    ConfigureLog(LogFormat::kJson, fd >= 0 ? fd : STDERR_FILENO);
    return true;
  }();
  (void)configured;
}

class TestServer {
 public:
  // `metrics_server`: a --metrics-listen listener (on port 0, whatever it says).
  explicit TestServer(ApiOptions api_options = {}, ServerOptions server_options = {},
                      std::size_t cache_bytes = SqliteStore::Options{}.cache_bytes,
                      std::optional<ServerOptions> metrics_server = std::nullopt) {
    dir_ = std::filesystem::temp_directory_path() /
           ("callgate-e2e-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    // The service as `callgate serve` starts it, on port 0, with a settable clock.
    server_options.port = 0;
    server_options.threads = 2;
    if (metrics_server) metrics_server->port = 0;
    ConfigureE2eLog();
    auto service = Service::Start({.store = {.data_dir = dir_.string(), .cache_bytes = cache_bytes},
                                   .server = std::move(server_options),
                                   .api = std::move(api_options),
                                   .metrics_server = std::move(metrics_server),
                                   .access_log = true},
                                  [this] { return Now(); });
    if (!service) throw std::runtime_error(service.error());
    service_ = std::move(*service);
    thread_ = std::thread([this] { service_->Run(); });
  }
  ~TestServer() {
    service_->Stop();
    thread_.join();
    service_.reset();
    std::filesystem::remove_all(dir_);
  }

  Instant Now() const { return FromUnixMillis(now_ms_.load()); }
  void SetNow(Instant t) { now_ms_ = ToUnixMillis(t); }
  unsigned short port() const { return service_->port(); }
  unsigned short metrics_port() const { return service_->metrics_port(); }
  SqliteStore& store() { return *service_->stores().sqlite(); }
  std::filesystem::path db_path() const { return dir_ / "callgate.db"; }

  // Creates account, subaccount and channel (ids as given) and returns a fresh key.
  std::string AddTenant(const std::string& account, const std::string& sub,
                        const std::string& channel, const std::string& phone_number_id,
                        LimitsProfile limits = LimitsProfile::kProduction) {
    (void)store().CreateAccount({account, Now()});
    (void)store().CreateSubaccount({sub, account, Now()});
    (void)store().CreateChannel({channel, sub, phone_number_id, false, limits, Now()});
    return AddKey(account);
  }
  // Adds a channel to an existing subaccount.
  void AddChannel(const std::string& sub, const std::string& channel,
                  const std::string& phone_number_id, bool callback_permission_enabled,
                  LimitsProfile limits = LimitsProfile::kProduction) {
    auto status = store().CreateChannel(
        {channel, sub, phone_number_id, callback_permission_enabled, limits, Now()});
    if (!status.ok()) throw std::runtime_error("channel " + channel);
  }
  std::string AddKey(const std::string& account) {
    auto key = GenerateApiKey(account, Now());
    (void)store().AddApiKey(key->record);
    return key->plaintext;
  }

  // Applies events to a pair through the store, as a writer would.
  void Seed(const std::string& channel, const std::string& destination,
            const std::vector<Event>& events, LimitsProfile limits = LimitsProfile::kProduction) {
    auto status = UpdatePairSync(store(), {channel, UserId::Phone(destination)},
                                 [&](PairState& state, std::vector<HistoryEntry>&) {
                                   for (const Event& e : events) (void)Apply(state, e, limits);
                                   return true;
                                 });
    if (!status.ok()) throw std::runtime_error("seed failed");
  }

 private:
  static inline std::atomic<int> counter_{0};
  std::filesystem::path dir_;
  std::atomic<std::int64_t> now_ms_{ToUnixMillis(*ParseTimestamp("2026-02-01T08:12:30.000Z"))};
  std::unique_ptr<Service> service_;
  std::thread thread_;
};

struct Reply {
  int status = 0;
  std::string content_type;
  std::string body;
  std::map<std::string, std::string> headers;
};

class HttpClient {
 public:
  explicit HttpClient(unsigned short port) : stream_(io_) {
    stream_.connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  }

  Reply Send(boost::beast::http::verb method, const std::string& target,
             const std::map<std::string, std::string>& headers = {}, const std::string& body = "") {
    namespace http = boost::beast::http;
    http::request<http::string_body> req(method, target, 11);
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [name, value] : headers) req.set(name, value);
    if (!body.empty() || method == http::verb::post) {
      req.body() = body;
      req.prepare_payload();
    }
    http::write(stream_, req);
    return Read(method, target);
  }
  Reply Get(const std::string& target, const std::map<std::string, std::string>& headers = {}) {
    return Send(boost::beast::http::verb::get, target, headers);
  }
  // POST /webhooks/whatsapp with `body` signed by `secret`, as Meta delivers it.
  Reply PostWebhook(const std::string& body, const std::string& secret) {
    return Send(boost::beast::http::verb::post, "/webhooks/whatsapp",
                {{"Content-Type", "application/json"},
                 {"X-Hub-Signature-256", SignMetaPayload(body, secret)}},
                body);
  }
  // Writes raw bytes (e.g. several pipelined requests) and reads one response.
  void WriteRaw(const std::string& bytes) {
    boost::asio::write(stream_, boost::asio::buffer(bytes));
  }
  Reply Read(boost::beast::http::verb method = boost::beast::http::verb::get,
             const std::string& target = "") {
    namespace http = boost::beast::http;
    http::response<http::string_body> res;
    http::read(stream_, buffer_, res);
    Reply reply{static_cast<int>(res.result_int()),
                std::string(res[http::field::content_type]),
                res.body(),
                {}};
    for (const auto& field : res) {
      reply.headers[std::string(field.name_string())] = std::string(field.value());
    }
    Record(std::string(http::to_string(method)), target, reply);
    return reply;
  }

  static void Record(const std::string& method, const std::string& target, const Reply& reply) {
    const char* path = std::getenv("CALLGATE_CONTRACT_LOG");
    if (!path || target.empty()) return;
    std::string line;
    JsonWriter json(line);
    json.BeginObject()
        .Key("method")
        .String(method)
        .Key("path")
        .String(target)
        .Key("status")
        .Int(reply.status)
        .Key("contentType")
        .String(reply.content_type)
        .Key("body")
        .String(reply.body)
        .Key("headers")
        .BeginObject();
    for (const auto& [name, value] : reply.headers) json.Key(name).String(value);
    json.EndObject().EndObject();
    static std::mutex mu;
    std::lock_guard lock(mu);
    std::ofstream(path, std::ios::app) << line << "\n";
  }

 private:
  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
};

// Fires `total` identical POSTs at once: `threads_per_port` threads per port, each on its own
// connection with its share of the requests pipelined, all released together. Returns every
// reply (in no particular order).
inline std::vector<Reply> FireConcurrently(const std::vector<unsigned short>& ports,
                                           int threads_per_port, int total,
                                           const std::string& target,
                                           const std::map<std::string, std::string>& headers,
                                           const std::string& body) {
  std::string request = "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n\r\n" + body;
  const int threads = static_cast<int>(ports.size()) * threads_per_port;
  std::vector<std::vector<Reply>> replies(threads);
  std::latch connected(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    const int share = total / threads + (t < total % threads ? 1 : 0);
    workers.emplace_back([&, t, share] {
      // A failure is a reply with status -1, so the caller's counts show it.
      std::unique_ptr<HttpClient> client;
      std::string error;
      try {
        client = std::make_unique<HttpClient>(ports[t % ports.size()]);
      } catch (const std::exception& e) {
        error = e.what();
      }
      connected.arrive_and_wait();
      try {
        if (!client) throw std::runtime_error(error);
        std::string bytes;
        for (int i = 0; i < share; ++i) bytes += request;
        client->WriteRaw(bytes);
        for (int i = 0; i < share; ++i) {
          replies[t].push_back(client->Read(boost::beast::http::verb::post, target));
        }
      } catch (const std::exception& e) {
        replies[t].push_back({-1, "", e.what(), {}});
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  std::vector<Reply> all;
  for (auto& some : replies) all.insert(all.end(), some.begin(), some.end());
  return all;
}

}  // namespace callgate::testing
