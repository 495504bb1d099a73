// End-to-end tests of the HTTP transport (src/http/server.cc) through a raw socket client, so
// what is asserted is the bytes on the wire: timeouts (idle connection, unfinished request,
// stalled response write), connection management (Connection: close, HTTP/1.0 with and without
// keep-alive), response framing (exactly one Content-Length, equal to the body), responses
// larger than the socket buffers, pipelining to a slow reader, requests arriving in pieces,
// clients that go away mid-request or mid-response, request smuggling (ambiguous body framing),
// the bounds on every part of a request, the connection cap and accepting at the fd limit.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <simdjson.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/write.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "meta_payloads.h"
#include "test_server.h"

namespace callgate::testing {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// --- A raw HTTP/1.x client -----------------------------------------------------------------------

// How a connection stands, as the client sees it.
enum class End { kOpen, kEof, kReset };

const char* Name(End end) {
  switch (end) {
    case End::kOpen:
      return "open";
    case End::kEof:
      return "eof";
    case End::kReset:
      return "reset";
  }
  return "?";
}

struct RawResponse {
  std::string status_line;  // e.g. "HTTP/1.1 200 OK"
  int status = 0;
  std::vector<std::pair<std::string, std::string>> fields;  // in wire order, repeats kept
  std::string body;

  int Count(std::string_view name) const {
    return static_cast<int>(std::count_if(fields.begin(), fields.end(),
                                          [&](const auto& f) { return IEquals(f.first, name); }));
  }
  // The first field named `name`, or "" when there is none.
  std::string Field(std::string_view name) const {
    for (const auto& field : fields) {
      if (IEquals(field.first, name)) return field.second;
    }
    return "";
  }
  // The envelope's "code", or -1 when the body is not a JSON object with one.
  std::int64_t Code() const {
    simdjson::dom::parser parser;
    std::int64_t code = -1;
    simdjson::dom::element doc;
    if (parser.parse(body).get(doc) != simdjson::SUCCESS) return -1;
    if (doc["code"].get_int64().get(code) != simdjson::SUCCESS) return -1;
    return code;
  }
};

// A blocking client socket read through poll(), so that every read has a deadline.
class RawConnection {
 public:
  // `receive_buffer` (bytes), set before connecting, also keeps the advertised window small.
  explicit RawConnection(unsigned short port, int receive_buffer = 0) : socket_(io_) {
    socket_.open(tcp::v4());
    if (receive_buffer > 0) {
      socket_.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
    }
    Connect(port);
  }
  // A socket not connected yet (Connect connects it): everything that takes a descriptor on the
  // client's side is done.
  struct Unconnected {};
  explicit RawConnection(Unconnected) : socket_(io_) { socket_.open(tcp::v4()); }

  void Connect(unsigned short port) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    socket_.set_option(tcp::no_delay(true));
  }

  // Sends all of `bytes`; false once the connection is gone.
  bool Write(std::string_view bytes) {
    boost::system::error_code ec;
    asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), ec);
    return !ec;
  }

  // One response, its body framed by its (first) Content-Length — none for the response to a
  // HEAD request. nullopt when the connection ends or `timeout` passes before all of it arrived.
  std::optional<RawResponse> ReadResponse(Clock::duration timeout = seconds(5),
                                          bool to_head = false) {
    const auto deadline = Clock::now() + timeout;
    std::size_t head_end;
    while ((head_end = received_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(deadline)) return std::nullopt;
    }
    RawResponse res;
    const std::string_view head(received_.data(), head_end);
    std::size_t line_end = head.find("\r\n");
    res.status_line = std::string(head.substr(0, line_end));
    if (res.status_line.size() >= 12) {
      std::from_chars(res.status_line.data() + 9, res.status_line.data() + 12, res.status);
    }
    while (line_end != std::string_view::npos) {
      const std::size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      const std::string_view line = head.substr(
          start, line_end == std::string_view::npos ? std::string_view::npos : line_end - start);
      const std::size_t colon = line.find(':');
      std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
      res.fields.emplace_back(line.substr(0, colon), value);
    }
    std::size_t length = 0;
    const std::string content_length = res.Field("Content-Length");
    std::from_chars(content_length.data(), content_length.data() + content_length.size(), length);
    if (to_head) length = 0;
    const std::size_t total = head_end + 4 + length;
    while (received_.size() < total) {
      if (!Fill(deadline)) return std::nullopt;
    }
    res.body = received_.substr(head_end + 4, length);
    received_.erase(0, total);
    return res;
  }

  // Reads until the server ends the connection or `timeout` passes (then kOpen); what arrived
  // meanwhile is in received().
  End WaitForEnd(Clock::duration timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Fill(deadline)) {
    }
    return end_;
  }

  // Bytes received and not yet taken by ReadResponse.
  const std::string& received() const { return received_; }

  void ShutdownSend() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
  }
  void Close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
  // Closes with a reset (RST) rather than a FIN.
  void Abort() {
    boost::system::error_code ignored;
    socket_.set_option(asio::socket_base::linger(true, 0), ignored);
    socket_.close(ignored);
  }

 private:
  // Appends what arrives by `deadline`; false when nothing did (end_ tells whether it ended).
  bool Fill(Clock::time_point deadline) {
    if (end_ != End::kOpen) return false;
    pollfd pfd{socket_.native_handle(), POLLIN, 0};
    for (;;) {
      const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
      const int ready = ::poll(&pfd, 1, static_cast<int>(std::max<std::int64_t>(left, 0)));
      if (ready > 0) break;
      if (ready == 0 || errno != EINTR) return false;
    }
    char chunk[64 * 1024];
    boost::system::error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(chunk), ec);
    if (ec) {
      end_ = ec == asio::error::eof ? End::kEof : End::kReset;
      return false;
    }
    received_.append(chunk, n);
    return true;
  }

  asio::io_context io_;
  tcp::socket socket_;
  std::string received_;
  End end_ = End::kOpen;
};

std::string Get(const std::string& target, const std::string& fields = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + "\r\n";
}

