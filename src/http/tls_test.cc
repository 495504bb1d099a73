// HTTPS in the transport (http/server.cc, http/tls.cc), with certificates made at test time.
// The transport's guarantees are checked on both streams by one parameterized suite (Plain and
// Tls: keep-alive and pipelining, every limit, timeouts, the connection cap, draining on stop,
// smuggling); then what is TLS's own: the protocol versions and ciphers negotiated and refused
// (a TLS 1.0/1.1 client is shown able to speak its version to a permissive server, then refused
// by this one with a protocol_version alert), ALPN, the handshake's timeout, failed handshakes
// logged throttled, the errors of a bad certificate or key, and ReloadTls.
#include "http/tls.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <chrono>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http/server.h"
#include "http/tls_test_util.h"

namespace callgate::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

const TestCertificate& CertA() {
  static const TestCertificate certificate = MakeTestCertificate("callgate-test-a");
  return certificate;
}
const TestCertificate& CertB() {
  static const TestCertificate certificate = MakeTestCertificate("callgate-test-b");
  return certificate;
}

std::string Get(std::string_view target, std::string_view fields = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: x\r\n" + std::string(fields) + "\r\n";
}

// A client context as OpenSSL's defaults make it (TLS 1.2 and 1.3), verifying nothing.
std::unique_ptr<ssl::context> ClientContext() {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
  context->set_verify_mode(ssl::verify_none);
  return context;
}

// A client for exactly one protocol version, down to TLS 1.0: what a client stuck on an old
// version offers (OpenSSL needs security level 0 for versions below 1.2).
std::unique_ptr<ssl::context> OldClientContext(int version) {
  auto context = ClientContext();
  SSL_CTX_set_security_level(context->native_handle(), 0);
  SSL_CTX_set_min_proto_version(context->native_handle(), version);
  SSL_CTX_set_max_proto_version(context->native_handle(), version);
  SSL_CTX_set_cipher_list(context->native_handle(), "DEFAULT@SECLEVEL=0");
  return context;
}

// The reason of an OpenSSL error, e.g. SSL_R_TLSV1_ALERT_PROTOCOL_VERSION: the alert a peer sent.
int Reason(const beast::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return 0;
  return ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
}

// How a connection stands, as the client sees it.
enum class End {
  kOpen,       // nothing ended it within the wait
  kClosed,     // an orderly end: FIN on a plain socket, close_notify over TLS
  kTruncated,  // TLS: the connection ended without close_notify
  kBroken,     // reset, or any other error
};

