// callgate_bench_load: an HTTP/1.1 keep-alive load generator for the benchmarks (Boost.Asio +
// Beast, one thread). Two disciplines:
//   open loop (--rate R): request k is due at start + k/R whatever happened before (wrk2's
//     model). A due request goes out on the first free connection; its latency runs from when
//     it was due, not from when it was sent, so a stalled server is charged for every request
//     that queued behind the stall (no coordinated omission).
//   closed loop (--rate 0): every connection sends its next request as soon as the previous
//     answer arrives (wrk's model), for the write benchmarks.
// Requests: GET of one path, GET of a random line of a file of paths, POST of call permission
// reservations to distinct destinations, or POST of signed Meta webhooks with distinct wamids.
//
//   callgate_bench_load --url http://127.0.0.1:PORT [--connections 64] [--duration 10]
//       [--warmup 1] [--rate R] [--header 'Name: value']...
//       (--get PATH | --targets FILE [--targets-order random|file] | --reserve PATH |
//        --webhook PATH --secret S
//        --phone-number-id ID) [--dest-base N] [--tag T] [--json OUT] [--curve OUT]
//
// Prints (and writes to --json) one JSON object: counts by status, throughput, latency
// percentiles in ms. --curve writes "percentile latency_ms" lines for plotting.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  int connections = 64;
  double rate = 0;  // requests/s; 0: closed loop
  double duration = 10;
  double warmup = 1;
  std::vector<std::string> headers;
  enum class Kind { kGet, kTargets, kReserve, kWebhook } kind = Kind::kGet;
  bool targets_in_order = false;  // --targets-order file: line k for request k (a warm-up pass)
  std::string path;               // GET path, targets file, or POST path
  std::string secret;
  std::string phone_number_id;
  std::uint64_t dest_base = 0;  // distinct destinations: base + a permutation of the index
  std::string tag = "0";        // makes wamids unique across runs
  std::string json_out;
  std::string curve_out;
};

// Index k -> a distinct number in [0, 10^7): 387433 is coprime with 10^7, so this permutes.
std::uint64_t Scatter(std::uint64_t k) { return (k * 387433 + 1234567) % 10000000; }

std::string Pad(std::uint64_t v, int width) {
  std::string s = std::to_string(v);
  const auto size = static_cast<int>(s.size());
  return std::string(static_cast<std::size_t>(width > size ? width - size : 0), '0') + s;
}

std::string Hex(const unsigned char* data, unsigned size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < size; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 15]);
  }
  return out;
}

// Builds the raw bytes of request k.
class Requests {
 public:
  explicit Requests(const Options& o) : o_(o), rng_(42) {
    std::string common = "Host: " + o.host + ":" + std::to_string(o.port) + "\r\n";
    for (const std::string& h : o.headers) common += h + "\r\n";
    common_ = std::move(common);
    if (o.kind == Options::Kind::kGet) fixed_ = Get(o.path);
    if (o.kind == Options::Kind::kTargets) {
      std::ifstream in(o.path);
      for (std::string line; std::getline(in, line);) {
        if (!line.empty()) targets_.push_back(Get(line));
      }
    }
  }
  bool ok() const { return o_.kind != Options::Kind::kTargets || !targets_.empty(); }

  std::string Next(std::uint64_t k) {
    switch (o_.kind) {
      case Options::Kind::kGet:
        return fixed_;
      case Options::Kind::kTargets:
        return targets_[o_.targets_in_order ? k % targets_.size() : rng_() % targets_.size()];
      case Options::Kind::kReserve:
        return Post(o_.path, R"({"destination":"+19)" + Pad(o_.dest_base + Scatter(k), 9) + "\"}",
                    "");
      case Options::Kind::kWebhook:
        return Webhook(k);
    }
    return fixed_;
  }

 private:
  std::string Get(const std::string& path) const {
    return "GET " + path + " HTTP/1.1\r\n" + common_ + "\r\n";
  }
  std::string Post(const std::string& path, const std::string& body,
                   const std::string& extra) const {
    return "POST " + path + " HTTP/1.1\r\n" + common_ + extra +
           "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  }
  // A call permission reply as Meta's Cloud API delivers it, from a distinct UK mobile.
  std::string Webhook(std::uint64_t k) const {
    const std::string user = "447" + Pad(o_.dest_base + Scatter(k), 9);
    const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    // wamids are ~60 characters upstream.
    const std::string wamid =
        "wamid.HBgLbench" + o_.tag + "x" + Pad(k, 12) + "FQIAEhgUM0FCRDU5RjQ3MkE5QjBEQjRBRDcA";
    const std::string body =
        R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000000","phone_number_id":")" +
        o_.phone_number_id + R"("},"contacts":[{"profile":{"name":"Bench"},"wa_id":")" + user +
        R"("}],"messages":[{"from":")" + user + R"(","id":")" + wamid + R"(","timestamp":")" +
        std::to_string(now) +
        R"(","type":"interactive","interactive":{"type":"call_permission_reply","call_permission_reply":{"response":"accept","is_permanent":false,"expiration_timestamp":")" +
        std::to_string(now + 7 * 24 * 3600) + R"(","response_source":"user_action"}}}]}}]}]})";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_size = 0;
    HMAC(EVP_sha256(), o_.secret.data(), static_cast<int>(o_.secret.size()),
         reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &mac_size);
    return Post(o_.path, body, "X-Hub-Signature-256: sha256=" + Hex(mac, mac_size) + "\r\n");
  }

  const Options& o_;
  std::mt19937_64 rng_;
  std::string common_;
  std::string fixed_;
  std::vector<std::string> targets_;
};

