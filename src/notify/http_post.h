// One notification POST over HTTP or HTTPS (Boost.Beast), bounded everywhere: one connection per
// POST, a deadline covering resolve, connect, TLS handshake, write and read, response headers of
// at most 8 KiB and a body of at most 64 KiB (read and dropped). HTTPS verifies the receiver's
// certificate against the system's trust store and its host name (SNI set). Thread-compatible:
// a post runs on the io_context it is given.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/time.h"

namespace callgate {

struct NotifyUrl {
  bool tls = false;
  std::string host;  // without brackets for an IPv6 literal
  std::string port;
  std::string target;  // path and query, "/" at least
  std::string host_header;
};

// nullopt unless http:// or https://, a host, an optional port, no credentials.
std::optional<NotifyUrl> ParseNotifyUrl(std::string_view url);

struct PostResult {
  int status = 0;     // the HTTP status; 0 if none was received
  std::string error;  // why there is none (a fixed phrase, never the URL)
  std::chrono::nanoseconds latency{};
};

// A TLS client context that verifies peers against the default trust store.
boost::asio::ssl::context MakeClientTlsContext();

// Starts one POST of `body` (application/json) with the signature header; `done` runs once, on
// `io`'s thread, when it answered, failed or `timeout` passed.
void PostNotification(boost::asio::io_context& io, boost::asio::ssl::context& tls,
                      const NotifyUrl& url, std::string body, std::string signature, Millis timeout,
                      std::function<void(PostResult)> done);

}  // namespace callgate