// One connection to 127.0.0.1, plain or TLS, every operation with a deadline (asynchronous
// operations run on the client's own io_context until they finish or the deadline passes).
class Client {
 public:
  // Connected; over TLS when `tls` is given (then Handshake() next).
  Client(unsigned short port, ssl::context* tls) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    socket_.set_option(tcp::no_delay(true));
    if (tls) tls_.emplace(socket_, *tls);
  }

  SSL* ssl() { return tls_->native_handle(); }

  // Offers these ALPN protocols (e.g. {"h2", "http/1.1"}) in the handshake.
  void OfferAlpn(const std::vector<std::string>& protocols) {
    std::string wire;
    for (const auto& protocol : protocols) wire += static_cast<char>(protocol.size()) + protocol;
    SSL_set_alpn_protos(ssl(), reinterpret_cast<const unsigned char*>(wire.data()),
                        static_cast<unsigned>(wire.size()));
  }
  std::string SelectedAlpn() {
    const unsigned char* data = nullptr;
    unsigned length = 0;
    SSL_get0_alpn_selected(ssl(), &data, &length);
    return std::string(reinterpret_cast<const char*>(data), length);
  }
  // The common name of the certificate the server presented.
  std::string PeerCommonName() {
    std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl()), X509_free);
    if (!cert) return "";
    std::array<char, 256> name{};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, name.data(),
                              static_cast<int>(name.size()));
    return name.data();
  }

  beast::error_code Handshake(milliseconds timeout = seconds(5)) {
    return Await([&](auto done) { tls_->async_handshake(ssl::stream_base::client, done); },
                 timeout);
  }

  bool Write(std::string_view bytes) {
    beast::error_code ec;
    const auto buffer = asio::buffer(bytes.data(), bytes.size());
    if (tls_) {
      asio::write(*tls_, buffer, ec);
    } else {
      asio::write(socket_, buffer, ec);
    }
    return !ec;
  }

  // One response, its body framed by its Content-Length; nullopt if the connection ends or
  // `timeout` passes first.
  std::optional<std::string> ReadResponse(milliseconds timeout = seconds(5)) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const std::size_t head_end = received_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::size_t length = 0;
        const std::size_t field = received_.find("Content-Length: ");
        if (field != std::string::npos && field < head_end) {
          const char* digits = received_.data() + field + 16;
          std::from_chars(digits, received_.data() + head_end, length);
        }
        if (received_.size() >= head_end + 4 + length) {
          std::string response = received_.substr(0, head_end + 4 + length);
          received_.erase(0, response.size());
          return response;
        }
      }
      if (!ReadSome(deadline)) return std::nullopt;
    }
  }

  // Reads until the connection ends or `timeout` passes.
  End WaitForEnd(milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (ReadSome(deadline)) {
    }
    return end_;
  }
  const std::string& received() const { return received_; }

 private:
  // The completion of one operation, whatever its signature.
  struct Done {
    std::optional<beast::error_code>* result;
    std::size_t* transferred;
    void operator()(beast::error_code ec, std::size_t n = 0) const {
      *result = ec;
      *transferred = n;
    }
  };

  template <class Initiate>
  beast::error_code Await(Initiate initiate, milliseconds timeout) {
    std::optional<beast::error_code> result;
    io_.restart();
    initiate(Done{&result, &transferred_});
    io_.run_for(timeout);
    if (result) return *result;
    beast::error_code ignored;
    socket_.cancel(ignored);
    io_.restart();
    io_.run();
    return asio::error::timed_out;
  }

  // Appends what arrives by `deadline`; false when nothing did (end_ says how it ended).
  bool ReadSome(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left <= milliseconds(0)) {
      end_ = End::kOpen;
      return false;
    }
    std::array<char, 16384> chunk;
    const auto ec = Await(
        [&](auto done) {
          if (tls_) {
            tls_->async_read_some(asio::buffer(chunk), done);
          } else {
            socket_.async_read_some(asio::buffer(chunk), done);
          }
        },
        left);
    if (!ec) {
      received_.append(chunk.data(), transferred_);
      return true;
    }
    end_ = ec == asio::error::timed_out         ? End::kOpen
           : ec == asio::error::eof             ? End::kClosed
           : ec == ssl::error::stream_truncated ? End::kTruncated
                                                : End::kBroken;
    return false;
  }

  asio::io_context io_;
  tcp::socket socket_;
  std::optional<ssl::stream<tcp::socket&>> tls_;
  std::size_t transferred_ = 0;
  std::string received_;
  End end_ = End::kOpen;
};

// 1 MB of a pattern with no period of a power of two: far over the size from which the transport
// writes a body from the response rather than copying it behind the head, and over the socket
// buffers, so the write goes on asynchronously.
std::string LargeBody() {
  std::string body(1 << 20, ' ');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 23);
  return body;
}

// An HttpServer on a loopback port, serving from a thread of its own: GET /slow is answered
// 300 ms later from another thread (as a durable write's completion is), GET /large with
// LargeBody(), anything else at once with the request's target as the body.
class Served {
 public:
  explicit Served(ServerOptions options)
      : server_(
            std::move(options),
            [this](HttpRequest&& request, Respond respond) {
              Handle(std::move(request), std::move(respond));
            },
            [](http::status status) { return HttpResponse(status, 11); }) {
    const auto port = server_.Listen();
    if (!port) throw std::runtime_error(port.error());
    thread_ = std::thread([this] { server_.Run(); });
  }
  ~Served() {
    server_.Stop();
    thread_.join();
    for (auto& responder : responders_) responder.join();
  }

  HttpServer& server() { return server_; }
  unsigned short port() const { return server_.port(); }
  // Counts down when GET /slow reaches the handler.
  std::latch slow_started{1};

 private:
  void Handle(HttpRequest&& request, Respond respond) {
    HttpResponse response(http::status::ok, 11);
    response.body() = std::string(request.target());
    if (request.target() == "/large") response.body() = LargeBody();
    if (request.target() != "/slow") return respond(std::move(response));
    slow_started.count_down();
    std::lock_guard lock(mu_);
    responders_.emplace_back([respond = std::move(respond), response]() mutable {
      std::this_thread::sleep_for(milliseconds(300));
      respond(std::move(response));
    });
  }

