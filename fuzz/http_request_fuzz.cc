// http_request_fuzz: the real HTTP request path, bytes in -> responses or a close. One HttpServer
// (src/http, one thread, body limit lowered to 4 KiB so 413 is reachable) serves the Api
// (src/api) over a MemoryStore with one tenant and a fixed key, on loopback, once per process;
// each input is written on a fresh connection, which is then half-closed and read to its end.
// Asserts: the server answers or closes, never hangs; what it sends is a sequence of well-formed
// HTTP/1.x responses (status line, fields, exactly one Content-Length, framed body); a non-empty
// input gets at least one response; nothing follows a `Connection: close` response, which every
// 413/431 carries; every 4xx/5xx body is the error envelope {"code","message","errorId",
// "timestamp"}. CALLGATE_FUZZ_ECHO=1 prints what the server sent.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "api/api.h"
#include "http/server.h"
#include "store/memory/memory_store.h"
#include "tenants/directory.h"

namespace callgate {
namespace {

// The fixed key the seeds carry: cgk_<key id>_<secret>.
constexpr std::string_view kKeyId = "f0f0f0f0f0f0f0f0";
constexpr std::string_view kSecret = "fuzzsecretfuzzsecretfuzzsecretfuzzsecretfuz";
constexpr std::size_t kBodyLimit = 4 * 1024;

[[noreturn]] void Fail(const std::string& what, std::string_view received) {
  std::fprintf(stderr, "http_request_fuzz: %s\n--- received ---\n%.*s\n", what.c_str(),
               static_cast<int>(received.size()), received.data());
  std::abort();
}

// The service, set up once; never torn down (its thread serves until the process exits).
struct Service {
  MemoryStore store;
  TenantDirectory tenants{store};
  std::unique_ptr<Api> api;
  std::unique_ptr<HttpServer> server;
  unsigned short port = 0;