constexpr char kSecret[] = "secret";  // the webhook signing secret
// A delivery with nothing in it: 200 when signed, 401 when not.
constexpr char kEmptyDelivery[] = R"({"object":"whatsapp_business_account","entry":[]})";

std::string PostDelivery(const std::string& fields, const std::string& body = kEmptyDelivery) {
  return "POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
         "Content-Type: application/json\r\n" +
         fields + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string Signature(const std::string& body = kEmptyDelivery) {
  return "X-Hub-Signature-256: " + SignMetaPayload(body, kSecret) + "\r\n";
}

// --- Responses larger than the socket buffers ----------------------------------------------------

// The subscription handshake echoes hub.challenge as the body: the one way to get an arbitrarily
// large response out of the API (its request is as large, hence the raised header limit).
constexpr char kVerifyToken[] = "verify-token";

// Larger than any send buffer Linux autotuning can give the server's socket (tcp_wmem's maximum),
// so writing it takes the partial-write-then-async_write path.
std::size_t LargerThanSendBuffer() {
  std::size_t low = 0, initial = 0, max = 0;
  std::ifstream("/proc/sys/net/ipv4/tcp_wmem") >> low >> initial >> max;
  return std::max<std::size_t>(max, 4 << 20) + (1 << 20);
}

// `size` letters without a short period, so a byte written twice, skipped or out of place shows.
std::string Pattern(std::size_t size, std::uint32_t seed) {
  std::string text(size, ' ');
  for (char& c : text) {
    seed = seed * 1664525u + 1013904223u;
    c = static_cast<char>('a' + (seed >> 24) % 26);
  }
  return text;
}

std::string ChallengeTarget(const std::string& challenge) {
  return std::string("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=") + kVerifyToken +
         "&hub.challenge=" + challenge;
}

// --- Timeouts ------------------------------------------------------------------------------------

// What a probe connection saw: how it ended, when (seconds after the probe's reference moment,
// or the cap if it did not), and whatever the server sent meanwhile.
struct Ending {
  End end = End::kOpen;
  double after = 0;
  std::string received;
};

Ending AwaitEnd(RawConnection& connection, Clock::time_point from, Clock::duration cap) {
  const End end = connection.WaitForEnd(from + cap - Clock::now());
  return {end, Seconds(Clock::now() - from), connection.received()};
}

// All the timeout scenarios run at once against one server, so the test takes about as long as
// the slowest of them. idle_timeout (1 s) and request_timeout (2 s) differ so that applying the
// wrong one shows; the sweep runs once a second, so a deadline is enforced up to 1 s late.
TEST(TransportTimeoutTest, IdleUnfinishedAndStalledConnectionsCloseOnTimeActiveOnesStayOpen) {
  const std::string challenge = Pattern(LargerThanSendBuffer(), 1);
  TestServer server({.meta_verify_token = kVerifyToken}, {.header_limit = challenge.size() + 4096,
                                                          .idle_timeout = seconds(1),
                                                          .request_timeout = seconds(2)});
  const unsigned short port = server.port();
  constexpr auto kCap = seconds(4);
  // The sweep ticks once a second from the server's start. Starting half-way between two ticks
  // puts each close the right timeout makes in the middle of its 1 s window, and each close the
  // wrong one would make (or one counted from the wrong moment) half a second outside the bounds.
  std::this_thread::sleep_for(milliseconds(500));
  const auto run = [](auto probe) { return std::async(std::launch::async, probe); };

  // Connected, never a byte: closed by the idle timeout.
  auto idle = run([&] {
    RawConnection c(port);
    return AwaitEnd(c, Clock::now(), kCap);
  });
  // One request answered, then silence: closed by the idle timeout, counted from the response.
  auto idle_after_response = run([&] {
    RawConnection c(port);
    c.Write(Get("/healthz"));
    const auto res = c.ReadResponse();
    if (!res || res->status != 200) return Ending{End::kOpen, -1, "no first response"};
    return AwaitEnd(c, Clock::now(), kCap);
  });
  // Half the headers, then silence (slow loris): closed by the request timeout, unanswered.
  auto partial = run([&] {
    RawConnection c(port);
    const auto start = Clock::now();
    c.Write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    return AwaitEnd(c, start, kCap);
  });
  // A byte every 200 ms of a request that would take 20 s: each byte must not extend the
  // request timeout.
  auto trickle = run([&] {
    RawConnection c(port);
    const std::string request = Get("/healthz", "X-Slow: " + std::string(60, 'a') + "\r\n");
    const auto start = Clock::now();
    for (const char byte : request) {
      c.Write(std::string_view(&byte, 1));  // fails once the server has gone; the wait shows it
      if (c.WaitForEnd(milliseconds(200)) != End::kOpen || Clock::now() - start > kCap) break;
    }
    return AwaitEnd(c, start, milliseconds(0));
  });
  // A request every 300 ms for 2.4 s, longer than the idle timeout and its sweep: never closed.
  struct Active {
    int answered = 0;
    int closing = 0;  // responses announcing Connection: close
    double span = 0;
    End end = End::kOpen;
  };
  auto active = run([&] {
    RawConnection c(port);
    Active result;
    const auto start = Clock::now();
    for (int i = 0; i < 8; ++i) {
      std::this_thread::sleep_for(milliseconds(300));
      if (!c.Write(Get("/healthz"))) break;
      const auto res = c.ReadResponse(seconds(2));
      if (!res || res->status != 200) break;
      ++result.answered;
      result.closing += res->Count("Connection");
    }
    result.span = Seconds(Clock::now() - start);
    result.end = c.WaitForEnd(milliseconds(0));
    return result;
  });
  // A response larger than the socket buffers to a client that does not read: the request
  // timeout bounds the write too, so by the time the client reads it was cut off.
  struct Stalled {
    bool whole = false;
    std::size_t bytes = 0;
    End end = End::kOpen;
  };
  auto stalled = run([&] {
    RawConnection c(port, /*receive_buffer=*/64 * 1024);
    const auto start = Clock::now();
    c.Write(Get(ChallengeTarget(challenge)));
    std::this_thread::sleep_until(start + milliseconds(3300));
    Stalled result;
    const auto res = c.ReadResponse(seconds(2));
    result.whole = res.has_value();
    result.bytes = res ? res->body.size() : c.received().size();
    result.end = c.WaitForEnd(milliseconds(500));
    return result;
  });

  const Ending i = idle.get();
  EXPECT_NE(i.end, End::kOpen) << "idle connection still open after " << i.after << " s";
  EXPECT_GE(i.after, 0.9) << "idle connection closed early (" << Name(i.end) << ")";
  EXPECT_LE(i.after, 2.2);
  EXPECT_EQ(i.received, "");

  const Ending r = idle_after_response.get();
  EXPECT_NE(r.end, End::kOpen) << "idle connection (after a response) still open: " << r.received;
  EXPECT_GE(r.after, 0.9) << "idle connection (after a response) closed early";
  EXPECT_LE(r.after, 2.2);
  EXPECT_EQ(r.received, "");

  const Ending p = partial.get();
  EXPECT_NE(p.end, End::kOpen) << "unfinished request still open after " << p.after << " s";
  EXPECT_GE(p.after, 1.9) << "unfinished request closed before the request timeout (" << Name(p.end)
                          << ")";
  EXPECT_LE(p.after, 3.2);
  EXPECT_EQ(p.received, "") << "an unfinished request was answered";

  const Ending t = trickle.get();
  EXPECT_NE(t.end, End::kOpen) << "trickled request still open after " << t.after << " s";
  EXPECT_GE(t.after, 1.9) << "trickled request closed before the request timeout";
  EXPECT_LE(t.after, 3.2) << "trickling extended the request timeout";
  EXPECT_EQ(t.received, "") << "an unfinished request was answered";

  const Active a = active.get();
  EXPECT_EQ(a.answered, 8) << "active connection lost after " << a.span << " s";
  EXPECT_GE(a.span, 2.4);
  EXPECT_EQ(a.closing, 0);
  EXPECT_EQ(a.end, End::kOpen);

  const Stalled s = stalled.get();
  EXPECT_FALSE(s.whole) << "a write stalled for 3.3 s was not cut off (request timeout 2 s)";
  EXPECT_LT(s.bytes, challenge.size());
  EXPECT_NE(s.end, End::kOpen);
}

// --- Connection management -----------------------------------------------------------------------

TEST(TransportConnectionTest, Http11WithoutConnectionFieldStaysOpen) {
  TestServer server;
  RawConnection c(server.port());
  for (int i = 0; i < 3; ++i) {
    c.Write(Get("/healthz"));
    const auto res = c.ReadResponse();
    ASSERT_TRUE(res) << i;
    EXPECT_EQ(res->status_line, "HTTP/1.1 200 OK");
    EXPECT_EQ(res->Count("Connection"), 0);  // keep-alive is HTTP/1.1's default
  }
  EXPECT_EQ(c.WaitForEnd(milliseconds(200)), End::kOpen);
  EXPECT_EQ(c.received(), "");
}

TEST(TransportConnectionTest, ConnectionCloseIsAnsweredWithCloseThenClosed) {
  TestServer server;
  RawConnection c(server.port());
  // The request pipelined after the closing one is never answered.
  c.Write(Get("/healthz", "Connection: close\r\n") + Get("/healthz"));
  const auto res = c.ReadResponse();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->Count("Connection"), 1);
  EXPECT_EQ(res->Field("Connection"), "close");
  EXPECT_EQ(c.WaitForEnd(seconds(2)), End::kEof);
  EXPECT_EQ(c.received(), "");
}