class Load;

class Connection {
 public:
  Connection(Load& load, asio::io_context& io) : load_(load), socket_(io), retry_(io) {}
  void Connect();
  void Send(Clock::time_point intended);
  bool busy() const { return busy_; }

 private:
  void Parse();  // feeds buffered bytes to the parser; reads more while it needs them
  void OnResponse();
  void Fail();

  Load& load_;
  tcp::socket socket_;
  asio::steady_timer retry_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::string out_;
  Clock::time_point intended_;
  Clock::time_point sent_;
  bool busy_ = false;
  bool connected_ = false;
};

class Load {
 public:
  Load(Options options) : o_(std::move(options)), requests_(o_), timer_(io_) {}

  int Run() {
    if (!requests_.ok()) {
      std::cerr << "load: no requests to send\n";
      return 2;
    }
    endpoint_ = tcp::endpoint(asio::ip::make_address(o_.host), o_.port);
    start_ = Clock::now() + std::chrono::milliseconds(100);  // let connections open first
    measure_from_ = start_ + Seconds(o_.warmup);
    end_ = measure_from_ + Seconds(o_.duration);
    for (int i = 0; i < o_.connections; ++i) {
      connections_.push_back(std::make_unique<Connection>(*this, io_));
    }
    for (auto& c : connections_) c->Connect();
    if (o_.rate <= 0) {
      timer_.expires_at(start_);
      timer_.async_wait([this](beast::error_code) { Tick(); });
      io_.run();
    } else {
      // Open loop spins on its core instead of sleeping on a timer until each request is due:
      // a timer wake-up per request capped the generator near 35k requests/s, below half of the
      // status endpoint's maximum, and added its own wake-up delay to every latency.
      const auto work = asio::make_work_guard(io_);  // idle connections are not "out of work"
      while (!io_.stopped()) {
        io_.poll();
        if (!finishing_) Pump();
      }
    }
    return Report();
  }

  // Called by a connection that is open and free.
  void Ready(Connection& c) {
    const auto now = Clock::now();
    if (now >= end_ || now < start_) {
      if (now < start_) idle_.push_back(&c);
      return;
    }
    if (o_.rate <= 0) return c.Send(now);
    if (!due_.empty()) {
      const auto t = due_.front();
      due_.pop_front();
      return c.Send(t);
    }
    idle_.push_back(&c);
  }

  std::string NextRequest() { return requests_.Next(sent_++); }
  const tcp::endpoint& endpoint() const { return endpoint_; }
  bool Ended() const { return Clock::now() >= end_; }

