#include "http/server.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <iostream>
#include <optional>
#include <thread>
#include <vector>

namespace callgate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class HttpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer& server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {}

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options_.header_limit));
    parser_->body_limit(server_.options_.body_limit);
    // Idle connections wait for the first byte of a request, not forever.
    stream_.expires_after(buffer_.size() ? server_.options_.request_timeout
                                         : server_.options_.idle_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return Close();
    }
    if (ec) {
      // Oversized or malformed: answer once in the envelope, then close (the stream's framing
      // can no longer be trusted).
      const auto status = ec == http::error::body_limit ? http::status::payload_too_large
                          : ec == http::error::header_limit
                              ? http::status::request_header_fields_too_large
                              : http::status::bad_request;
      HttpResponse res = server_.rejection_(status);
      res.keep_alive(false);
      return Write(std::move(res));
    }
    ++server_.in_flight_;
    HttpRequest req = parser_->release();
    keep_alive_ = req.keep_alive();
    const unsigned version = req.version();
    // A response given while the handler is still on this connection's thread is written right
    // after it returns; one given later, from another thread (a durable write's completion),
    // is posted to this connection's thread.
    auto respond = [self = shared_from_this(), version](HttpResponse&& res) {
      res.version(version);
      if (self->handler_thread_.load() == std::this_thread::get_id()) {
        self->pending_.emplace(std::move(res));
        return;
      }
      asio::post(self->stream_.get_executor(), [self, res = std::move(res)]() mutable {
        --self->server_.in_flight_;
        self->Write(std::move(res));
      });
    };
    handler_thread_ = std::this_thread::get_id();
    try {
      server_.handler_(std::move(req), respond);
    } catch (const std::exception& e) {
      // Handlers report errors as values; this is the last line of defence, not a path.
      std::cerr << "error: handler threw: " << e.what() << "\n";
      if (!pending_) respond(server_.rejection_(http::status::internal_server_error));
    }
    handler_thread_ = std::thread::id();
    if (pending_) {
      --server_.in_flight_;
      HttpResponse res = std::move(*pending_);
      pending_.reset();
      Write(std::move(res));
    }
  }

  void Write(HttpResponse&& res) {
    res.keep_alive(keep_alive_ && res.keep_alive() && !server_.stopping_);
    res.prepare_payload();
    auto owned = std::make_shared<HttpResponse>(std::move(res));
    stream_.expires_after(server_.options_.request_timeout);
    http::async_write(stream_, *owned,
                      [self = shared_from_this(), owned](beast::error_code ec, std::size_t) {
                        if (ec || !owned->keep_alive()) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  HttpServer& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = true;
  std::atomic<std::thread::id> handler_thread_;  // set while the handler runs
  std::optional<HttpResponse> pending_;          // a response given during the handler
};

HttpServer::HttpServer(ServerOptions options, Handler handler, Rejection rejection)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      rejection_(std::move(rejection)),
      contexts_([&] {
        std::vector<std::unique_ptr<asio::io_context>> contexts;
        for (int i = 0; i < std::max(1, options_.threads); ++i) {
          contexts.push_back(std::make_unique<asio::io_context>(1));
        }
        return contexts;
      }()),
      acceptor_(*contexts_.front()) {
  for (auto& context : contexts_) guards_.push_back(asio::make_work_guard(*context));
}

HttpServer::~HttpServer() = default;

Result<unsigned short, std::string> HttpServer::Listen() {
  beast::error_code ec;
  const auto address = asio::ip::make_address(options_.address, ec);
  if (ec) return "invalid listen address '" + options_.address + "'";
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return "cannot listen on " + options_.address + ":" + std::to_string(options_.port) + ": " +
           ec.message();
  }
  port_ = acceptor_.local_endpoint().port();
  return port_;
}

void HttpServer::Accept() {
  asio::io_context& context = *contexts_[next_context_++ % contexts_.size()];
  acceptor_.async_accept(context, [this](beast::error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(*this, std::move(socket))->Start();
    }
    Accept();
  });
}

void HttpServer::Run() {
  Accept();
  std::vector<std::thread> extra;
  for (std::size_t i = 1; i < contexts_.size(); ++i) {
    extra.emplace_back([this, i] { contexts_[i]->run(); });
  }
  contexts_.front()->run();
  for (auto& t : extra) t.join();
}

void HttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    DrainThenHalt(std::chrono::steady_clock::now() + options_.drain_timeout);
  });
}

void HttpServer::DrainThenHalt(std::chrono::steady_clock::time_point deadline) {
  if (in_flight_ == 0 || std::chrono::steady_clock::now() >= deadline) {
    guards_.clear();
    for (auto& context : contexts_) context->stop();
    return;
  }
  auto timer =
      std::make_shared<asio::steady_timer>(*contexts_.front(), std::chrono::milliseconds(10));
  timer->async_wait([this, timer, deadline](beast::error_code) { DrainThenHalt(deadline); });
}

}  // namespace callgate