TEST(TransportConnectionTest, Http10WithoutKeepAliveIsAnsweredInHttp10ThenClosed) {
  TestServer server;
  RawConnection c(server.port());
  c.Write("GET /healthz HTTP/1.0\r\n\r\n");
  const auto res = c.ReadResponse();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status_line, "HTTP/1.0 200 OK");
  EXPECT_EQ(res->Field("Connection"), "close");
  EXPECT_EQ(res->body, R"({"status":"ok"})");
  EXPECT_EQ(c.WaitForEnd(seconds(2)), End::kEof);
  EXPECT_EQ(c.received(), "");
}

TEST(TransportConnectionTest, Http10KeepAliveKeepsTheConnection) {
  TestServer server;
  RawConnection c(server.port());
  for (int i = 0; i < 2; ++i) {
    c.Write("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    const auto res = c.ReadResponse();
    ASSERT_TRUE(res) << "request " << i << " on the kept connection";
    EXPECT_EQ(res->status_line, "HTTP/1.0 200 OK");
    EXPECT_EQ(res->Count("Connection"), 1);
    EXPECT_EQ(res->Field("Connection"), "keep-alive");
    EXPECT_EQ(res->body, R"({"status":"ok"})");
  }
  // Without keep-alive the next one closes it.
  c.Write("GET /nope HTTP/1.0\r\n\r\n");
  const auto res = c.ReadResponse();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status_line, "HTTP/1.0 404 Not Found");
  EXPECT_EQ(res->Field("Connection"), "close");
  EXPECT_EQ(c.WaitForEnd(seconds(2)), End::kEof);
}

// --- Framing -------------------------------------------------------------------------------------

struct Exchange {
  std::string name;
  std::string request;
  int status = 0;
  std::int64_t code = 0;  // the envelope's; 0: not an envelope
  std::string allow;      // the Allow field a 405 carries
  std::string body;       // the exact body, when known
};