  HttpServer server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::thread> responders_;
};

bool IsOk(const std::optional<std::string>& response, std::string_view body) {
  return response && response->starts_with("HTTP/1.1 200 OK\r\n") &&
         response->ends_with("\r\n\r\n" + std::string(body));
}

// --- The transport's guarantees, over a plain socket and over TLS ---------------------------

class TransportTest : public ::testing::TestWithParam<bool> {
 protected:
  bool Tls() const { return GetParam(); }

  ServerOptions Options() const {
    ServerOptions options;
    options.port = 0;
    options.threads = 1;
    if (Tls()) {
      options.tls_cert_file = files_.cert();
      options.tls_key_file = files_.key();
    }
    return options;
  }

  // A connection, its TLS handshake done.
  std::unique_ptr<Client> Connect(unsigned short port) {
    auto client = std::make_unique<Client>(port, Tls() ? client_context_.get() : nullptr);
    if (Tls()) {
      const auto ec = client->Handshake();
      EXPECT_FALSE(ec) << ec.message();
    }
    return client;
  }

  // How a connection ends after its last response: over TLS with close_notify.
  static constexpr End kOrderlyEnd = End::kClosed;

  TestCertificateFiles files_{CertA()};
  std::unique_ptr<ssl::context> client_context_ = ClientContext();
};

