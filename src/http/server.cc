#include "http/server.h"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <cctype>
#include <ctime>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#include "log/log.h"

namespace callgate {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using TlsStream = asio::ssl::stream<tcp::socket>;

// Deadlines are enforced by a once-a-second sweep, so the clock they are read from needs no
// precision: CLOCK_MONOTONIC_COARSE (the kernel's tick, no TSC read), read ~3 times a request.
struct CoarseClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<CoarseClock>;
  static constexpr bool is_steady = true;
  static time_point now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
  }
};

namespace {

bool IsDigits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// RFC 9112 §6.1-6.3: the length of a request's body must be unambiguous, or what one reader takes
// for the body another reads as the next request (request smuggling). Accepted: no framing field
// (no body), one Content-Length of digits, or, from HTTP/1.1, Transfer-Encoding exactly `chunked`
// (the one coding the server decodes) without Content-Length. Beast alone accepts more: a
// Transfer-Encoding whose last coding is not `chunked` (then the body is ignored, or framed by a
// Content-Length beside it), and "Content-Length: 5, 5".
bool FramingIsValid(const http::request_header<>& header) {
  int lengths = 0;
  int codings = 0;
  bool transfer_encoding = false;
  for (const auto& field : header) {
    if (field.name() == http::field::content_length) {
      ++lengths;
      const auto value = field.value();
      if (!IsDigits(std::string_view(value.data(), value.size()))) return false;
    } else if (field.name() == http::field::transfer_encoding) {
      transfer_encoding = true;
      // A comma-separated list; empty elements do not count (RFC 9110 §5.6.1).
      const auto value = field.value();
      std::string_view rest(value.data(), value.size());
      while (!rest.empty()) {
        const std::size_t comma = std::min(rest.find(','), rest.size());
        std::string_view coding = rest.substr(0, comma);
        rest.remove_prefix(std::min(comma + 1, rest.size()));
        while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t')) {
          coding.remove_prefix(1);
        }
        while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t')) {
          coding.remove_suffix(1);
        }
        if (coding.empty()) continue;
        ++codings;
        if (!EqualsNoCase(coding, "chunked")) return false;
      }
    }
  }
  if (lengths > 1) return false;
  if (!transfer_encoding) return true;
  return codings == 1 && lengths == 0 && header.version() >= 11;
}

http::status StatusOf(beast::error_code ec) {
  return ec == http::error::body_limit     ? http::status::payload_too_large
         : ec == http::error::header_limit ? http::status::request_header_fields_too_large
                                           : http::status::bad_request;
}

}  // namespace

// What the sweep sees of a session, whatever its stream. Its once-a-second Close is the only
// virtual call; a session's reads and writes are bound at compile time.
class HttpServer::Connection {
 public:
  virtual ~Connection() = default;

  // Called by the sweep on this connection's thread.
  void CloseIfExpired(CoarseClock::time_point now) {
    if (now >= deadline_) Close();
  }
  bool closed() const { return closed_; }

 protected:
  virtual void Close() = 0;

  CoarseClock::time_point deadline_ = CoarseClock::time_point::max();
  bool closed_ = false;
};