// One of each kind of answer the API gives (for a server with kSecret and kVerifyToken).
std::vector<Exchange> Exchanges() {
  return {
      {"health", Get("/healthz"), 200, 0, "", R"({"status":"ok"})"},
      {"unknown path", Get("/api/v1/nothing-here"), 404, 1300},
      {"405 health", "DELETE /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, 2001, "GET"},
      {"405 webhooks", "PUT /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405, 2001,
       "GET, POST"},
      {"unsigned webhook", PostDelivery(""), 401, 1200},
      {"signed webhook", PostDelivery(Signature()), 200},
      {"bad verify token", Get("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=x"), 403,
       1201},
      {"challenge", Get(ChallengeTarget("challenge-42")), 200, 0, "", "challenge-42"},
  };
}

void ExpectFraming(const RawResponse& res, const Exchange& x) {
  SCOPED_TRACE(x.name);
  EXPECT_EQ(res.status, x.status) << res.body;
  EXPECT_EQ(res.Count("Content-Length"), 1);
  EXPECT_EQ(res.Field("Content-Length"), std::to_string(res.body.size()));
  EXPECT_LE(res.Count("Connection"), 1);
  if (x.code != 0) {
    EXPECT_EQ(res.Code(), x.code) << res.body;
    EXPECT_EQ(res.Field("Content-Type"), "application/json");
  }
  if (!x.allow.empty()) {
    EXPECT_EQ(res.Count("Allow"), 1);
    EXPECT_EQ(res.Field("Allow"), x.allow);
  }
  if (!x.body.empty()) {
    EXPECT_EQ(res.body, x.body);
  }
}

// Each response on its own connection, read to the server's close: the bytes after the head
// must be exactly Content-Length of them (more would be left over, fewer would end it early).
TEST(TransportFramingTest, EveryResponseHasOneContentLengthEqualToItsBody) {
  TestServer server({.meta_app_secrets = {kSecret}, .meta_verify_token = kVerifyToken});
  std::vector<Exchange> exchanges = Exchanges();
  for (Exchange& x : exchanges) {
    x.request.insert(x.request.find("\r\n") + 2, "Connection: close\r\n");
  }
  // The transport's own rejections: closed without being asked (the stream can't be trusted).
  exchanges.push_back({"malformed", "NOT HTTP AT ALL\r\n\r\n", 400, 1000});
  exchanges.push_back({"headers too large",
                       Get("/healthz", "X-Big: " + std::string(16 * 1024, 'a') + "\r\n"), 431,
                       1010});
  exchanges.push_back({"body too large",
                       "POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Content-Length: 2000000\r\n\r\n",
                       413, 1010});
  for (const Exchange& x : exchanges) {
    RawConnection c(server.port());
    c.Write(x.request);
    const auto res = c.ReadResponse();
    ASSERT_TRUE(res) << x.name << ": no whole response; received: " << c.received();
    ExpectFraming(*res, x);
    EXPECT_EQ(res->Field("Connection"), "close") << x.name;
    EXPECT_NE(c.WaitForEnd(seconds(2)), End::kOpen) << x.name;
    EXPECT_EQ(c.received(), "") << x.name << ": bytes after Content-Length";
  }
}

// The same exchanges pipelined on one kept connection: each response starts right where the
// previous one's Content-Length says it ends.
TEST(TransportFramingTest, PipelinedResponsesFollowEachOtherExactly) {
  TestServer server({.meta_app_secrets = {kSecret}, .meta_verify_token = kVerifyToken});
  const std::vector<Exchange> exchanges = Exchanges();
  std::string bytes;
  for (const Exchange& x : exchanges) bytes += x.request;
  RawConnection c(server.port());
  c.Write(bytes + bytes);
  for (int round = 0; round < 2; ++round) {
    for (const Exchange& x : exchanges) {
      const auto res = c.ReadResponse();
      ASSERT_TRUE(res) << x.name << ": no whole response; received: " << c.received();
      ASSERT_TRUE(res->status_line.starts_with("HTTP/1.1 ")) << x.name << ": " << res->status_line;
      ExpectFraming(*res, x);
      EXPECT_EQ(res->Count("Connection"), 0) << x.name;
    }
  }
  EXPECT_EQ(c.WaitForEnd(milliseconds(200)), End::kOpen);
  EXPECT_EQ(c.received(), "") << "bytes after the last response";
}

// A response to HEAD has no body (RFC 9112 §6.3), whatever its status; a body sent anyway is
// read as the start of the next response (here the 405 envelope for HEAD /healthz).
TEST(TransportFramingTest, ResponseToHeadHasNoBody) {
  TestServer server;
  RawConnection c(server.port());
  c.Write("HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + Get("/healthz"));
  const auto head = c.ReadResponse(seconds(5), /*to_head=*/true);
  ASSERT_TRUE(head);
  const auto next = c.ReadResponse();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(next->body, R"({"status":"ok"})");
}

// --- Writes larger than the socket buffers -------------------------------------------------------

// The first send takes what the socket buffers hold, async_write the rest while the client is
// slow to read; the body must arrive whole and in order, and the connection stay usable.
TEST(TransportWriteTest, ResponseLargerThanTheSocketBuffersArrivesWhole) {
  const std::string challenge = Pattern(LargerThanSendBuffer(), 2);
  TestServer server({.meta_verify_token = kVerifyToken}, {.header_limit = challenge.size() + 4096});
  RawConnection c(server.port(), /*receive_buffer=*/64 * 1024);
  c.Write(Get(ChallengeTarget(challenge)) + Get("/healthz"));
  std::this_thread::sleep_for(milliseconds(300));
  const auto res = c.ReadResponse(seconds(10));
  ASSERT_TRUE(res) << "received " << c.received().size() << " bytes";
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->Count("Content-Length"), 1);
  EXPECT_EQ(res->Field("Content-Length"), std::to_string(challenge.size()));
  EXPECT_TRUE(res->body == challenge) << "the body differs from the challenge echoed";
  const auto next = c.ReadResponse();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(next->body, R"({"status":"ok"})");
}

// 500 requests in one write, alternately /healthz (200) and an unknown path (404), with one
// response larger than the socket buffers in the middle so that writes wait for the reader and
// later requests wait in the server's buffer; the client starts reading only after a while. All
// are answered, in order, on the one connection.
TEST(TransportWriteTest, ManyPipelinedRequestsAreAnsweredInOrderToASlowReader) {
  const std::string challenge = Pattern(LargerThanSendBuffer(), 3);
  TestServer server({.meta_verify_token = kVerifyToken}, {.header_limit = challenge.size() + 4096});
  constexpr int kRequests = 500;
  constexpr int kLarge = 250;
  std::string bytes;
  for (int i = 0; i < kRequests; ++i) {
    bytes += i == kLarge ? Get(ChallengeTarget(challenge)) : Get(i % 2 ? "/nope" : "/healthz");
  }
  RawConnection c(server.port(), /*receive_buffer=*/64 * 1024);
  // The server reads no more requests while a response waits for the reader: write on the side.
  std::thread writer([&] { c.Write(bytes); });
  std::this_thread::sleep_for(milliseconds(300));
  int answered = 0;
  for (int i = 0; i < kRequests; ++i) {
    const auto res = c.ReadResponse(seconds(10));
    if (!res) break;
    ++answered;
    if (i == kLarge) {
      EXPECT_EQ(res->status, 200);
      EXPECT_TRUE(res->body == challenge) << "response " << i << " is not the large one";
    } else {
      EXPECT_EQ(res->status, i % 2 ? 404 : 200) << "response " << i;
    }
    EXPECT_EQ(res->Field("Content-Length"), std::to_string(res->body.size())) << i;
  }
  writer.join();
  EXPECT_EQ(answered, kRequests);
  c.Write(Get("/healthz"));
  const auto last = c.ReadResponse();
  ASSERT_TRUE(last) << "connection not usable after the pipeline";
  EXPECT_EQ(last->status, 200);
}

// A signed delivery with an event is answered only after the store's writer thread has
// committed it, so its response comes from another thread (posted to the connection's); the
// requests pipelined behind it wait for it and keep their order.
TEST(TransportWriteTest, ResponsesGivenLaterFromAnotherThreadKeepThePipelineOrder) {
  TestServer server({.meta_app_secrets = {kSecret}});
  const meta::Business business{"106540352242922", "15550783881"};
  server.AddTenant("acct-a", "sub-a", "chan-a", business.phone_number_id);
  const auto delivery = [&](const std::string& wamid) {
    const std::string body = meta::Payload(
        business,
        meta::PermissionReply{
            .wamid = wamid, .from = "6591000001", .at = server.Now(), .response = "reject"});
    return PostDelivery(Signature(body), body);
  };
  RawConnection c(server.port());
  c.Write(delivery("wamid.1") + Get("/nope") + Get("/healthz") + delivery("wamid.2") +
          delivery("wamid.1") + Get("/healthz", "Connection: close\r\n"));
  const std::vector<std::pair<int, std::string>> expected = {
      {200, R"("applied":1,)"}, {404, R"("code":1300,)"},   {200, R"("status":"ok")"},
      {200, R"("applied":1,)"}, {200, R"("duplicate":1,)"}, {200, R"("status":"ok")"}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto res = c.ReadResponse();
    ASSERT_TRUE(res) << "response " << i << "; received: " << c.received();
    EXPECT_EQ(res->status, expected[i].first) << i << ": " << res->body;
    EXPECT_NE(res->body.find(expected[i].second), std::string::npos) << i << ": " << res->body;
    EXPECT_EQ(res->Field("Content-Length"), std::to_string(res->body.size())) << i;
  }
  EXPECT_EQ(c.WaitForEnd(seconds(2)), End::kEof);
  EXPECT_EQ(c.received(), "");
}

// Responses given inside an HttpServer::ResponseBatch (as the store's writer gives a commit's)
// are held until the batch ends, then all written, each to its own connection, on connections
// spread over both server threads.
TEST(TransportWriteTest, ResponsesGivenInABatchAreWrittenWhenItEnds) {
  constexpr int kConnections = 6;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, Respond>> held;  // target, respond
  ServerOptions options;
  options.port = 0;
  options.threads = 2;
  HttpServer server(
      options,
      [&](HttpRequest&& request, Respond respond) {
        std::lock_guard lock(mu);
        held.emplace_back(std::string(request.target()), std::move(respond));
        cv.notify_all();
      },
      [](boost::beast::http::status status) { return HttpResponse(status, 11); });
  ASSERT_TRUE(server.Listen().ok());
  std::thread serving([&] { server.Run(); });

  std::vector<std::unique_ptr<RawConnection>> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<RawConnection>(server.port()));
    clients.back()->Write(Get("/c" + std::to_string(i)));
  }
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, seconds(5), [&] { return held.size() == kConnections; }));
  }
  {
    HttpServer::ResponseBatch batch;
    for (auto& [target, respond] : held) {
      HttpResponse res(boost::beast::http::status::ok, 11);
      res.body() = "answer to " + target;
      respond(std::move(res));
    }
    for (auto& client : clients) {
      EXPECT_EQ(client->WaitForEnd(milliseconds(100)), End::kOpen);
      EXPECT_EQ(client->received(), "") << "written before the batch ended";
    }
  }
  for (int i = 0; i < kConnections; ++i) {
    const auto res = clients[i]->ReadResponse();
    ASSERT_TRUE(res) << i;
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "answer to /c" + std::to_string(i));
  }
  held.clear();  // the connections they hold go before the server
  server.Stop();
  serving.join();
}

