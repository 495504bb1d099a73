// ParseEndpoints: the --redis-cluster list ("HOST:PORT[,HOST:PORT…]", IPv6 as "[ADDR]:PORT").
#include <charconv>
#include <string>
#include <string_view>
#include <vector>

#include "redis/cluster_client.h"

namespace callgate::redis {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Result<Endpoint, std::string> ParseOne(std::string_view item) {
  // Appended, not `"\"" + std::string(item)`: GCC 12 at -O3 (bench/run.sh's Release build)
  // warns a false -Wrestrict on that operator+ (GCC PR 105651), and warnings are errors.
  std::string quoted = "\"";
  quoted.append(item);
  quoted += '"';
  std::string_view host;
  std::string_view port;
  if (item.starts_with('[')) {
    std::size_t close = item.find(']');
    if (close == std::string_view::npos || close + 1 >= item.size() || item[close + 1] != ':') {
      return quoted + ": expected [IPV6]:PORT";
    }
    host = item.substr(1, close - 1);
    port = item.substr(close + 2);
  } else {
    std::size_t colon = item.rfind(':');
    if (colon == std::string_view::npos) return quoted + ": expected HOST:PORT (no port)";
    host = item.substr(0, colon);
    port = item.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return quoted + ": an IPv6 address needs brackets ([ADDR]:PORT)";
    }
  }
  if (host.empty()) return quoted + ": the host is empty";
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size()) {
    return quoted + ": the port is not a number";
  }
  if (value == 0 || value > 65535) return quoted + ": the port must be 1-65535";
  return Endpoint{std::string(host), static_cast<std::uint16_t>(value)};
}

}  // namespace

Result<std::vector<Endpoint>, std::string> ParseEndpoints(std::string_view text) {
  std::vector<Endpoint> endpoints;
  if (Trim(text).empty()) return std::string("no HOST:PORT given");
  while (true) {
    std::size_t comma = text.find(',');
    std::string_view item = Trim(text.substr(0, comma));
    if (item.empty()) return std::string("an empty entry in the list (two commas?)");
    auto one = ParseOne(item);
    if (!one.ok()) return one.error();
    endpoints.push_back(std::move(one.value()));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return endpoints;
}

}  // namespace callgate::redis
