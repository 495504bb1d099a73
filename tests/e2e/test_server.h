// TestServer: the real service (SqliteStore in a temp dir, Api, HttpServer on port 0) on a
// background thread, with a settable clock; and HttpClient, a keep-alive Beast client that
// records every response for the contract check (CALLGATE_CONTRACT_LOG, one JSON per line).
#pragma once

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "api/api.h"
#include "api/json.h"
#include "store/sqlite_store.h"
#include "tenants/api_key.h"
#include "tenants/directory.h"

namespace callgate::testing {

class TestServer {
 public:
  explicit TestServer(ApiOptions api_options = {}, ServerOptions server_options = {}) {
    dir_ = std::filesystem::temp_directory_path() /
           ("callgate-e2e-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    auto store = SqliteStore::Open({.path = (dir_ / "callgate.db").string()});
    if (!store) throw std::runtime_error(store.error());
    store_ = std::move(*store);
    tenants_ = std::make_unique<TenantDirectory>(*store_, Millis(0));
    if (!tenants_->Start()) throw std::runtime_error("tenants");
    api_ = std::make_unique<Api>(
        *store_, *tenants_, [this] { return Now(); }, api_options);
    server_options.port = 0;
    server_options.threads = 2;
    server_ = std::make_unique<HttpServer>(
        server_options,
        [this](HttpRequest&& req, Respond respond) { api_->Handle(std::move(req), respond); },
        [this](boost::beast::http::status s) { return api_->Reject(s); });
    auto port = server_->Listen();
    if (!port) throw std::runtime_error(port.error());
    port_ = *port;
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~TestServer() {
    server_->Stop();
    thread_.join();
    server_.reset();
    api_.reset();
    tenants_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  Instant Now() const { return FromUnixMillis(now_ms_.load()); }
  void SetNow(Instant t) { now_ms_ = ToUnixMillis(t); }
  unsigned short port() const { return port_; }
  SqliteStore& store() { return *store_; }
  std::filesystem::path db_path() const { return dir_ / "callgate.db"; }

  // Creates account, subaccount and channel (ids as given) and returns a fresh key.
  std::string AddTenant(const std::string& account, const std::string& sub,
                        const std::string& channel, const std::string& phone_number_id,
                        LimitsProfile limits = LimitsProfile::kProduction) {
    (void)store_->CreateAccount({account, Now()});
    (void)store_->CreateSubaccount({sub, account, Now()});
    (void)store_->CreateChannel({channel, sub, phone_number_id, false, limits, Now()});
    return AddKey(account);
  }
  std::string AddKey(const std::string& account) {
    auto key = GenerateApiKey(account, Now());
    (void)store_->AddApiKey(key->record);
    return key->plaintext;
  }

  // Applies events to a pair through the store, as a writer would.
  void Seed(const std::string& channel, const std::string& destination,
            const std::vector<Event>& events, LimitsProfile limits = LimitsProfile::kProduction) {
    auto status = UpdatePairSync(*store_, {channel, destination},
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
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<TenantDirectory> tenants_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<HttpServer> server_;
  unsigned short port_ = 0;
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
        .EndObject();
    static std::mutex mu;
    std::lock_guard lock(mu);
    std::ofstream(path, std::ios::app) << line << "\n";
  }

 private:
  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace callgate::testing