// --- Requests arriving in pieces -----------------------------------------------------------------

std::string ToHex(std::size_t n) {
  char digits[16];
  const auto end = std::to_chars(digits, digits + sizeof digits, n, 16).ptr;
  return std::string(digits, end);
}

// Each piece is a separate read on the server; the parser must assemble them.
void WriteInPieces(RawConnection& c, const std::vector<std::string>& pieces) {
  for (const std::string& piece : pieces) {
    c.Write(piece);
    std::this_thread::sleep_for(milliseconds(15));
  }
}

TEST(TransportReadTest, BodyArrivingInSeveralWritesIsParsedWhole) {
  TestServer server({.meta_app_secrets = {kSecret}});
  RawConnection c(server.port());
  const std::string body = kEmptyDelivery;
  // The request up to its body.
  const auto head = [&](const std::string& fields) {
    const std::string request = PostDelivery(fields);
    return request.substr(0, request.size() - body.size());
  };
  // Unsigned: the webhook's own 401, not the transport's 400 for a malformed request.
  WriteInPieces(c, {head(""), body.substr(0, 10), body.substr(10, 20), body.substr(30)});
  auto res = c.ReadResponse();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401) << res->body;
  EXPECT_EQ(res->Code(), 1200);
  // Signed over the whole body: the signature verifies only if the handler saw all of it.
  WriteInPieces(c, {head(Signature()), body.substr(0, 1), body.substr(1, body.size() - 2),
                    body.substr(body.size() - 1)});
  res = c.ReadResponse();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  // Chunked, the chunks and their size lines cut across the writes.
  const std::string chunked_head =
      "POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n" +
      Signature() + "\r\n";
  WriteInPieces(c, {chunked_head + "a\r\n" + body.substr(0, 4),
                    body.substr(4, 6) + "\r\n" + ToHex(body.size() - 10),
                    "\r\n" + body.substr(10) + "\r\n0\r", "\n\r\n"});
  res = c.ReadResponse();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  // Still in step: the next request is answered as itself.
  c.Write(Get("/healthz"));
  res = c.ReadResponse();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, R"({"status":"ok"})");
}

