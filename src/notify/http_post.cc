#include "notify/http_post.h"

#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <memory>

#include "notify/signature.h"

namespace callgate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::optional<NotifyUrl> ParseNotifyUrl(std::string_view url) {
  NotifyUrl out;
  if (url.starts_with("https://")) {
    out.tls = true;
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    return std::nullopt;
  }
  const std::size_t end = url.find_first_of("/?#");
  std::string_view authority = url.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view() : url.substr(end);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  out.host_header = std::string(authority);
  std::string_view host = authority, port;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return std::nullopt;
      port = authority.substr(close + 2);
    }
  } else if (const std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  for (const char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  out.host = std::string(host);
  out.port = port.empty() ? (out.tls ? "443" : "80") : std::string(port);
  if (const std::size_t hash = rest.find('#'); hash != std::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  out.target = rest.empty() || rest.front() != '/' ? "/" + std::string(rest) : std::string(rest);
  return out;
}

asio::ssl::context MakeClientTlsContext() {
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.set_default_verify_paths();
  tls.set_verify_mode(asio::ssl::verify_peer);
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
  return tls;
}

namespace {

constexpr std::uint32_t kMaxHeader = 8 * 1024;
constexpr std::uint64_t kMaxBody = 64 * 1024;

// One POST: resolve, connect, (handshake), write, read, each step under the one deadline.
template <class Stream>
class Post : public std::enable_shared_from_this<Post<Stream>> {
 public:
  Post(asio::io_context& io, std::unique_ptr<Stream> stream, const NotifyUrl& url, std::string body,
       std::string signature, Millis timeout, std::function<void(PostResult)> done)
      : resolver_(io),
        deadline_(io),
        stream_(std::move(stream)),
        url_(url),
        timeout_(timeout),
        done_(std::move(done)),
        started_(std::chrono::steady_clock::now()) {
    request_.method(http::verb::post);
    request_.target(url_.target);
    request_.version(11);
    request_.set(http::field::host, url_.host_header);
    request_.set(http::field::user_agent, "callgate-notifications");
    request_.set(http::field::content_type, "application/json");
    request_.set(kSignatureHeader, signature);
    request_.set(http::field::connection, "close");
    request_.body() = std::move(body);
    request_.prepare_payload();
    parser_.header_limit(kMaxHeader);
    parser_.body_limit(kMaxBody);
  }

  void Start() {
    // One deadline for everything: the resolver has none of its own, so a timer cancels it and
    // closes the stream; the stream's own expiry bounds each of its operations too.
    auto self = this->shared_from_this();
    deadline_.expires_after(timeout_);
    deadline_.async_wait([self](beast::error_code ec) {
      if (ec) return;  // cancelled: finished in time
      self->timed_out_ = true;
      self->resolver_.cancel();
      self->Lowest().cancel();
    });
    resolver_.async_resolve(url_.host, url_.port,
                            [self](beast::error_code ec, tcp::resolver::results_type results) {
                              if (ec) return self->Finish("cannot resolve the host");
                              self->Lowest().expires_at(self->deadline_.expiry());
                              self->Connect(results);
                            });
  }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(*stream_); }

  void Connect(const tcp::resolver::results_type& results) {
    auto self = this->shared_from_this();
    Lowest().async_connect(results, [self](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return self->Finish(ec == beast::error::timeout ? "timed out" : "cannot connect");
      self->Handshake();
    });
  }

  void Handshake() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      if (!SSL_set_tlsext_host_name(stream_->native_handle(), url_.host.c_str())) {
        return Finish("cannot set the TLS server name");
      }
      stream_->set_verify_callback(asio::ssl::host_name_verification(url_.host));
      auto self = this->shared_from_this();
      stream_->async_handshake(asio::ssl::stream_base::client, [self](beast::error_code ec) {
        if (ec) return self->Finish("TLS handshake failed");
        self->Write();
      });
    } else {
      Write();
    }
  }

  void Write() {
    auto self = this->shared_from_this();
    http::async_write(*stream_, request_, [self](beast::error_code ec, std::size_t) {
      if (ec) return self->Finish(ec == beast::error::timeout ? "timed out" : "cannot send");
      http::async_read(
          *self->stream_, self->buffer_, self->parser_, [self](beast::error_code ec, std::size_t) {
            if (ec) {
              return self->Finish(ec == beast::error::timeout ? "timed out" : "no valid response");
            }
            self->status_ = static_cast<int>(self->parser_.get().result_int());
            self->Finish("");
          });
    });
  }

  void Finish(const char* error) {
    if (!done_) return;
    deadline_.cancel();
    if (timed_out_ && status_ == 0) error = "timed out";
    PostResult result{status_, error, std::chrono::steady_clock::now() - started_};
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(result));
  }

  tcp::resolver resolver_;
  asio::steady_timer deadline_;
  bool timed_out_ = false;
  std::unique_ptr<Stream> stream_;
  NotifyUrl url_;
  Millis timeout_;
  std::function<void(PostResult)> done_;
  std::chrono::steady_clock::time_point started_;
  http::request<http::string_body> request_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
  int status_ = 0;
};

}  // namespace

void PostNotification(asio::io_context& io, asio::ssl::context& tls, const NotifyUrl& url,
                      std::string body, std::string signature, Millis timeout,
                      std::function<void(PostResult)> done) {
  if (url.tls) {
    auto stream = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io, tls);
    std::make_shared<Post<beast::ssl_stream<beast::tcp_stream>>>(
        io, std::move(stream), url, std::move(body), std::move(signature), timeout, std::move(done))
        ->Start();
  } else {
    auto stream = std::make_unique<beast::tcp_stream>(io);
    std::make_shared<Post<beast::tcp_stream>>(io, std::move(stream), url, std::move(body),
                                              std::move(signature), timeout, std::move(done))
        ->Start();
  }
}

}  // namespace callgate