  Service() {
    const Instant now = FromUnixSeconds(1'769'933'550);  // 2026-02-01T08:12:30Z
    (void)store.CreateAccount({"acct", now});
    (void)store.CreateSubaccount({"sub", "acct", now});
    (void)store.CreateChannel(
        {"chan", "sub", "100000000000001", true, LimitsProfile::kProduction, now});
    (void)store.CreateChannel(
        {"sandbox", "sub", "100000000000002", false, LimitsProfile::kSandbox, now});
    ApiKey key{std::string(kKeyId), "acct", {}, now, std::nullopt};
    SHA256(reinterpret_cast<const unsigned char*>(kSecret.data()), kSecret.size(),
           key.secret_hash.data());
    (void)store.AddApiKey(key);
    if (!tenants.Start()) Fail("cannot load tenants", {});
    api = std::make_unique<Api>(
        ApiStores{store, store, tenants}, [now] { return now; },
        ApiOptions{.meta_app_secrets = {"fuzz-app-secret"},
                   .meta_verify_token = "fuzz-verify-token"});
    ServerOptions options;
    options.port = 0;
    options.threads = 1;
    options.body_limit = kBodyLimit;
    server = std::make_unique<HttpServer>(
        options,
        [this](HttpRequest&& request, Respond respond) {
          api->Handle(std::move(request), std::move(respond));
        },
        [this](boost::beast::http::status status) { return api->Reject(status); });
    auto listening = server->Listen();
    if (!listening) Fail("cannot listen: " + listening.error(), {});
    port = *listening;
    std::thread([this] { server->Run(); }).detach();
  }
};

// The errno of the last exchange's final recv (0: it ended with EOF), for failure reports.
int last_recv_error = 0;

// Writes `input` on a fresh connection, half-closes it and returns all the server sent.
std::string Exchange(unsigned short port, std::string_view input) {
  last_recv_error = 0;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) Fail("socket failed", {});
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // libFuzzer's timeout alarm (SIGALRM) interrupts blocking calls: each is resumed on EINTR.
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    pollfd connecting{fd, POLLOUT, 0};
    int error = errno;
    socklen_t error_size = sizeof error;
    if (error == EINTR) {
      while (poll(&connecting, 1, -1) < 0 && errno == EINTR) {
      }
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_size);
    }
    if (error != 0) Fail(std::string("connect failed: ") + std::strerror(error), {});
  }
  const timeval timeout{15, 0};  // the server closes at once on EOF; longer is a hang
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::size_t sent = 0;
  while (sent < input.size()) {
    const ssize_t n = send(fd, input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server closed early (a refusal): read what it said
    sent += static_cast<std::size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string received;
  char buffer[16 * 1024];
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      received.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      Fail("no close within 15 s", received);
    }
    if (n < 0) last_recv_error = errno;  // a reset after the server's close
    break;
  }
  // Closed with a reset: no TIME_WAIT per input, so ports are not exhausted.
  const linger abort_close{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
  close(fd);
  return received;
}

bool IsToken(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsDigits(std::string_view s) {
  return !s.empty() && s.size() <= 9 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The 8x8 envelope, members in this order, errorId a UUID.
void CheckEnvelope(std::string_view body, std::string_view received) {
  static simdjson::dom::parser parser;
  simdjson::dom::object object;
  if (parser.parse(body.data(), body.size()).get(object) != simdjson::SUCCESS) {
    Fail("error body is not a JSON object", received);
  }
  std::int64_t code = 0;
  std::string_view message, error_id, timestamp;
  if (object["code"].get(code) != simdjson::SUCCESS || code < 1000 || code > 2999 ||
      object["message"].get(message) != simdjson::SUCCESS || message.empty() ||
      object["errorId"].get(error_id) != simdjson::SUCCESS || error_id.size() != 36 ||
      object["timestamp"].get(timestamp) != simdjson::SUCCESS) {
    Fail("error body is not the envelope", received);
  }
  const char* kOrder[] = {"code", "message", "errorId", "timestamp"};
  std::size_t i = 0;
  for (const auto field : object) {
    if (i < 4 && field.key != kOrder[i]) Fail("envelope members out of order", received);
    ++i;
  }
}

// Checks `received` is a sequence of well-formed responses. A HEAD's response has no body,
// whatever its Content-Length: taken as body-less when the input holds "HEAD" and what follows
// is the next response or the end.
void CheckResponses(std::string_view input, std::string_view received) {
  const bool maybe_head = input.find("HEAD") != std::string_view::npos;
  std::string_view rest = received;
  int responses = 0;
  bool closing = false;
  while (!rest.empty()) {
    if (closing) Fail("bytes after a Connection: close response", received);
    ++responses;
    const std::size_t head_end = rest.find("\r\n\r\n");
    if (head_end == std::string_view::npos) Fail("response header not terminated", received);
    std::string_view head = rest.substr(0, head_end + 2);
    rest.remove_prefix(head_end + 4);
    const std::size_t line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    head.remove_prefix(line_end + 2);
    if (!(status_line.starts_with("HTTP/1.1 ") || status_line.starts_with("HTTP/1.0 ")) ||
        status_line.size() < 13 || !IsDigits(status_line.substr(9, 3)) || status_line[12] != ' ') {
      Fail("malformed status line", received);
    }
    const int status = std::stoi(std::string(status_line.substr(9, 3)));
    if (status < 200 || status > 599) Fail("status out of range", received);
    std::optional<std::size_t> length;
    bool json = false;
    while (!head.empty()) {
      const std::size_t end = head.find("\r\n");
      const std::string_view field = head.substr(0, end);
      head.remove_prefix(end + 2);
      const std::size_t colon = field.find(':');
      if (colon == std::string_view::npos || colon == 0 ||
          !std::all_of(field.begin(), field.begin() + static_cast<std::ptrdiff_t>(colon),
                       IsToken) ||
          field.size() < colon + 2 || field[colon + 1] != ' ') {
        Fail("malformed header field", received);
      }
      const std::string_view name = field.substr(0, colon);
      const std::string_view value = field.substr(colon + 2);
      if (value.find_first_of("\r\n") != std::string_view::npos || value.find('\0') != value.npos) {
        Fail("control character in a field value", received);
      }
      if (IEquals(name, "Content-Length")) {
        if (length || !IsDigits(value)) Fail("bad or repeated Content-Length", received);
        length = std::stoul(std::string(value));
      } else if (IEquals(name, "Connection") && IEquals(value, "close")) {
        closing = true;
      } else if (IEquals(name, "Content-Type")) {
        json = value == "application/json";
      }
    }
    if (!length) Fail("no Content-Length", received);
    // Only the transport answers 413 and 431; after refusing a request it cannot trust the
    // stream's framing, so it must close rather than read on.
    if ((status == 413 || status == 431) && !closing)
      Fail("a refusal kept the connection", received);
    const bool bodiless =
        maybe_head && *length > 0 && (rest.empty() || rest.starts_with("HTTP/1."));
    if (bodiless) continue;
    if (rest.size() < *length) Fail("body shorter than Content-Length", received);
    const std::string_view body = rest.substr(0, *length);
    rest.remove_prefix(*length);
    if (status >= 400) {
      if (!json) Fail("error response is not application/json", received);
      CheckEnvelope(body, received);
    }
  }
  if (!input.empty() && responses == 0) {
    Fail(std::string("a non-empty request got no response; recv: ") +
             (last_recv_error ? std::strerror(last_recv_error) : "EOF"),
         received);
  }
}

}  // namespace
}  // namespace callgate

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static callgate::Service* const service = new callgate::Service();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string received = callgate::Exchange(service->port, input);
  static const bool echo = std::getenv("CALLGATE_FUZZ_ECHO") != nullptr;
  if (echo) std::fwrite(received.data(), 1, received.size(), stderr);
  callgate::CheckResponses(input, received);
  return 0;
}