// One connection, over a plain socket (Stream = tcp::socket) or TLS (TlsStream): the same code
// for both, apart from the start (the handshake), the first attempt of a write and the end (TLS
// sends close_notify). A template rather than a virtual stream, so the plain path pays nothing
// for TLS.
//
// Reads with Beast's parser straight from the stream and writes each response as one buffer;
// on a plain socket, first with a non-blocking send (which nearly always takes it all) and only
// then through the reactor. Timeouts are deadlines a once-a-second sweep enforces (Sweeper), so
// a request costs no timer operations. Profiled under wrk this cut the transport's share of a
// status GET from ~32k to ~8k instructions.
template <class Stream>
class HttpServer::Session final : public Connection,
                                  public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  // A TLS session keeps the context it was made with: a reload gives later ones another.
  using TlsContextRef =
      std::conditional_t<kTls, std::shared_ptr<asio::ssl::context>, std::monostate>;

 public:
  Session(HttpServer& server, tcp::socket socket) requires(!kTls)
      : server_(server),
        stream_(std::move(socket)),
        chunk_extension_limit_{server.options_.chunk_line_limit} {
    ++server_.connections_;
  }
  Session(HttpServer& server, tcp::socket socket,
          std::shared_ptr<asio::ssl::context> context) requires(kTls)
      : server_(server),
        tls_context_(std::move(context)),
        stream_(std::move(socket), *tls_context_),
        chunk_extension_limit_{server.options_.chunk_line_limit} {
    // Asio sets SSL_MODE_RELEASE_BUFFERS, so OpenSSL freed and allocated its 17 KiB record
    // buffers around every request: 5 % of a keep-alive HTTPS request's user-space instructions
    // (callgrind). Kept, they cost an idle connection no resident memory measured (~85 KiB with
    // Asio's own buffers either way): only the pages a record touches are ever resident.
    SSL_clear_mode(stream_.native_handle(), SSL_MODE_RELEASE_BUFFERS);
    ++server_.connections_;
  }
  ~Session() override { --server_.connections_; }

  void Start() {
    beast::error_code ignored;
    stream_.lowest_layer().set_option(tcp::no_delay(true), ignored);
    if constexpr (kTls) {
      // A handshake that never finishes holds a connection like a request that never does.
      deadline_ = CoarseClock::now() + server_.options_.handshake_timeout;
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->HandshakeFailed(ec);
                                self->Read();
                              });
    } else {
      stream_.non_blocking(true, ignored);
      Read();
    }
  }

 private:
  // Clients that connect and leave, or time out, are routine (health checks, scanners); a
  // handshake OpenSSL refused (an old protocol, no shared cipher, the client rejecting the
  // certificate) is worth a line, throttled with the transport's others.
  void HandshakeFailed(const beast::error_code& ec) {
    if (ec.category() == asio::error::get_ssl_category()) {
      Log(LogKind::kConnection, LogNow(), "callgate: TLS handshake failed: " + ec.message());
    }
    Close();
  }

  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options_.header_limit));
    parser_->body_limit(server_.options_.body_limit);
    // The header is parsed on its own, so that its framing is checked (CheckHeader) before a
    // byte of the body is parsed; then the rest goes in as it comes.
    parser_->eager(false);
    header_bytes_ = 0;
    header_fields_ = 0;
    request_started_ = false;
    // Idle connections wait for the first byte of a request, not forever.
    deadline_ = CoarseClock::now() + server_.options_.idle_timeout;
    Parse();
  }

  // Feeds buffered bytes to the parser; reads more while it needs them.
  void Parse() {
    while (buffer_.size() > 0) {
      if (!request_started_) {
        request_started_ = true;
        deadline_ = CoarseClock::now() + server_.options_.request_timeout;
      }
      const bool in_header = !parser_->is_header_done();
      beast::error_code ec;
      const std::size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (in_header) header_bytes_ += used;  // not eager: a put ends where the header does
      if (ec == http::error::need_more) break;
      if (ec) return Reject(StatusOf(ec));
      if (in_header && parser_->is_header_done()) {
        if (const auto refusal = CheckHeader()) return Reject(*refusal);
      }
      if (parser_->is_done()) return OnRequest();
      if (used == 0) break;
    }
    if (const auto refusal = CheckUnfinished()) return Reject(*refusal);
    stream_.async_read_some(buffer_.prepare(kReadSize),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->OnRead(ec, n);
                            });
  }

  void OnRead(beast::error_code ec, std::size_t n) {
    if (ec) {
      // The client ended its side mid-request (over TLS without close_notify: a truncation).
      const bool eof = ec == asio::error::eof || (kTls && ec == asio::ssl::error::stream_truncated);
      if (!eof || !request_started_) return Close();
      parser_->put_eof(ec);
      if (!ec && parser_->is_done()) return OnRequest();
      return Reject(http::status::bad_request);
    }
    buffer_.commit(n);
    Parse();
  }

  // Once the header is parsed: its size (Beast bounds the request line and the fields each on
  // their own, not together) and the body's framing.
  std::optional<http::status> CheckHeader() {
    if (header_bytes_ > server_.options_.header_limit) {
      return http::status::request_header_fields_too_large;
    }
    if (!FramingIsValid(parser_->get().base())) return http::status::bad_request;
    if (parser_->chunked()) {
      // Trailer fields are appended after these (DropTrailers).
      header_fields_ = static_cast<std::size_t>(
          std::distance(parser_->get().base().begin(), parser_->get().base().end()));
      parser_->on_chunk_header(chunk_extension_limit_);
    }
    parser_->eager(true);
    return std::nullopt;
  }

  // The bytes the parser left in the buffer are one unfinished step, which it buffers whole
  // until it ends. Beast bounds that step in the header (header_limit) but not in a chunked
  // body: a chunk-size line is buffered until its CRLF, the trailer section until its empty
  // line, however long. So the step is bounded here, before reading more of it.
  std::optional<http::status> CheckUnfinished() const {
    const std::size_t pending = buffer_.size();
    const ServerOptions& options = server_.options_;
    const std::size_t header_room =
        options.header_limit - std::min(header_bytes_, options.header_limit);
    if (!parser_->is_header_done()) {
      if (pending <= header_room) return std::nullopt;
      return http::status::request_header_fields_too_large;
    }
    if (!parser_->chunked() || pending <= std::min(header_room, options.chunk_line_limit)) {
      return std::nullopt;  // a body of known length is taken as it comes: nothing pending
    }
    // Chunk data is taken as it comes, so what is pending is a chunk-size line (after the CRLF
    // that ends the previous chunk's data) or, once the last chunk's line has ended, trailer
    // fields.
    const std::string_view text(static_cast<const char*>(buffer_.data().data()), pending);
    const std::size_t start = text.starts_with("\r\n") ? 2 : 0;
    const std::size_t line_end = text.find("\r\n", start);
    if (line_end == std::string_view::npos) {
      if (pending - start <= options.chunk_line_limit) return std::nullopt;
      return http::status::bad_request;
    }
    if (pending - (line_end + 2) <= header_room) return std::nullopt;
    return http::status::request_header_fields_too_large;
  }

  // Removes the trailer fields Beast added to the request's fields (RFC 9110 §6.5.1: not to be
  // merged into the header section) and returns their size, as sent less whitespace, with the
  // empty line that ends them.
  std::size_t DropTrailers(HttpRequest& request) const {
    std::size_t bytes = 2;
    auto it = std::next(request.begin(), static_cast<std::ptrdiff_t>(header_fields_));
    while (it != request.end()) {
      bytes += it->name_string().size() + 2 + it->value().size() + 2;
      it = request.erase(it);
    }
    return bytes;
  }

  // Oversized, malformed or ambiguous: answer once in the envelope, then close (the stream's
  // framing can no longer be trusted).
  void Reject(http::status status) {
    keep_alive_ = false;
    head_ = false;
    Write(server_.rejection_(status));
  }

  void OnRequest() {
    if (parser_->chunked() &&
        header_bytes_ + DropTrailers(parser_->get()) > server_.options_.header_limit) {
      return Reject(http::status::request_header_fields_too_large);
    }
    ++server_.in_flight_;
    deadline_ = CoarseClock::time_point::max();  // the handler always answers; no timeout meanwhile
    HttpRequest req = parser_->release();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    head_ = req.method() == http::verb::head;
    // A response given while the handler is still on this connection's thread is written right
    // after it returns; one given later, from another thread (a durable write's completion),
    // is posted to this connection's thread together with the session: whoever still holds the
    // Respond (a store keeps its completions until it clears a batch) holds the session no
    // longer, so a session ends on its own thread, before its server, and frees its connection
    // slot when its connection closes.
    auto respond = [self = this->shared_from_this()](HttpResponse&& res) mutable {
      if (self->handler_thread_.load() == std::this_thread::get_id()) {
        self->pending_.emplace(std::move(res));
        return;
      }
      const auto executor = self->stream_.get_executor();
      auto write = [self = std::move(self), res = std::move(res)]() mutable {
        --self->server_.in_flight_;
        self->Write(std::move(res));
      };
      if (ResponseBatch* batch = ResponseBatch::current_) {
        auto it = std::find_if(batch->writes_.begin(), batch->writes_.end(),
                               [&](const auto& entry) { return entry.first == executor; });
        if (it == batch->writes_.end()) {
          batch->writes_.emplace_back(executor, std::vector<std::function<void()>>());
          it = std::prev(batch->writes_.end());
        }
        it->second.emplace_back(std::move(write));
        return;
      }
      asio::post(executor, std::move(write));
    };
    handler_thread_ = std::this_thread::get_id();
    try {
      server_.handler_(std::move(req), respond);
    } catch (const std::exception& e) {
      // Handlers report errors as values; this is the last line of defence, not a path.
      Log(LogKind::kConnection, LogNow(), std::string("error: handler threw: ") + e.what());
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
    if (closed_) return;
    const bool keep_alive = keep_alive_ && res.keep_alive() && !server_.stopping_;
    Serialize(res, keep_alive);
    deadline_ = CoarseClock::now() + server_.options_.request_timeout;
    if (body_.empty()) return Send(asio::const_buffer(asio::buffer(out_)), keep_alive);
    Send(std::array<asio::const_buffer, 2>{asio::buffer(out_), asio::buffer(body_)}, keep_alive);
  }

  // Writes `buffers` (what Serialize made: one buffer, or the head and a large body), at once
  // as far as the socket takes them, the rest asynchronously.
  template <class Buffers>
  void Send(const Buffers& buffers, bool keep_alive) {
    beast::buffers_suffix<Buffers> rest(buffers);
    // TLS goes through the stream's engine, whose writes are asynchronous only.
    if constexpr (!kTls) {
      beast::error_code ec;
      const std::size_t sent = stream_.write_some(buffers, ec);
      if (!ec && sent == beast::buffer_bytes(buffers)) return Written(keep_alive);
      if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return Close();
      rest.consume(sent);
    }
    asio::async_write(
        stream_, rest,
        [self = this->shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
          if (ec) return self->Close();
          self->Written(keep_alive);
        });
  }

  void Written(bool keep_alive) {
    body_ = std::string();  // a large body is freed once sent, not kept with the connection
    if (!keep_alive) return Finish();
    // Pipelined requests already buffered are parsed from a fresh stack frame.
    if (buffer_.size() > 0) {
      return asio::post(stream_.get_executor(),
                        [self = this->shared_from_this()] { self->Read(); });
    }
    Read();
  }

  // The connection ends after its last response. Over TLS with a close_notify first, so the
  // client can tell the end from a truncation; the client's is taken as received, so that the
  // shutdown is that one alert written, not a wait for the client's (which RFC 8446 §6.1 does
  // not require). The sweep still closes the connection if that write stalls (the response's
  // deadline holds).
  void Finish() {
    if constexpr (kTls) {
      SSL_set_shutdown(stream_.native_handle(), SSL_RECEIVED_SHUTDOWN);
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->Close(); });
    } else {
      Close();
    }
  }

  // The status line, the handler's fields, Connection and Content-Length into out_, then the body
  // (none for HEAD: RFC 9112 §6.3, the client reads no body whatever Content-Length says): a small
  // one copied after them, so the response is one buffer; a large one moved to body_ and written
  // from there, not copied (a batch status answer is ~400 KB).
  void Serialize(HttpResponse& res, bool keep_alive) {
    out_.clear();
    out_ += version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    out_ += std::to_string(res.result_int());
    out_ += ' ';
    const auto reason = res.reason();
    out_.append(reason.data(), reason.size());
    out_ += "\r\n";
    for (const auto& field : res) {
      if (field.name() == http::field::connection || field.name() == http::field::content_length) {
        continue;
      }
      const auto name = field.name_string();
      const auto value = field.value();
      out_.append(name.data(), name.size()).append(": ").append(value.data(), value.size());
      out_ += "\r\n";
    }
    if (!keep_alive) {
      out_ += "Connection: close\r\n";
    } else if (version_ == 10) {
      out_ += "Connection: keep-alive\r\n";
    }
    out_ += "Content-Length: ";
    out_ += std::to_string(res.body().size());
    out_ += "\r\n\r\n";
    if (head_) return;
    if (res.body().size() <= kCopiedBodyBytes) {
      out_ += res.body();
    } else {
      body_ = std::move(res.body());
    }
  }

  static constexpr std::size_t kCopiedBodyBytes = 16 * 1024;

  // At once, whatever is under way (that ends with operation_aborted).
  void Close() override {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    stream_.lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.lowest_layer().close(ignored);
  }

  static constexpr std::size_t kReadSize = 16 * 1024;

  // Refuses a chunk whose extensions alone exceed chunk_line_limit, however they arrived
  // (CheckUnfinished sees only lines still unfinished when a read ends).
  struct ChunkExtensionLimit {
    std::size_t limit;
    void operator()(std::uint64_t, beast::string_view extensions, beast::error_code& ec) const {
      if (extensions.size() > limit) ec = http::error::bad_chunk_extension;
    }
  };

  HttpServer& server_;
  [[no_unique_address]] TlsContextRef tls_context_;  // before stream_, which uses it
  Stream stream_;
  beast::flat_buffer buffer_;  // read, not yet parsed (pipelined requests wait here)
  std::optional<http::request_parser<http::string_body>> parser_;
  std::size_t header_bytes_ = 0;   // of the request being parsed: its request line and fields
  std::size_t header_fields_ = 0;  // of a chunked request: its header fields (trailers follow)
  ChunkExtensionLimit chunk_extension_limit_;
  bool request_started_ = false;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  bool head_ = false;  // the request being answered is a HEAD
  std::string out_;    // the response being written: its head, and its body if small
  std::string body_;   // its body if large (Serialize), until written
  std::atomic<std::thread::id> handler_thread_;  // set while the handler runs
  std::optional<HttpResponse> pending_;          // a response given during the handler
};

