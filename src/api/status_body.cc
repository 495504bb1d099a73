#include "api/status_body.h"

#include <array>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "core/json_string.h"
#include "core/thread_cache.h"
#include "core/time.h"

namespace callgate {
namespace {

constexpr std::array<Action, 2> kActions{Action::kSendCallPermissionRequest, Action::kStartCall};
constexpr std::array<PermissionStatus, 3> kStatuses{
    PermissionStatus::kNotGranted, PermissionStatus::kTemporary, PermissionStatus::kPermanent};

// The constant stretches of a body, built once from the names the rules give (StatusName,
// ActionName, kLimitRules), so that a body is a few copies of these with the numbers and
// timestamps between them. Written with a general JSON writer, a batch of 1000 statuses spent a
// quarter of its time on keys, commas and brackets one at a time (perf, bench/run.sh batch).
struct Fragments {
  std::array<std::string, kStatuses.size()> status;  // `"status":"<name>","actions":[`
  std::array<std::string, kActions.size()>
      action;  // `[,]{"actionName":"<name>","canPerformAction":`
  std::array<std::string, kLimitRules.size()> limit;  // `[,]{"timePeriod":"<p>","maxAllowed":`
  // The most a body can take: every fragment at its longest, every number and timestamp too.
  std::size_t bound = 0;

  Fragments() {
    auto quoted = [](std::string_view name) {
      std::string out;
      AppendJsonString(out, name);
      return out;
    };
    std::size_t longest_status = 0;
    for (const PermissionStatus s : kStatuses) {
      std::string& f = status[static_cast<std::size_t>(s)];
      f = "\"status\":" + quoted(StatusName(s)) + ",\"actions\":[";
      longest_status = std::max(longest_status, f.size());
    }
    bound = longest_status;
    for (std::size_t a = 0; a < kActions.size(); ++a) {
      action[a] = std::string(a > 0 ? "," : "") +
                  "{\"actionName\":" + quoted(ActionName(kActions[a])) + ",\"canPerformAction\":";
      bound += action[a].size() + kCannotPerform.size() + kActionClose.size();
      bool first = true;
      for (std::size_t i = 0; i < kLimitRules.size(); ++i) {
        if (kLimitRules[i].action != kActions[a]) continue;
        limit[i] = std::string(first ? "" : ",") +
                   "{\"timePeriod\":" + quoted(kLimitRules[i].iso_period) + ",\"maxAllowed\":";
        first = false;
        bound += limit[i].size() + kIntMax + kCurrentUsage.size() + kIntMax +
                 kLimitExpiration.size() + kMaxTimestampChars + 1 + 1;  // `"`, `}`
      }
    }
    bound += kActionsClose.size() + kExpiration.size() + kMaxTimestampChars + 2;  // `"}`
    if (bound > kBuffer) std::abort();  // the names outgrew the buffer: a programming error
  }

  // What AppendStatusMembers writes at, on its stack.
  static constexpr std::size_t kBuffer = 1024;
  static constexpr std::string_view kCanPerform = "true,\"limits\":[";
  static constexpr std::string_view kCannotPerform = "false,\"limits\":[";  // the longer
  static constexpr std::string_view kCurrentUsage = ",\"currentUsage\":";
  static constexpr std::string_view kLimitExpiration = ",\"limitExpirationTime\":\"";
  static constexpr std::string_view kActionClose = "]}";
  static constexpr std::string_view kActionsClose = "]";
  static constexpr std::string_view kExpiration = ",\"expirationTime\":\"";
  static constexpr std::size_t kIntMax = 11;  // an int: sign and 10 digits
};

const Fragments& TheFragments() {
  static const Fragments fragments;
  return fragments;
}

// Writes at a buffer of Fragments::kBuffer bytes, which holds Fragments::bound.
class Writer {
 public:
  explicit Writer(char* at) : at_(at) {}
  void Put(std::string_view text) {
    std::memcpy(at_, text.data(), text.size());
    at_ += text.size();
  }
  void Int(int value) { at_ = std::to_chars(at_, at_ + Fragments::kIntMax, value).ptr; }
  void Time(Instant t) { at_ = FormatCentisTo(at_, t); }
  char* at() const { return at_; }

 private:
  char* at_;
};

}  // namespace

void AppendStatusMembers(std::string& out, const StatusView& view) {
  const Fragments& f = TheFragments();
  char buffer[Fragments::kBuffer];
  Writer w(buffer);
  w.Put(f.status[static_cast<std::size_t>(view.permission.status)]);
  for (std::size_t a = 0; a < kActions.size(); ++a) {
    w.Put(f.action[a]);
    w.Put(view.CanPerform(kActions[a]) ? Fragments::kCanPerform : Fragments::kCannotPerform);
    for (std::size_t i = 0; i < kLimitRules.size(); ++i) {
      if (kLimitRules[i].action != kActions[a]) continue;
      const LimitUsage& usage = view.usage[i];
      w.Put(f.limit[i]);
      w.Int(usage.max_allowed);
      w.Put(Fragments::kCurrentUsage);
      w.Int(usage.current_usage);
      if (usage.limit_expiration) {
        w.Put(Fragments::kLimitExpiration);
        w.Time(*usage.limit_expiration);
        w.Put("\"");
      }
      w.Put("}");
    }
    w.Put(Fragments::kActionClose);
  }
  w.Put(Fragments::kActionsClose);
  if (view.permission.status == PermissionStatus::kTemporary) {
    w.Put(Fragments::kExpiration);
    w.Time(*view.permission.expires_at);
    w.Put("\"");
  }
  w.Put("}");
  out.append(buffer, w.at());
}

std::string RenderStatus(const StatusView& view, std::string_view id_name,
                         std::string_view id_value) {
  std::string body;
  body.reserve(512);
  body.push_back('{');
  if (!id_name.empty()) {
    AppendJsonString(body, id_name);
    body.push_back(':');
    AppendJsonString(body, id_value);
    body.push_back(',');
  }
  AppendStatusMembers(body, view);
  return body;
}

// Polled pairs, and the many destinations never asked, repeat the same view, so each thread keeps
// the last body it rendered (rendering was 6k of a status read's 28k instructions under
// callgrind). A memo of a pure function: it owns nothing that can go stale, hence no owner id.
const std::string& StatusBody(const StatusView& view) {
  struct LastBody {
    std::optional<StatusView> view;
    std::string body;
  };
  struct StatusBodyTag;
  LastBody& last = ThreadCache<LastBody, StatusBodyTag>(0);
  if (last.view != view) {
    last.body = RenderStatus(view);
    last.view = view;
  }
  return last.body;
}

}  // namespace callgate
