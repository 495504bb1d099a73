// Test-only: a notification receiver for the e2e suites — an HTTP server on loopback that answers
// every POST 200 and records it (body, signature, content type, arrival time) — and the checks a
// real receiver makes of each notification.
#pragma once

#include <gtest/gtest.h>
#include <simdjson.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "app/service.h"
#include "core/time.h"
#include "notify/signature.h"

namespace callgate::testing {

// One notification as the receiver got it.
struct Received {
  std::string body;
  std::string signature;
  std::string content_type;
  Instant at;  // wall clock on arrival
  std::string event_id, type, user, occurred_at;
};

// A loopback HTTP server that answers every POST 200 and records it. Down() closes its listener
// (connections are refused); Up() listens again on the same port.
class Receiver {
 public:
  Receiver() { Up(); }
  ~Receiver() { Down(); }

  unsigned short port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hooks/cg"; }

  void Up() {
    acceptor_ = std::make_unique<boost::asio::ip::tcp::acceptor>(io_);
    const boost::asio::ip::tcp::endpoint at(boost::asio::ip::make_address("127.0.0.1"), port_);
    acceptor_->open(at.protocol());
    acceptor_->set_option(boost::asio::socket_base::reuse_address(true));
    acceptor_->bind(at);
    acceptor_->listen();
    port_ = acceptor_->local_endpoint().port();
    stopping_ = false;
    thread_ = std::thread([this] { Serve(); });
  }

  void Down() {
    if (!thread_.joinable()) return;
    stopping_ = true;
    {  // wake the blocking accept
      boost::asio::ip::tcp::socket poke(io_);
      boost::beast::error_code ec;
      poke.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    }
    thread_.join();
    acceptor_->close();
  }

  // Waits until `done(received)` holds or `timeout` passes; returns what was received.
  std::vector<Received> WaitFor(const std::function<bool(const std::vector<Received>&)>& done,
                                std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return done(received_); });
    return received_;
  }

 private:
  void Serve() {
    for (;;) {
      boost::asio::ip::tcp::socket socket(io_);
      boost::beast::error_code ec;
      acceptor_->accept(socket, ec);
      if (stopping_) return;
      if (ec) continue;
      boost::beast::flat_buffer buffer;
      boost::beast::http::request<boost::beast::http::string_body> request;
      boost::beast::http::read(socket, buffer, request, ec);
      if (ec) continue;
      Received r{request.body(), std::string(request[kSignatureHeader]),
                 std::string(request[boost::beast::http::field::content_type]), SystemNow()};
      boost::beast::http::response<boost::beast::http::string_body> response(
          boost::beast::http::status::ok, 11);
      response.body() = "ok";
      response.prepare_payload();
      boost::beast::http::write(socket, response, ec);
      {
        std::lock_guard lock(mu_);
        received_.push_back(std::move(r));
      }
      cv_.notify_all();
    }
  }

  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  unsigned short port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Received> received_;
};

// Checks one notification as a receiver must (signature under `secret`, JSON, of `subaccount`) and
// reads its common fields into `r`.
inline void CheckAndRead(Received& r, const std::string& secret, std::string_view subaccount) {
  EXPECT_EQ(r.content_type, "application/json");
  const std::int64_t now_s = ToUnixMillis(SystemNow()) / 1000;
  EXPECT_TRUE(VerifyNotificationSignature(r.signature, r.body, secret, now_s, 300))
      << r.signature << " " << r.body;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(r.body).get(doc), simdjson::SUCCESS) << r.body;
  std::string_view s;
  ASSERT_EQ(doc["eventId"].get(s), simdjson::SUCCESS) << r.body;
  r.event_id = s;
  EXPECT_EQ(r.event_id.size(), 32u);
  ASSERT_EQ(doc["type"].get(s), simdjson::SUCCESS);
  r.type = s;
  ASSERT_EQ(doc["occurredAt"].get(s), simdjson::SUCCESS);
  r.occurred_at = s;
  EXPECT_TRUE(ParseTimestamp(r.occurred_at)) << r.body;
  ASSERT_EQ(doc["subAccountId"].get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, subaccount);
  ASSERT_EQ(doc["channelId"].get(s), simdjson::SUCCESS);
  ASSERT_EQ(doc["destination"].get(s), simdjson::SUCCESS) << r.body;
  r.user = s;
  simdjson::dom::object status;
  ASSERT_EQ(doc["status"].get(status), simdjson::SUCCESS) << r.body;
  ASSERT_EQ(status["status"].get(s), simdjson::SUCCESS) << r.body;
}

}  // namespace callgate::testing