thread_local HttpServer::ResponseBatch* HttpServer::ResponseBatch::current_ = nullptr;

HttpServer::ResponseBatch::ResponseBatch() : outer_(current_) { current_ = this; }

HttpServer::ResponseBatch::~ResponseBatch() {
  current_ = outer_;
  for (auto& [executor, writes] : writes_) {
    asio::post(executor, [writes = std::move(writes)]() mutable {
      for (auto& write : writes) write();
    });
  }
}

// Once a second per thread: closes the connections of that thread whose deadline passed.
struct HttpServer::Sweeper {
  explicit Sweeper(asio::io_context& context) : timer(context) {}
  asio::steady_timer timer;
  std::vector<std::weak_ptr<Connection>> sessions;

  void Arm() {
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([this](beast::error_code ec) {
      if (ec) return;
      const auto now = CoarseClock::now();
      std::erase_if(sessions, [now](const std::weak_ptr<Connection>& weak) {
        const auto session = weak.lock();
        if (!session) return true;
        session->CloseIfExpired(now);
        return session->closed();
      });
      Arm();
    });
  }
};

std::size_t FdLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_max != RLIM_INFINITY) return static_cast<std::size_t>(limit.rlim_max);
  std::size_t nr_open = 0;  // what the kernel allows at most
  std::ifstream("/proc/sys/fs/nr_open") >> nr_open;
  return nr_open > 0 ? nr_open : 1024 * 1024;
}