  void Record(Clock::time_point intended, Clock::time_point sent, unsigned status) {
    if (status >= 200 && status < 300) ++acked_;  // every acknowledged write, warmup included
    if (intended < measure_from_ || intended >= end_) return;
    ++by_status_[status];
    const auto now = Clock::now();
    latencies_ns_.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - intended).count());
    service_ns_.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent).count());
  }
  // How late a request was sent (open loop): it waited for a free connection (all busy behind a
  // slow server) or for the generator itself; not time the server spent on it.
  void RecordSendLag(Clock::time_point intended) {
    if (intended < measure_from_ || intended >= end_) return;
    lags_ns_.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - intended).count());
  }
  void Error(Clock::time_point intended) {
    if (intended >= measure_from_ && intended < end_) ++errors_;
  }
  void ConnectError() { ++connect_errors_; }

 private:
  static Clock::duration Seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }

  Clock::time_point Due(std::uint64_t k) const {
    return start_ + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(k) / o_.rate));
  }

  void Tick() {
    const auto now = Clock::now();
    if (now >= end_) return Finish(now + std::chrono::seconds(2));
    // Closed loop: every free connection starts once.
    auto idle = std::move(idle_);
    idle_.clear();
    for (Connection* c : idle) c->Send(now);
    timer_.expires_at(end_);
    timer_.async_wait([this](beast::error_code) { Tick(); });
  }

  // Open loop, between polls: queues what fell due and hands it to free connections.
  void Pump() {
    const auto now = Clock::now();
    if (now < start_) return;
    if (now >= end_) {
      finishing_ = true;
      return Finish(now + std::chrono::seconds(2));
    }
    while (Due(scheduled_) <= now) due_.push_back(Due(scheduled_++));
    while (!due_.empty() && !idle_.empty()) {
      Connection* c = idle_.back();
      idle_.pop_back();
      const auto t = due_.front();
      due_.pop_front();
      c->Send(t);
    }
  }

  // After the end: lets answers in flight arrive (up to `deadline`), then stops.
  void Finish(Clock::time_point deadline) {
    bool busy = false;
    for (auto& c : connections_) busy = busy || c->busy();
    if (!busy || Clock::now() >= deadline) {
      for (auto& c : connections_) unfinished_ += c->busy() ? 1 : 0;
      io_.stop();
      return;
    }
    timer_.expires_after(std::chrono::milliseconds(5));
    timer_.async_wait([this, deadline](beast::error_code) { Finish(deadline); });
  }

  int Report() {
    std::sort(latencies_ns_.begin(), latencies_ns_.end());
    std::sort(lags_ns_.begin(), lags_ns_.end());
    std::sort(service_ns_.begin(), service_ns_.end());
    auto pct_of = [](const std::vector<std::int64_t>& sorted, double p) {
      if (sorted.empty()) return 0.0;
      auto i = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
      i = std::min(sorted.size() - 1, i == 0 ? 0 : i - 1);
      return static_cast<double>(sorted[i]) / 1e6;
    };
    auto pct = [&](double p) { return pct_of(latencies_ns_, p); };
    double sum = 0;
    for (const auto v : latencies_ns_) sum += static_cast<double>(v);
    const double n = static_cast<double>(latencies_ns_.size());
    std::string status = "{";
    std::uint64_t ok = 0;
    for (const auto& [code, count] : by_status_) {
      if (status.size() > 1) status += ",";
      status.append("\"").append(std::to_string(code)).append("\":").append(std::to_string(count));
      if (code >= 200 && code < 300) ok += count;
    }
    status += "}";
    char json[1024];
    std::snprintf(
        json, sizeof json,
        "{\"rate_target\":%.1f,\"connections\":%d,\"duration_s\":%.2f,\"completed\":%.0f,"
        "\"ok\":%ju,\"rps\":%.1f,\"ok_per_s\":%.1f,\"status\":%s,\"errors\":%ju,"
        "\"connect_errors\":%ju,\"unsent\":%zu,\"unfinished\":%d,\"acked_total\":%ju,"
        "\"latency_ms\":{\"mean\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"p999\":%.4f,"
        "\"p9999\":%.4f,\"max\":%.4f},\"send_lag_ms\":{\"p50\":%.4f,\"p99\":%.4f,\"p999\":%.4f},"
        "\"service_ms\":{\"p50\":%.4f,\"p99\":%.4f,\"p999\":%.4f}}",
        o_.rate, o_.connections, o_.duration, n, ok, n / o_.duration,
        static_cast<double>(ok) / o_.duration, status.c_str(), errors_, connect_errors_,
        due_.size(), unfinished_, acked_, n ? sum / n / 1e6 : 0.0, pct(0.5), pct(0.9), pct(0.99),
        pct(0.999), pct(0.9999), latencies_ns_.empty() ? 0.0 : latencies_ns_.back() / 1e6,
        pct_of(lags_ns_, 0.5), pct_of(lags_ns_, 0.99), pct_of(lags_ns_, 0.999),
        pct_of(service_ns_, 0.5), pct_of(service_ns_, 0.99), pct_of(service_ns_, 0.999));
    std::printf("%s\n", json);
    if (!o_.json_out.empty()) std::ofstream(o_.json_out) << json << "\n";
    if (!o_.curve_out.empty()) {
      // x = log10(1/(1-p)): 0 is the median's left, 2 is p99, 3 is p99.9 ...
      std::ofstream curve(o_.curve_out);
      for (double x = 0; x <= 5.0001; x += 0.05) {
        const double p = 1 - std::pow(10.0, -x);
        if (n && p > 1 - 1 / n) break;
        curve << p * 100 << " " << pct(p) << "\n";
      }
    }
    return latencies_ns_.empty() ? 1 : 0;
  }

  Options o_;
  asio::io_context io_;
  Requests requests_;
  asio::steady_timer timer_;
  bool finishing_ = false;  // open loop: past the end, waiting for answers in flight
  tcp::endpoint endpoint_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> idle_;
  std::deque<Clock::time_point> due_;
  Clock::time_point start_, measure_from_, end_;
  std::uint64_t scheduled_ = 0;
  std::uint64_t sent_ = 0;
  std::map<unsigned, std::uint64_t> by_status_;
  std::vector<std::int64_t> latencies_ns_;
  std::vector<std::int64_t> lags_ns_;     // intended -> sent
  std::vector<std::int64_t> service_ns_;  // sent -> answered
  std::uintmax_t acked_ = 0;
  std::uintmax_t errors_ = 0;
  std::uintmax_t connect_errors_ = 0;
  int unfinished_ = 0;
};

