#include "http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <thread>

namespace callgate {
namespace {

namespace http = boost::beast::http;

// Sends `request` on a fresh loopback connection and returns all the server sent until it
// closed.
std::string Exchange(unsigned short port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return "connect failed";
  }
  (void)send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string received;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) {
    received.append(buffer, static_cast<std::size_t>(n));
  }
  close(fd);
  return received;
}

HttpResponse Ok() {
  HttpResponse res(http::status::ok, 11);
  res.body() = "ok";
  return res;
}

// Regression (found running the end-to-end suite under ASan): a Respond called from another
// thread kept its session alive for as long as the caller held it. The store holds a webhook's
// Respond until its writer clears a committed batch, so a session could end on the writer
// thread after its server was destroyed (a use after free at shutdown), and meanwhile counted
// against max_connections. Called once, a Respond now hands its session to the session's thread.
TEST(HttpServerTest, RespondCalledFromAnotherThreadAndStillHeldKeepsNoConnectionOpen) {
  ServerOptions options;
  options.port = 0;
  options.threads = 1;
  options.max_connections = 1;
  std::optional<Respond> held;  // as a store holds a completion after running it
  std::thread responder;
  HttpServer server(
      options,
      [&](HttpRequest&&, Respond respond) {
        if (held) return respond(Ok());
        held = std::move(respond);
        responder = std::thread([&] { (*held)(Ok()); });
      },
      [](http::status status) { return HttpResponse(status, 11); });
  const auto port = server.Listen();
  ASSERT_TRUE(port.ok()) << port.error();
  std::thread serving([&] { server.Run(); });

  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  EXPECT_TRUE(Exchange(*port, request).starts_with("HTTP/1.1 200 OK\r\n"));
  responder.join();
  // The first connection is closed; its Respond, still held, must not keep it counted.
  EXPECT_TRUE(Exchange(*port, request).starts_with("HTTP/1.1 200 OK\r\n"));

  server.Stop();
  serving.join();
}

}  // namespace
}  // namespace callgate