std::size_t RaiseFdLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  const auto target = static_cast<rlim_t>(FdLimit());
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < target) {
    rlimit raised = limit;
    raised.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<std::size_t>(limit.rlim_cur);
}

std::size_t DefaultMaxConnections() {
  const std::size_t limit = FdLimit();
  return std::max<std::size_t>(1, limit - std::min<std::size_t>(256, limit / 4));
}

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
      acceptor_(*contexts_.front()),
      accept_timer_(*contexts_.front()) {
  for (auto& context : contexts_) {
    guards_.push_back(asio::make_work_guard(*context));
    sweepers_.push_back(std::make_unique<Sweeper>(*context));
  }
}

HttpServer::~HttpServer() = default;

Result<unsigned short, std::string> HttpServer::Listen() {
  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    if (options_.tls_cert_file.empty() || options_.tls_key_file.empty()) {
      return std::string("TLS needs both a certificate file and a key file");
    }
    auto tls = MakeTlsContext(options_.tls_cert_file, options_.tls_key_file);
    if (!tls) return tls.error();
    tls_ = std::move(tls->context);
    tls_certificate_ = std::move(tls->certificate);
  }
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
  const std::size_t index = next_context_++ % contexts_.size();
  acceptor_.async_accept(
      *contexts_[index], [this, index](beast::error_code ec, tcp::socket socket) {
        if (!acceptor_.is_open()) return;
        if (ec) return OnAcceptError(ec);
        accept_delay_ = std::chrono::milliseconds(0);
        if (connections_.load(std::memory_order_relaxed) >= options_.max_connections) {
          // Over the cap: closed before a byte is read, so the connections already open keep their
          // descriptors, memory and threads.
          beast::error_code ignored;
          socket.close(ignored);
          rejected_.fetch_add(1, std::memory_order_relaxed);
          Log(LogKind::kConnection, LogNow(),
              "callgate: " + std::to_string(options_.max_connections) +
                  " connections open (--max-connections): closed a new one");
          return Accept();
        }
        accepted_.fetch_add(1, std::memory_order_relaxed);
        if (tls()) {
          std::shared_ptr<asio::ssl::context> context;
          {
            std::lock_guard lock(tls_mutex_);
            context = tls_;
          }
          Start(index,
                std::make_shared<Session<TlsStream>>(*this, std::move(socket), std::move(context)));
        } else {
          Start(index, std::make_shared<Session<tcp::socket>>(*this, std::move(socket)));
        }
        Accept();
      });
}