void Connection::Connect() {
  connected_ = false;
  beast::error_code ignored;
  socket_.close(ignored);
  socket_.async_connect(load_.endpoint(), [this](beast::error_code ec) {
    if (ec) {
      load_.ConnectError();
      if (load_.Ended()) return;
      retry_.expires_after(std::chrono::milliseconds(20));
      retry_.async_wait([this](beast::error_code) { Connect(); });
      return;
    }
    socket_.set_option(tcp::no_delay(true), ec);
    connected_ = true;
    buffer_.clear();
    load_.Ready(*this);
  });
}

// Like the server's transport: a non-blocking write (the reactor only for what does not fit),
// then Beast's parser fed from plain reads, so the generator's own cost per request stays well
// below the servers' (Beast's composed async_read/async_write cost ~2x more).
void Connection::Send(Clock::time_point intended) {
  busy_ = true;
  intended_ = intended;
  sent_ = Clock::now();
  load_.RecordSendLag(intended);
  out_ = load_.NextRequest();
  parser_.emplace();
  parser_->body_limit(1 << 20);
  parser_->eager(true);
  beast::error_code ec;
  socket_.non_blocking(true, ec);
  const std::size_t sent = ec ? 0 : socket_.write_some(asio::buffer(out_), ec);
  if (!ec && sent == out_.size()) return Parse();
  if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return Fail();
  asio::async_write(socket_, asio::buffer(out_) + sent, [this](beast::error_code ec, std::size_t) {
    if (ec) return Fail();
    Parse();
  });
}

void Connection::Parse() {
  while (buffer_.size() > 0) {
    beast::error_code ec;
    const std::size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == http::error::need_more) break;
    if (ec) return Fail();
    if (parser_->is_done()) return OnResponse();
    if (used == 0) break;
  }
  socket_.async_read_some(buffer_.prepare(16 * 1024), [this](beast::error_code ec, std::size_t n) {
    if (ec) return Fail();
    buffer_.commit(n);
    Parse();
  });
}

void Connection::OnResponse() {
  busy_ = false;
  load_.Record(intended_, sent_, parser_->get().result_int());
  if (!parser_->keep_alive()) return Connect();
  load_.Ready(*this);
}

void Connection::Fail() {
  busy_ = false;
  load_.Error(intended_);
  if (!load_.Ended()) Connect();
}

bool ParseUrl(const std::string& url, Options& o) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return false;
  const std::string rest = url.substr(scheme.size());
  const auto colon = rest.find(':');
  if (colon == std::string::npos) return false;
  o.host = rest.substr(0, colon);
  o.port = static_cast<unsigned short>(std::stoi(rest.substr(colon + 1)));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool url_ok = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const std::string value = argv[i + 1];
    if (name == "--url")
      url_ok = ParseUrl(value, o);
    else if (name == "--connections")
      o.connections = std::stoi(value);
    else if (name == "--duration")
      o.duration = std::stod(value);
    else if (name == "--warmup")
      o.warmup = std::stod(value);
    else if (name == "--rate")
      o.rate = std::stod(value);
    else if (name == "--header")
      o.headers.push_back(value);
    else if (name == "--get")
      o.kind = Options::Kind::kGet, o.path = value;
    else if (name == "--targets")
      o.kind = Options::Kind::kTargets, o.path = value;
    else if (name == "--targets-order" && (value == "random" || value == "file"))
      o.targets_in_order = value == "file";
    else if (name == "--reserve")
      o.kind = Options::Kind::kReserve, o.path = value;
    else if (name == "--webhook")
      o.kind = Options::Kind::kWebhook, o.path = value;
    else if (name == "--secret")
      o.secret = value;
    else if (name == "--phone-number-id")
      o.phone_number_id = value;
    else if (name == "--dest-base")
      o.dest_base = std::stoull(value);
    else if (name == "--tag")
      o.tag = value;
    else if (name == "--json")
      o.json_out = value;
    else if (name == "--curve")
      o.curve_out = value;
    else {
      std::cerr << "load: unknown option " << name << "\n";
      return 2;
    }
  }
  if (!url_ok || o.path.empty() || o.connections < 1 || o.duration <= 0) {
    std::cerr << "usage: callgate_bench_load --url http://HOST:PORT (--get PATH | --targets FILE |"
                 " --reserve PATH | --webhook PATH --secret S --phone-number-id ID) [...]\n";
    return 2;
  }
  return Load(std::move(o)).Run();
}
