// The notification client (notify/http_post.h) against servers on loopback: plain HTTP, HTTPS
// with a certificate the client trusts (and one it does not), a receiver that never answers
// (the deadline ends it); and the URLs it accepts.
#include "notify/http_post.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <thread>

#include "http/tls_test_util.h"
#include "notify/signature.h"

namespace callgate {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Accepts one connection on loopback and runs `serve` on it, on a thread of its own.
class OneShotServer {
 public:
  explicit OneShotServer(std::function<void(tcp::socket&)> serve)
      : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this, serve = std::move(serve)] {
      tcp::socket socket(io_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (!ec) serve(socket);
    });
  }
  ~OneShotServer() { thread_.join(); }
  std::string port() const { return std::to_string(acceptor_.local_endpoint().port()); }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

PostResult Post(asio::ssl::context& tls, const std::string& url, Millis timeout = Millis(5000)) {
  asio::io_context io;
  PostResult result;
  PostNotification(io, tls, *ParseNotifyUrl(url), R"({"a":1})", "t=1,v1=ab", timeout,
                   [&](PostResult r) { result = std::move(r); });
  io.run();
  return result;
}

TEST(NotifyPostTest, PostsJsonWithTheSignatureOverPlainHttp) {
  http::request<http::string_body> seen;
  OneShotServer server([&](tcp::socket& socket) {
    beast::flat_buffer buffer;
    http::read(socket, buffer, seen);
    http::response<http::string_body> response(http::status::accepted, 11);
    response.prepare_payload();
    http::write(socket, response);
  });
  asio::ssl::context tls = MakeClientTlsContext();
  const PostResult result = Post(tls, "http://127.0.0.1:" + server.port() + "/hooks?x=1");
  EXPECT_EQ(result.status, 202) << result.error;
  EXPECT_EQ(seen.method(), http::verb::post);
  EXPECT_EQ(seen.target(), "/hooks?x=1");
  EXPECT_EQ(seen[http::field::content_type], "application/json");
  EXPECT_EQ(seen[kSignatureHeader], "t=1,v1=ab");
  EXPECT_EQ(seen.body(), R"({"a":1})");
}

TEST(NotifyPostTest, PostsOverHttpsToATrustedCertificateOnly) {
  const testing::TestCertificate cert = testing::MakeTestCertificate("127.0.0.1");
  asio::ssl::context server_tls(asio::ssl::context::tls_server);
  server_tls.use_certificate_chain(asio::buffer(cert.cert_pem));
  server_tls.use_private_key(asio::buffer(cert.key_pem), asio::ssl::context::pem);
  auto serve = [&](tcp::socket& socket) {
    beast::ssl_stream<tcp::socket&> stream(socket, server_tls);
    beast::error_code ec;
    stream.handshake(asio::ssl::stream_base::server, ec);
    if (ec) return;
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::read(stream, buffer, request, ec);
    http::response<http::string_body> response(http::status::ok, 11);
    response.prepare_payload();
    http::write(stream, response, ec);
    stream.shutdown(ec);
  };
  {
    OneShotServer server(serve);
    asio::ssl::context trusting = MakeClientTlsContext();
    trusting.add_certificate_authority(asio::buffer(cert.cert_pem));
    const PostResult result = Post(trusting, "https://127.0.0.1:" + server.port() + "/");
    EXPECT_EQ(result.status, 200) << result.error;
  }
  {
    OneShotServer server(serve);
    asio::ssl::context system_trust = MakeClientTlsContext();
    const PostResult result = Post(system_trust, "https://127.0.0.1:" + server.port() + "/");
    EXPECT_EQ(result.status, 0);
    EXPECT_EQ(result.error, "TLS handshake failed");
  }
}

TEST(NotifyPostTest, AReceiverThatNeverAnswersEndsAtTheDeadline) {
  OneShotServer server([](tcp::socket& socket) {
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    beast::error_code ec;
    http::read(socket, buffer, request, ec);
    char byte;
    socket.read_some(asio::buffer(&byte, 1), ec);  // until the client gives up and closes
  });
  asio::ssl::context tls = MakeClientTlsContext();
  const auto started = std::chrono::steady_clock::now();
  const PostResult result = Post(tls, "http://127.0.0.1:" + server.port() + "/", Millis(300));
  EXPECT_EQ(result.status, 0);
  EXPECT_EQ(result.error, "timed out");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
}

TEST(NotifyPostTest, UrlsWithAHostAndNoCredentialsOnly) {
  const auto url = ParseNotifyUrl("https://[::1]:8443/a/b?c=d#frag");
  ASSERT_TRUE(url);
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, "8443");
  EXPECT_EQ(url->target, "/a/b?c=d");
  EXPECT_EQ(ParseNotifyUrl("http://hooks.example")->target, "/");
  EXPECT_EQ(ParseNotifyUrl("http://hooks.example")->port, "80");
  EXPECT_FALSE(ParseNotifyUrl("https://user:pw@hooks.example/"));
  EXPECT_FALSE(ParseNotifyUrl("ftp://hooks.example/"));
  EXPECT_FALSE(ParseNotifyUrl("http://:80/"));
  EXPECT_FALSE(ParseNotifyUrl("http://hooks.example:8x/"));
}

}  // namespace
}  // namespace callgate