template <class Stream>
void HttpServer::Start(std::size_t index, std::shared_ptr<Session<Stream>> session) {
  asio::dispatch(*contexts_[index], [this, index, session = std::move(session)] {
    sweepers_[index]->sessions.push_back(session);
    session->Start();
  });
}

TlsCertificate HttpServer::tls_certificate() const {
  std::lock_guard lock(tls_mutex_);
  return tls_certificate_;
}

Result<TlsCertificate, std::string> HttpServer::ReloadTls() {
  if (!tls()) return std::string("the server has no TLS certificate to reload");
  auto tls = MakeTlsContext(options_.tls_cert_file, options_.tls_key_file);
  if (!tls) return tls.error();
  std::lock_guard lock(tls_mutex_);
  tls_ = std::move(tls->context);
  tls_certificate_ = tls->certificate;
  return std::move(tls->certificate);
}

// Accepting failed: nearly always for want of a descriptor (EMFILE, ENFILE) or of kernel
// memory. The connection stays queued, so accepting again at once fails again at once: a core
// spinning while nobody new is served. So accepting waits, 5 ms after the first failure, twice as
// long after each next one, up to 1 s, while the connections already open are served; the
// first success ends the wait.
void HttpServer::OnAcceptError(const beast::error_code& ec) {
  using std::chrono::milliseconds;
  accept_delay_ = std::clamp(accept_delay_ * 2, milliseconds(5), milliseconds(1000));
  Log(LogKind::kConnection, LogNow(),
      "callgate: cannot accept a connection (" + ec.message() + ") with " +
          std::to_string(connections_.load()) + " open; retrying in " +
          std::to_string(accept_delay_.count()) + " ms, up to 1 s apart");
  accept_timer_.expires_after(accept_delay_);
  accept_timer_.async_wait([this](beast::error_code ec) {
    if (ec || !acceptor_.is_open()) return;
    Accept();
  });
}

void HttpServer::Run() {
  for (auto& sweeper : sweepers_) {
    asio::post(sweeper->timer.get_executor(), [s = sweeper.get()] { s->Arm(); });
  }
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
    accept_timer_.cancel();
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