TEST(TransportReadTest, HeadersArrivingInPiecesAreParsedWhole) {
  TestServer server;
  RawConnection c(server.port());
  WriteInPieces(c, {"GE", "T /hea", "lthz HTTP/1.1\r", "\nHost: 127.0",
                    ".0.1\r\nConnection:", " close\r\n", "\r", "\n"});
  const auto res = c.ReadResponse();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->Field("Connection"), "close");
  EXPECT_EQ(c.WaitForEnd(seconds(2)), End::kEof);
}

// --- Clients that go away ------------------------------------------------------------------------

// None of these may take the server down or wedge it: a connection opened before them and a new
// one after are both served.
TEST(TransportAbortTest, ClientsLeavingMidRequestOrMidResponseDoNotHurtTheServer) {
  const std::string challenge = Pattern(LargerThanSendBuffer(), 4);
  TestServer server({.meta_verify_token = kVerifyToken}, {.header_limit = challenge.size() + 4096});
  RawConnection before(server.port());
  const std::string post_head =
      "POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n";
  {  // half the headers, then a FIN
    RawConnection c(server.port());
    c.Write("GET /healthz HTTP/1.1\r\nHo");
    c.Close();
  }
  {  // half the headers, then a reset
    RawConnection c(server.port());
    c.Write("GET /healthz HTTP/1.1\r\nHo");
    std::this_thread::sleep_for(milliseconds(20));
    c.Abort();
  }
  {  // the headers and part of the body, then a FIN
    RawConnection c(server.port());
    c.Write(post_head + std::string(40, 'x'));
    std::this_thread::sleep_for(milliseconds(20));
    c.Close();
  }
  {  // many requests, gone before their responses are written
    RawConnection c(server.port());
    std::string bytes;
    for (int i = 0; i < 500; ++i) bytes += Get("/nope");
    c.Write(bytes);
    c.Abort();
  }
  {  // a response larger than the socket buffers, reader gone mid-way (async_write fails)
    RawConnection c(server.port(), /*receive_buffer=*/64 * 1024);
    c.Write(Get(ChallengeTarget(challenge)));
    const auto head = c.ReadResponse(seconds(5), /*to_head=*/true);
    ASSERT_TRUE(head);
    std::this_thread::sleep_for(milliseconds(50));
    c.Abort();
  }
  std::this_thread::sleep_for(milliseconds(100));
  before.Write(Get("/healthz"));
  auto res = before.ReadResponse();
  ASSERT_TRUE(res) << "a connection opened before the aborts is no longer served";
  EXPECT_EQ(res->status, 200);
  RawConnection after(server.port());
  after.Write(Get("/healthz"));
  res = after.ReadResponse();
  ASSERT_TRUE(res) << "a new connection is not served";
  EXPECT_EQ(res->status, 200);
}