INSTANTIATE_TEST_SUITE_P(Streams, TransportTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Tls" : "Plain"; });

TEST_P(TransportTest, KeepAliveAndPipelinedRequestsAreAnsweredInOrder) {
  Served served(Options());
  auto client = Connect(served.port());
  ASSERT_TRUE(client->Write(Get("/one") + Get("/two")));
  EXPECT_TRUE(IsOk(client->ReadResponse(), "/one"));
  EXPECT_TRUE(IsOk(client->ReadResponse(), "/two"));
  ASSERT_TRUE(client->Write(Get("/three")));
  EXPECT_TRUE(IsOk(client->ReadResponse(), "/three"));
}

// A large body (written from the response, beside the head) arrives whole and in order to a
// client that starts reading late, and the pipelined requests around it are answered after it.
TEST_P(TransportTest, ALargeBodyArrivesWholeBetweenPipelinedResponses) {
  Served served(Options());
  auto client = Connect(served.port());
  ASSERT_TRUE(client->Write(Get("/one") + Get("/large") + Get("/two")));
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_TRUE(IsOk(client->ReadResponse(), "/one"));
  const auto large = client->ReadResponse(seconds(10));
  ASSERT_TRUE(large);
  EXPECT_NE(large->find("Content-Length: 1048576\r\n"), std::string::npos);
  EXPECT_TRUE(IsOk(large, LargeBody())) << "the large body differs";
  EXPECT_TRUE(IsOk(client->ReadResponse(), "/two"));
  ASSERT_TRUE(client->Write(Get("/three")));
  EXPECT_TRUE(IsOk(client->ReadResponse(), "/three"));
}

TEST_P(TransportTest, ConnectionCloseEndsTheConnectionInAnOrderlyWay) {
  Served served(Options());
  auto client = Connect(served.port());
  ASSERT_TRUE(client->Write(Get("/last", "Connection: close\r\n")));
  const auto response = client->ReadResponse();
  EXPECT_TRUE(IsOk(response, "/last"));
  EXPECT_NE(response->find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(client->WaitForEnd(seconds(5)), kOrderlyEnd);
}

TEST_P(TransportTest, OversizedHeaderGets431AndTheConnectionCloses) {
  Served served(Options());
  auto client = Connect(served.port());
  ASSERT_TRUE(client->Write(Get("/", "X-Big: " + std::string(9000, 'a') + "\r\n")));
  const auto response = client->ReadResponse();
  ASSERT_TRUE(response);
  EXPECT_TRUE(response->starts_with("HTTP/1.1 431 ")) << *response;
  EXPECT_NE(client->WaitForEnd(seconds(5)), End::kOpen);
}

TEST_P(TransportTest, OversizedBodyGets413BeforeItIsSent) {
  ServerOptions options = Options();
  options.body_limit = 1024;
  Served served(options);
  auto client = Connect(served.port());
  ASSERT_TRUE(client->Write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n"));
  const auto response = client->ReadResponse();
  ASSERT_TRUE(response);
  EXPECT_TRUE(response->starts_with("HTTP/1.1 413 ")) << *response;
  EXPECT_EQ(client->WaitForEnd(seconds(5)), kOrderlyEnd);
}

TEST_P(TransportTest, AmbiguousFramingGets400AndNothingOfTheBodyIsAnswered) {
  Served served(Options());
  auto client = Connect(served.port());
  ASSERT_TRUE(
      client->Write("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                    "Content-Length: 5\r\n\r\n0\r\n\r\n" +
                    Get("/smuggled")));
  const auto response = client->ReadResponse();
  ASSERT_TRUE(response);
  EXPECT_TRUE(response->starts_with("HTTP/1.1 400 ")) << *response;
  EXPECT_NE(client->WaitForEnd(seconds(5)), End::kOpen);
  EXPECT_EQ(client->received().find("/smuggled"), std::string::npos);
}

TEST_P(TransportTest, IdleConnectionsCloseAfterTheIdleTimeout) {
  ServerOptions options = Options();
  options.idle_timeout = seconds(1);
  Served served(options);
  auto client = Connect(served.port());
  ASSERT_TRUE(client->Write(Get("/")));
  EXPECT_TRUE(IsOk(client->ReadResponse(), "/"));
  const auto start = Clock::now();
  EXPECT_NE(client->WaitForEnd(seconds(5)), End::kOpen);
  EXPECT_GE(Clock::now() - start, milliseconds(900));
}

TEST_P(TransportTest, AnUnfinishedRequestIsCutAtTheRequestTimeout) {
  ServerOptions options = Options();
  options.request_timeout = seconds(1);
  Served served(options);
  auto client = Connect(served.port());
  ASSERT_TRUE(client->Write("GET / HTTP/1.1\r\nHost"));
  const auto start = Clock::now();
  EXPECT_NE(client->WaitForEnd(seconds(5)), End::kOpen);
  EXPECT_GE(Clock::now() - start, milliseconds(900));
}

TEST_P(TransportTest, ConnectionsBeyondTheCapAreClosedAndTheirSlotsComeBack) {
  ServerOptions options = Options();
  options.max_connections = 1;
  Served served(options);
  auto first = Connect(served.port());
  ASSERT_TRUE(first->Write(Get("/first")));
  EXPECT_TRUE(IsOk(first->ReadResponse(), "/first"));

  Client refused(served.port(), Tls() ? client_context_.get() : nullptr);
  if (Tls()) {
    EXPECT_TRUE(refused.Handshake());  // closed before the handshake
  } else {
    EXPECT_NE(refused.WaitForEnd(seconds(5)), End::kOpen);
  }
  ASSERT_TRUE(first->Write(Get("/still")));
  EXPECT_TRUE(IsOk(first->ReadResponse(), "/still"));

  first.reset();  // its slot is free once the server has seen it close
  bool served_again = false;
  for (const auto deadline = Clock::now() + seconds(5); !served_again && Clock::now() < deadline;) {
    Client next(served.port(), Tls() ? client_context_.get() : nullptr);
    if (Tls() && next.Handshake()) continue;
    served_again = next.Write(Get("/again")) && IsOk(next.ReadResponse(), "/again");
  }
  EXPECT_TRUE(served_again);
}

TEST_P(TransportTest, StoppingLetsAnInFlightRequestFinish) {
  Served served(Options());
  auto client = Connect(served.port());
  ASSERT_TRUE(client->Write(Get("/slow")));
  served.slow_started.wait();
  served.server().Stop();
  const auto response = client->ReadResponse();
  EXPECT_TRUE(IsOk(response, "/slow"));
  EXPECT_NE(response->find("Connection: close\r\n"), std::string::npos);
}

// --- What is TLS's own ----------------------------------------------------------------------

class TlsTest : public ::testing::Test {
 protected:
  ServerOptions Options() const {
    ServerOptions options;
    options.port = 0;
    options.threads = 1;
    options.tls_cert_file = files_.cert();
    options.tls_key_file = files_.key();
    return options;
  }

  TestCertificateFiles files_{CertA()};
};

TEST_F(TlsTest, Tls13IsNegotiatedWithAVerifiedCertificateAndHttp11OverAlpn) {
  Served served(Options());
  auto context = ClientContext();
  context->add_certificate_authority(asio::buffer(CertA().cert_pem));
  context->set_verify_mode(ssl::verify_peer);
  context->set_verify_callback(ssl::host_name_verification("localhost"));
  Client client(served.port(), context.get());
  client.OfferAlpn({"h2", "http/1.1"});
  const auto ec = client.Handshake();
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(SSL_version(client.ssl()), TLS1_3_VERSION);
  EXPECT_EQ(client.SelectedAlpn(), "http/1.1");
  EXPECT_EQ(client.PeerCommonName(), "callgate-test-a");
  ASSERT_TRUE(client.Write(Get("/over-tls")));
  EXPECT_TRUE(IsOk(client.ReadResponse(), "/over-tls"));
}

TEST_F(TlsTest, AClientOfferingNoAlpnIsServed) {
  Served served(Options());
  auto context = ClientContext();
  Client client(served.port(), context.get());
  ASSERT_FALSE(client.Handshake());
  EXPECT_EQ(client.SelectedAlpn(), "");
  ASSERT_TRUE(client.Write(Get("/")));
  EXPECT_TRUE(IsOk(client.ReadResponse(), "/"));
}

// RFC 7301 §3.2: a client that offers only protocols the server does not speak gets
// no_application_protocol.
TEST_F(TlsTest, AClientOfferingOnlyH2IsRefusedWithNoApplicationProtocol) {
  Served served(Options());
  auto context = ClientContext();
  Client client(served.port(), context.get());
  client.OfferAlpn({"h2"});
  EXPECT_EQ(Reason(client.Handshake()), SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL);
}

TEST_F(TlsTest, Tls12IsServedWithEcdheAndAnAeadCipherOnly) {
  Served served(Options());
  auto tls12 = ClientContext();
  SSL_CTX_set_max_proto_version(tls12->native_handle(), TLS1_2_VERSION);
  Client client(served.port(), tls12.get());
  ASSERT_FALSE(client.Handshake());
  EXPECT_EQ(SSL_version(client.ssl()), TLS1_2_VERSION);
  // The server's first choice for an ECDSA certificate, whatever the client's order.
  EXPECT_STREQ(SSL_get_cipher_name(client.ssl()), "ECDHE-ECDSA-AES128-GCM-SHA256");
  ASSERT_TRUE(client.Write(Get("/tls12")));
  EXPECT_TRUE(IsOk(client.ReadResponse(), "/tls12"));

  // CBC with HMAC (still in OpenSSL's default list) is not offered.
  auto cbc = ClientContext();
  SSL_CTX_set_max_proto_version(cbc->native_handle(), TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(cbc->native_handle(),
                          "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA256:"
                          "ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES256-SHA384");
  Client refused(served.port(), cbc.get());
  EXPECT_EQ(Reason(refused.Handshake()), SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE);
}

// Whether a server that accepts every version OpenSSL can speak completes a handshake with
// `client`: the proof that a refusal by callgate is callgate's, not the client's own.
bool PermissiveServerAccepts(ssl::context& client) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  ssl::context server(ssl::context::tls_server);
  SSL_CTX_set_security_level(server.native_handle(), 0);
  SSL_CTX_set_min_proto_version(server.native_handle(), TLS1_VERSION);
  SSL_CTX_set_cipher_list(server.native_handle(), "DEFAULT@SECLEVEL=0");
  server.use_certificate_chain(asio::buffer(CertA().cert_pem));
  server.use_private_key(asio::buffer(CertA().key_pem), ssl::context::pem);
  bool accepted = false;
  std::thread serving([&] {
    tcp::socket socket(io);
    acceptor.accept(socket);
    ssl::stream<tcp::socket&> stream(socket, server);
    beast::error_code ec;
    stream.handshake(ssl::stream_base::server, ec);
    accepted = !ec;
  });
  bool connected = false;
  {
    Client probe(acceptor.local_endpoint().port(), &client);
    connected = !probe.Handshake();
  }  // closed before joining: a server still waiting for it then fails at once
  serving.join();
  return connected && accepted;
}

TEST_F(TlsTest, Tls11AndTls10ClientsAreRefusedByTheServerWithProtocolVersion) {
  Served served(Options());
  for (const int version : {TLS1_1_VERSION, TLS1_VERSION}) {
    SCOPED_TRACE(version == TLS1_1_VERSION ? "TLS 1.1" : "TLS 1.0");
    auto old = OldClientContext(version);
    ASSERT_TRUE(PermissiveServerAccepts(*old)) << "this client cannot speak its version";
    Client client(served.port(), old.get());
    // The server's alert, received by the client: the refusal is the server's.
    EXPECT_EQ(Reason(client.Handshake()), SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
  }
}

TEST_F(TlsTest, TheContextRefusesCompressionAndRenegotiationAndPrefersItsOwnCiphers) {
  const auto tls = MakeTlsContext(files_.cert(), files_.key());
  ASSERT_TRUE(tls) << tls.error();
  SSL_CTX* context = tls->context->native_handle();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(context), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version(context), 0);  // the newest OpenSSL has: TLS 1.3
  const auto options = SSL_CTX_get_options(context);
  EXPECT_TRUE(options & SSL_OP_NO_COMPRESSION);
  EXPECT_TRUE(options & SSL_OP_NO_RENEGOTIATION);
  EXPECT_TRUE(options & SSL_OP_CIPHER_SERVER_PREFERENCE);
  EXPECT_NE(tls->certificate.description.find("CN=callgate-test-a"), std::string::npos)
      << tls->certificate.description;
}

TEST_F(TlsTest, AHandshakeThatNeverFinishesIsCutAtTheHandshakeTimeout) {
  ServerOptions options = Options();
  options.handshake_timeout = seconds(1);
  options.max_connections = 2;
  Served served(options);
  // One that sends nothing, one that starts a ClientHello record and stops.
  Client silent(served.port(), nullptr);
  Client stalled(served.port(), nullptr);
  ASSERT_TRUE(stalled.Write(std::string("\x16\x03\x01\x02\x00", 5)));
  const auto start = Clock::now();
  EXPECT_NE(silent.WaitForEnd(seconds(5)), End::kOpen);
  EXPECT_NE(stalled.WaitForEnd(seconds(5)), End::kOpen);
  EXPECT_GE(Clock::now() - start, milliseconds(900));
  EXPECT_LT(Clock::now() - start, seconds(4));
  // Their slots are free again.
  auto context = ClientContext();
  Client client(served.port(), context.get());
  ASSERT_FALSE(client.Handshake());
  ASSERT_TRUE(client.Write(Get("/after")));
  EXPECT_TRUE(IsOk(client.ReadResponse(), "/after"));
}

TEST_F(TlsTest, FailedHandshakesAreLoggedThrottledNotOneLineEach) {
  Served served(Options());
  auto old = OldClientContext(TLS1_1_VERSION);
  ::testing::internal::CaptureStderr();
  const auto start = Clock::now();
  for (int i = 0; i < 100; ++i) {
    Client client(served.port(), old.get());
    EXPECT_TRUE(client.Handshake());
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const std::string log = ::testing::internal::GetCapturedStderr();
  int lines = 0;
  for (std::size_t at = 0; (at = log.find("TLS handshake failed", at)) != std::string::npos; ++at) {
    ++lines;
  }
  // The log's throttle: bursts of 20, then 10 lines a second.
  EXPECT_LE(lines, 21 + static_cast<int>(10 * elapsed)) << log;
  EXPECT_LT(lines, 100) << log;
}

TEST_F(TlsTest, ReloadServesTheNewCertificateToNewConnectionsAndKeepsOpenOnesOnTheirs) {
  Served served(Options());
  EXPECT_NE(served.server().tls_certificate().description.find("CN=callgate-test-a"),
            std::string::npos);
  auto context = ClientContext();
  Client before(served.port(), context.get());
  ASSERT_FALSE(before.Handshake());
  EXPECT_EQ(before.PeerCommonName(), "callgate-test-a");
  ASSERT_TRUE(before.Write(Get("/before")));
  EXPECT_TRUE(IsOk(before.ReadResponse(), "/before"));

  files_.Write(CertB());
  const auto reloaded = served.server().ReloadTls();
  ASSERT_TRUE(reloaded) << reloaded.error();
  EXPECT_NE(reloaded->description.find("CN=callgate-test-b"), std::string::npos);

  Client after(served.port(), context.get());
  ASSERT_FALSE(after.Handshake());
  EXPECT_EQ(after.PeerCommonName(), "callgate-test-b");
  ASSERT_TRUE(after.Write(Get("/after")));
  EXPECT_TRUE(IsOk(after.ReadResponse(), "/after"));
  // The open connection goes on, on its own context.
  ASSERT_TRUE(before.Write(Get("/still")));
  EXPECT_TRUE(IsOk(before.ReadResponse(), "/still"));
}

TEST_F(TlsTest, AFailedReloadKeepsServingTheCertificateItHad) {
  Served served(Options());
  WriteTextFile(files_.key(), "not a key\n");
  const auto reloaded = served.server().ReloadTls();
  ASSERT_FALSE(reloaded);
  EXPECT_NE(reloaded.error().find(files_.key()), std::string::npos) << reloaded.error();
  // A key that does not match is refused the same way.
  WriteTextFile(files_.key(), CertB().key_pem);
  EXPECT_FALSE(served.server().ReloadTls());
  EXPECT_NE(served.server().tls_certificate().description.find("CN=callgate-test-a"),
            std::string::npos);

  auto context = ClientContext();
  Client client(served.port(), context.get());
  ASSERT_FALSE(client.Handshake());
  EXPECT_EQ(client.PeerCommonName(), "callgate-test-a");
  ASSERT_TRUE(client.Write(Get("/")));
  EXPECT_TRUE(IsOk(client.ReadResponse(), "/"));
}

TEST(TlsReloadTest, AServerWithoutTlsHasNothingToReload) {
  ServerOptions options;
  options.port = 0;
  options.threads = 1;
  Served served(options);
  EXPECT_FALSE(served.server().ReloadTls());
  EXPECT_EQ(served.server().tls_certificate().description, "");
}

// --- Certificates and keys that cannot be served ----------------------------------------------

// Every line of a PEM key's body, none of which may appear in an error.
std::vector<std::string> KeyLines(const std::string& pem) {
  std::vector<std::string> lines;
  for (std::size_t at = 0, end; (end = pem.find('\n', at)) != std::string::npos; at = end + 1) {
    const std::string line = pem.substr(at, end - at);
    if (!line.starts_with("-----")) lines.push_back(line);
  }
  return lines;
}

void ExpectRefused(const std::string& cert_file, const std::string& key_file,
                   const std::string& names, const std::string& says) {
  const auto tls = MakeTlsContext(cert_file, key_file);
  ASSERT_FALSE(tls);
  EXPECT_NE(tls.error().find(names), std::string::npos) << tls.error();
  EXPECT_NE(tls.error().find(says), std::string::npos) << tls.error();
  EXPECT_EQ(tls.error().find("PRIVATE KEY"), std::string::npos) << tls.error();
  for (const auto& pem : {CertA().key_pem, CertB().key_pem}) {
    for (const auto& line : KeyLines(pem)) {
      EXPECT_EQ(tls.error().find(line), std::string::npos) << tls.error();
    }
  }
}

TEST(TlsContextTest, AFileThatCannotBeServedIsNamedAndNothingOfAKeyIsShown) {
  TestCertificateFiles a(CertA());
  TestCertificateFiles b(CertB());
  ExpectRefused(a.cert() + ".missing", a.key(), a.cert() + ".missing", "No such file");
  ExpectRefused(a.cert(), a.key() + ".missing", a.key() + ".missing", "No such file");
  ExpectRefused(a.cert(), b.key(), b.key(), "is not the private key of the certificate");
  ExpectRefused(a.key(), a.key(), a.key(), "no usable PEM certificate");
  ExpectRefused(a.cert(), a.cert(), a.cert(), "no usable private key");

  // An encrypted key is refused, not prompted for.
  std::unique_ptr<BIO, decltype(&BIO_free)> in(
      BIO_new_mem_buf(CertA().key_pem.data(), static_cast<int>(CertA().key_pem.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  ASSERT_TRUE(key);
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
  ASSERT_EQ(PEM_write_bio_PrivateKey(out.get(), key.get(), EVP_aes_256_cbc(),
                                     reinterpret_cast<const unsigned char*>("secret"), 6, nullptr,
                                     nullptr),
            1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  WriteTextFile(a.key(), std::string(data, static_cast<std::size_t>(size)));
  ExpectRefused(a.cert(), a.key(), a.key(), "no usable private key");
}

TEST(TlsContextTest, AServerGivenHalfOfTheFilesDoesNotListen) {
  ServerOptions options;
  options.port = 0;
  options.tls_cert_file = "cert.pem";
  HttpServer server(
      options, [](HttpRequest&&, Respond) {},
      [](http::status status) { return HttpResponse(status, 11); });
  const auto port = server.Listen();
  ASSERT_FALSE(port);
  EXPECT_NE(port.error().find("both a certificate file and a key file"), std::string::npos);
}

}  // namespace
}  // namespace callgate::testing
