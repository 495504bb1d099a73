// HttpServer: HTTP/1.1 over Boost.Beast/Asio. Keep-alive and pipelining (requests on one
// connection are answered in order), bounded header and body sizes, idle timeouts, graceful
// stop. It knows nothing of the API: every request goes to one Handler, which answers through
// `Respond` — at once or later from any thread (e.g. after a durable write).
//
// Timeouts are enforced to the second. Every part of a request is bounded, so that what one
// connection can make the server hold does not depend on what it sends: the request line, header
// and trailer fields together (header_limit, 431), a chunk-size line with its extensions
// (chunk_line_limit, 400), the body (body_limit, 413). A body's framing must be unambiguous (RFC
// 9112 §6): a Transfer-Encoding other than exactly `chunked`, one with Content-Length, or a
// repeated or non-numeric Content-Length gets 400 and the connection closes, so that no byte of
// such a body is ever read as a request. Trailer fields are dropped, never merged into the
// header fields (RFC 9110 §6.5.1). Connections beyond max_connections are closed as soon as they
// are accepted; when accepting fails (no descriptor left) it is retried after a delay.
//
// HTTPS when ServerOptions names a certificate and key (settings in tls.h): every connection
// is then a TLS one, its handshake bounded by handshake_timeout, and all of the above holds
// inside it. ReloadTls() swaps the certificate for new connections (SIGHUP in main.cpp).
//
// Threads: one io_context per thread, each connection pinned to one of them, so a connection's
// handlers never run concurrently and need no strand. Run() is called once; Stop() from any
// thread.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "http/tls.h"

namespace callgate {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;
// Called exactly once per request, from any thread.
using Respond = std::function<void(HttpResponse&&)>;
using Handler = std::function<void(HttpRequest&& request, Respond respond)>;
// Answers a request the transport refuses before the handler sees it (too large, malformed).
using Rejection = std::function<HttpResponse(boost::beast::http::status status)>;

// The open-file limit this process can have: RLIMIT_NOFILE's hard limit (fs.nr_open when that
// is unlimited).
std::size_t FdLimit();
// Raises the soft RLIMIT_NOFILE to FdLimit(); returns the soft limit now in force.
std::size_t RaiseFdLimit();
// FdLimit() less a reserve for what else holds descriptors (the store's files, stdio, the
// server's own): 256, or a quarter of a limit below 1024.
std::size_t DefaultMaxConnections();

struct ServerOptions {
  std::string address = "127.0.0.1";
  unsigned short port = 8080;  // 0: any free port (see HttpServer::port())
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::size_t header_limit = 8 * 1024;      // request line, header and trailer fields together
  std::size_t chunk_line_limit = 4 * 1024;  // a chunk-size line with its extensions
  std::size_t body_limit = 1024 * 1024;
  std::size_t max_connections = DefaultMaxConnections();  // open at once; more are closed at once
  std::chrono::seconds idle_timeout{30};     // no request started on an open connection
  std::chrono::seconds request_timeout{10};  // a started request must arrive within this
  std::chrono::seconds drain_timeout{5};     // on stop: in-flight requests get this long
  // HTTPS: the certificate chain and its private key, PEM files (see tls.h). Both empty: HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::chrono::seconds handshake_timeout{10};  // a TLS handshake must finish within this
};

// A server's connections since it started, read by the metrics when scraped.
struct ConnectionStats {
  std::size_t open = 0;
  std::uint64_t accepted = 0;  // taken into service
  std::uint64_t rejected = 0;  // closed as soon as accepted: max_connections were open
};

class HttpServer {
 public:
  // Responses given on this thread, from outside the server's threads, while a ResponseBatch
  // lives are handed to their connections' threads when it ends, with one wake-up per server
  // thread rather than one per response. For a thread that answers many requests at once (the
  // store's writer completing a group commit): per-response wake-ups made the writer and a
  // server thread sharing a core preempt each other at every response.
  class ResponseBatch {
   public:
    ResponseBatch();
    ~ResponseBatch();
    ResponseBatch(const ResponseBatch&) = delete;
    ResponseBatch& operator=(const ResponseBatch&) = delete;
    // Runs `body` inside a batch (fits SqliteStore::Options::completion_scope).
    static void Run(const std::function<void()>& body) {
      ResponseBatch batch;
      body();
    }

   private:
    friend class HttpServer;
    static thread_local ResponseBatch* current_;
    ResponseBatch* outer_;
    // Per server thread, the writes to run there, in the order the responses were given.
    std::vector<std::pair<boost::asio::any_io_executor, std::vector<std::function<void()>>>>
        writes_;
  };

  HttpServer(ServerOptions options, Handler handler, Rejection rejection);
  ~HttpServer();

  // Loads the TLS certificate and key if configured, binds and listens. Error: a readable
  // reason.
  Result<unsigned short, std::string> Listen();
  unsigned short port() const { return port_; }
  // Whether connections are HTTPS.
  bool tls() const { return !options_.tls_cert_file.empty(); }
  // The certificate served to new connections (empty without TLS).
  TlsCertificate tls_certificate() const;
  // Reads the certificate and key again, from the same files, into a new TLS context for the
  // connections accepted from now on; connections already open keep theirs. On failure nothing
  // changes. Returns the certificate now served (subject, expiry); error: a readable reason,
  // also when the server has no TLS. Thread-safe.
  Result<TlsCertificate, std::string> ReloadTls();
  ConnectionStats connection_stats() const {
    return {connections_.load(std::memory_order_relaxed), accepted_.load(std::memory_order_relaxed),
            rejected_.load(std::memory_order_relaxed)};
  }
  // Serves on options.threads threads until Stop(); returns when all have finished.
  void Run();
  // Stops accepting, lets in-flight requests finish (up to drain_timeout), then returns Run().
  void Stop();

 private:
  class Connection;
  template <class Stream>
  class Session;
  struct Sweeper;
  void Accept();
  // Pins an accepted connection to contexts_[index] and starts it there.
  template <class Stream>
  void Start(std::size_t index, std::shared_ptr<Session<Stream>> session);
  void OnAcceptError(const boost::system::error_code& ec);
  void DrainThenHalt(std::chrono::steady_clock::time_point deadline);

  ServerOptions options_;
  Handler handler_;
  Rejection rejection_;
  // Sessions open (each holds one socket); declared before the contexts, whose destruction can
  // end the last sessions.
  std::atomic<std::size_t> connections_{0};
  std::atomic<std::uint64_t> accepted_{0}, rejected_{0};            // on the acceptor's thread
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;  // one per thread
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::vector<std::unique_ptr<Sweeper>> sweepers_;  // one per context: enforces timeouts
  std::size_t next_context_ = 0;                    // round robin for accepted connections
  boost::asio::ip::tcp::acceptor acceptor_;
  // Accepting is retried after this delay when it failed (doubling, up to 1 s); zero after a
  // success. Used on the acceptor's thread only.
  boost::asio::steady_timer accept_timer_;
  std::chrono::milliseconds accept_delay_{0};
  unsigned short port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> in_flight_{0};
  // The TLS context new connections get (null for plain HTTP) and its certificate's
  // description; replaced by ReloadTls. Each connection holds the context it started with.
  mutable std::mutex tls_mutex_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  TlsCertificate tls_certificate_;
};

}  // namespace callgate