// A request cut short by the client's half-close (it reads on) cannot be completed: the server
// answers 400 in the envelope, says it closes, and closes.
TEST(TransportAbortTest, RequestCutShortByHalfCloseGets400AndClose) {
  TestServer server;
  for (const std::string& partial :
       {std::string("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        std::string("POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Content-Length: 100\r\n\r\n{\"object\"")}) {
    RawConnection c(server.port());
    c.Write(partial);
    c.ShutdownSend();
    const auto res = c.ReadResponse();
    ASSERT_TRUE(res) << "received: " << c.received();
    EXPECT_EQ(res->status, 400);
    EXPECT_EQ(res->Code(), 1000);
    EXPECT_EQ(res->Field("Connection"), "close");
    EXPECT_EQ(res->Field("Content-Length"), std::to_string(res->body.size()));
    EXPECT_EQ(c.WaitForEnd(seconds(2)), End::kEof);
  }
}

// --- Request smuggling ---------------------------------------------------------------------------

// An envelope refusal that closes the connection.
void ExpectRefusedAndClosed(RawConnection& c, const std::optional<RawResponse>& res,
                            const std::string& name, int status, std::int64_t code) {
  SCOPED_TRACE(name);
  ASSERT_TRUE(res) << "no answer; received: " << c.received().substr(0, 200);
  EXPECT_EQ(res->status, status) << res->body;
  EXPECT_EQ(res->Code(), code) << res->body;
  EXPECT_EQ(res->Field("Connection"), "close");
  EXPECT_NE(c.WaitForEnd(seconds(2)), End::kOpen);
  EXPECT_EQ(c.received(), "") << "something answered after the refusal";
}

// RFC 9112 §6.1 and §6.3: a Transfer-Encoding whose final coding is not `chunked`, one with a
// Content-Length, one in HTTP/1.0, or a Content-Length repeated or not a number leaves the body's
// length to the reader's choice; another reader (a proxy in front) may choose otherwise and send
// the body on as a request of its own. Each gets 400 and the connection closes, nothing of the body
// read as a request. (Beast alone ignored the body of a `gzip`, `identity`, `xchunked` or `chunked,
// gzip` request and answered the GET inside it.)
TEST(TransportFramingTest, AmbiguousOrUnsupportedBodyFramingGets400AndCloseNothingOfTheBodyServed) {
  TestServer server({.meta_app_secrets = {kSecret}});
  const std::string smuggled = Get("/healthz");  // answered 200 if read as a request
  const std::string chunked_smuggled = "0\r\n\r\n" + smuggled;
  const auto length = [](const std::string& body) {
    return "Content-Length: " + std::to_string(body.size()) + "\r\n";
  };
  struct Case {
    std::string name;
    std::string fields;
    std::string body;
    std::string version = "HTTP/1.1";
  };
  const std::vector<Case> cases = {
      {"TE gzip", "Transfer-Encoding: gzip\r\n", smuggled},
      {"TE chunked, gzip", "Transfer-Encoding: chunked, gzip\r\n", smuggled},
      {"TE xchunked", "Transfer-Encoding: xchunked\r\n", smuggled},
      {"TE identity", "Transfer-Encoding: identity\r\n", smuggled},
      {"TE gzip, chunked (a coding not decoded)", "Transfer-Encoding: gzip, chunked\r\n",
       chunked_smuggled},
      {"TE chunked, chunked", "Transfer-Encoding: chunked, chunked\r\n", smuggled},
      {"TE chunked twice", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
       chunked_smuggled},
      {"TE empty", "Transfer-Encoding: \r\n", smuggled},
      {"TE gzip + CL", "Transfer-Encoding: gzip\r\n" + length(smuggled), smuggled},
      {"TE chunked + CL", "Transfer-Encoding: chunked\r\n" + length(chunked_smuggled),
       chunked_smuggled},
      {"CL + TE chunked", length(chunked_smuggled) + "Transfer-Encoding: chunked\r\n",
       chunked_smuggled},
      {"two different CLs", "Content-Length: 0\r\n" + length(smuggled), smuggled},
      {"two equal CLs", length(smuggled) + length(smuggled), smuggled},
      {"CL list", "Content-Length: 0, 0\r\n", smuggled},
      {"CL with a sign", "Content-Length: +0\r\n", smuggled},
      {"TE chunked in HTTP/1.0", "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n",
       chunked_smuggled, "HTTP/1.0"},
  };
  for (const Case& x : cases) {
    RawConnection c(server.port());
    c.Write("POST /webhooks/whatsapp " + x.version + "\r\nHost: 127.0.0.1\r\n" + x.fields + "\r\n" +
            x.body);
    const auto res = c.ReadResponse(seconds(2));
    ExpectRefusedAndClosed(c, res, x.name, 400, 1000);
  }
}

// --- Every part of a request is bounded ----------------------------------------------------------

constexpr char kChunkedHead[] =
    "POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";

// Beast buffers a chunk-size line until its CRLF, however long: one connection sending an endless
// one grew the server by gigabytes until the request timeout. Now the line is cut off at
// chunk_line_limit (4 KiB), so the answer comes while the client is still sending.
TEST(TransportLimitsTest, EndlessChunkSizeLineOrExtensionGets400WhileItIsStillArriving) {
  TestServer server;
  const std::string endless(64 * 1024, 'a');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"chunk extension", "1;ext=" + endless},
      {"chunk size", "1" + std::string(64 * 1024, '0')},
      {"last chunk's extension", "0;ext=" + endless},
      {"chunk extension, 2nd chunk", "1\r\nx\r\n2;" + endless},
      // Whole, in one write: refused by its length, not by how it arrived.
      {"complete but too long extension", "1;" + std::string(5000, 'a') + "\r\nx\r\n0\r\n\r\n"},
  };
  for (const auto& [name, bytes] : cases) {
    RawConnection c(server.port());
    c.Write(kChunkedHead);
    c.Write(bytes);  // fails once the server has closed; the answer is on its way
    const auto res = c.ReadResponse(seconds(2));
    ExpectRefusedAndClosed(c, res, name, 400, 1000);
  }
}

std::string ChunkedDelivery(const std::string& fields, const std::string& trailer) {
  const std::string body = kEmptyDelivery;
  return "POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: chunked\r\n" +
         fields + "\r\n" + ToHex(body.size()) + "\r\n" + body + "\r\n0\r\n" + trailer;
}

// The request line, the header fields and the trailer fields together stay within header_limit
// (8 KiB), however they arrive: Beast buffered trailers without limit, and bounded the request
// line and the header fields each on its own.
TEST(TransportLimitsTest, RequestLineHeaderAndTrailerFieldsTogetherGet431BeyondTheHeaderLimit) {
  TestServer server({.meta_app_secrets = {kSecret}});
  std::string trailers;
  while (trailers.size() < 12 * 1024) trailers += "X-Trailer: abcdefghijklmnop\r\n";
  std::string endless_trailers;
  while (endless_trailers.size() < 64 * 1024) endless_trailers += "X-Trailer: abcdefghijklmnop\r\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"endless trailer section", ChunkedDelivery(Signature(), endless_trailers)},
      {"endless trailer field",
       ChunkedDelivery(Signature(), "X-Trailer: " + std::string(64 * 1024, 'a'))},
      {"complete trailer section over the limit", ChunkedDelivery(Signature(), trailers + "\r\n")},
      {"request line and header fields, each under the limit",
       Get("/" + std::string(6000, 'a'), "X-Pad: " + std::string(3000, 'b') + "\r\n")},
  };
  for (const auto& [name, bytes] : cases) {
    RawConnection c(server.port());
    c.Write(bytes);
    const auto res = c.ReadResponse(seconds(2));
    ExpectRefusedAndClosed(c, res, name, 431, 1010);
  }
}

// RFC 9110 §6.5.1: trailer fields are not merged into the header fields (Beast adds them to the
// request's fields): a signature sent as a trailer signs nothing. Trailers within the limit are
// read and the connection stays in step.
TEST(TransportLimitsTest, TrailerFieldsAreReadButNotTakenAsHeaderFields) {
  TestServer server({.meta_app_secrets = {kSecret}});
  RawConnection c(server.port());
  c.Write(ChunkedDelivery("", Signature() + "\r\n"));
  auto res = c.ReadResponse();
  ASSERT_TRUE(res) << c.received();
  EXPECT_EQ(res->status, 401) << res->body;
  EXPECT_EQ(res->Code(), 1200);
  c.Write(ChunkedDelivery(Signature(), "X-Note: fine\r\nX-Other: too\r\n\r\n") + Get("/healthz"));
  res = c.ReadResponse();
  ASSERT_TRUE(res) << c.received();
  EXPECT_EQ(res->status, 200) << res->body;
  res = c.ReadResponse();
  ASSERT_TRUE(res) << c.received();
  EXPECT_EQ(res->body, R"({"status":"ok"})");
}

// --- Connection cap and accepting at the fd limit ------------------------------------------------

TEST(TransportConnectionTest, ConnectionsBeyondMaxConnectionsAreClosedAtOnceTheOthersServed) {
  TestServer server({}, {.max_connections = 2});
  const auto served = [](RawConnection& c, Clock::duration timeout = seconds(2)) {
    if (!c.Write(Get("/healthz"))) return false;
    const auto res = c.ReadResponse(timeout);
    return res && res->status == 200;
  };
  RawConnection first(server.port());
  RawConnection second(server.port());
  ASSERT_TRUE(served(first));
  ASSERT_TRUE(served(second));
  RawConnection third(server.port());
  const auto start = Clock::now();
  third.Write(Get("/healthz"));  // fails if the close came first
  EXPECT_NE(third.WaitForEnd(seconds(2)), End::kOpen) << "a third connection was kept";
  EXPECT_LT(Seconds(Clock::now() - start), 0.5) << "the third connection was not closed at once";
  EXPECT_EQ(third.received(), "");
  EXPECT_TRUE(served(first));
  EXPECT_TRUE(served(second));
  // Once one leaves (the server counts it gone when it reads the close), a new one is served.
  first.Close();
  bool next_served = false;
  for (const auto deadline = Clock::now() + seconds(2); !next_served && Clock::now() < deadline;) {
    RawConnection next(server.port());
    next_served = served(next, milliseconds(500));
    if (!next_served) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(next_served) << "no new connection served after one of the two left";
}

// Seconds of CPU `thread` has used.
double CpuSeconds(std::thread& thread) {
  clockid_t clock;
  timespec ts{};
  if (pthread_getcpuclockid(thread.native_handle(), &clock) != 0 ||
      clock_gettime(clock, &ts) != 0) {
    return -1;
  }
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Lowers this process's RLIMIT_NOFILE to a little above the descriptors it has and holds every
// descriptor left (server and clients share them, as they share the process); gives them and the
// limit back when it goes.
class DescriptorsExhausted {
 public:
  DescriptorsExhausted() {
    getrlimit(RLIMIT_NOFILE, &saved_);
    int highest = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
      highest = std::max(highest, std::stoi(entry.path().filename().string()));
    }
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(highest) + 32;
    setrlimit(RLIMIT_NOFILE, &lowered);
    Take();
  }
  ~DescriptorsExhausted() {
    Release(held_.size());
    setrlimit(RLIMIT_NOFILE, &saved_);
  }
  DescriptorsExhausted(const DescriptorsExhausted&) = delete;
  DescriptorsExhausted& operator=(const DescriptorsExhausted&) = delete;

  // Opens descriptors until none is left (EMFILE).
  void Take() {
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) held_.push_back(fd);
  }
  void Release(std::size_t count) {
    for (; count > 0 && !held_.empty(); --count) {
      ::close(held_.back());
      held_.pop_back();
    }
  }
  std::size_t held() const { return held_.size(); }

 private:
  rlimit saved_{};
  std::vector<int> held_;
};

// With no descriptor left, accept fails (EMFILE) while the connection stays queued: accepting again
// at once spun a core (11.5k failing accepts in 3 s). Accepting must wait instead, the connections
// already open be served meanwhile, and the queued one be served once descriptors are free again.
TEST(TransportAcceptTest, AtTheFdLimitAcceptingBacksOffInsteadOfSpinningAndResumes) {
  ServerOptions options;
  options.port = 0;
  options.threads = 1;  // all of the server on `serving`, whose CPU time is measured
  HttpServer server(
      options,
      [](HttpRequest&& request, Respond respond) {
        HttpResponse res(boost::beast::http::status::ok, 11);
        res.body() = "served " + std::string(request.target());
        respond(std::move(res));
      },
      [](boost::beast::http::status status) { return HttpResponse(status, 11); });
  ASSERT_TRUE(server.Listen().ok());
  std::thread serving([&] { server.Run(); });
  RawConnection before(server.port());
  before.Write(Get("/before"));
  auto res = before.ReadResponse();
  ASSERT_TRUE(res);
  {
    DescriptorsExhausted exhausted;
    ASSERT_GT(exhausted.held(), 8u);
    exhausted.Release(8);  // room for the client's socket (and its io_context's descriptors)
    RawConnection queued(RawConnection::Unconnected{});
    exhausted.Take();
    queued.Connect(server.port());  // queued by the kernel; the server has no descriptor for it
    queued.Write(Get("/queued"));
    std::this_thread::sleep_for(milliseconds(100));
    const double cpu_before = CpuSeconds(serving);
    std::this_thread::sleep_for(seconds(1));
    const double cpu = CpuSeconds(serving) - cpu_before;
    EXPECT_LT(cpu, 0.1) << "the server's thread used " << cpu << " s of CPU in 1 s at the fd limit";
    before.Write(Get("/before"));
    res = before.ReadResponse(seconds(2));
    ASSERT_TRUE(res) << "a connection open before the fd limit was not served at it";
    EXPECT_EQ(res->body, "served /before");
    EXPECT_EQ(queued.received(), "");
    exhausted.Release(exhausted.held());
    res = queued.ReadResponse(seconds(3));
    ASSERT_TRUE(res) << "the queued connection was not served once descriptors were free";
    EXPECT_EQ(res->body, "served /queued");
  }
  server.Stop();
  serving.join();
}

}  // namespace
}  // namespace callgate::testing
