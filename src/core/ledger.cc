#include "core/ledger.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace callgate {
namespace {

template <class T>
void KeepMin(std::optional<T>& slot, T value) {
  if (!slot || value < *slot) slot = value;
}

bool TooLate(const PairState& state, Instant at) {
  return state.base.horizon && at < *state.base.horizon;
}

// What a step of the fold does. At equal times, steps run in this order (then by id), so the
// fold is a total order over the facts whatever order they arrived in.
enum class StepKind { kCallAnswered, kCallUnanswered, kCallbackGrant, kReply };

struct Step {
  Instant at;
  StepKind kind;
  const std::string* id;
  const ReplyFact* reply;
};

bool operator<(const Step& a, const Step& b) {
  return std::tie(a.at, a.kind, *a.id) < std::tie(b.at, b.kind, *b.id);
}

// The order-dependent steps with at <= until (and at < before, if given), in fold order.
std::vector<Step> Timeline(const PairState& state, Instant until,
                           std::optional<Instant> before = std::nullopt) {
  std::vector<Step> steps;
  auto add = [&](Instant at, StepKind kind, const std::string& id, const ReplyFact* reply) {
    if (at <= until && (!before || at < *before)) steps.push_back({at, kind, &id, reply});
  };
  for (const auto& [id, reply] : state.replies) add(reply.at, StepKind::kReply, id, &reply);
  for (const auto& [id, call] : state.calls) {
    if (call.Answered()) {
      add(call.ConnectTime(), StepKind::kCallAnswered, id, nullptr);
    } else if (const auto unanswered = call.UnansweredAt()) {
      add(*unanswered, StepKind::kCallUnanswered, id, nullptr);
    }
    if (call.callback_at) add(*call.callback_at, StepKind::kCallbackGrant, id, nullptr);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

// Folds steps over a starting permission and consecutive-unanswered count.
class Fold {
 public:
  Fold(const Baseline& base, LimitsProfile profile, std::vector<Notice>* notices)
      : permission_(base.permission),
        consecutive_(base.consecutive_unanswered),
        thresholds_(Thresholds(profile)),
        notices_(notices) {}

  void Run(const std::vector<Step>& steps) {
    for (const Step& step : steps) Take(step);
  }

  void ExpireUntil(Instant t) {
    if (permission_.status == PermissionStatus::kTemporary && *permission_.expires_at <= t) {
      Note(NoticeKind::kExpired, *permission_.expires_at, "");
      permission_ = {};
    }
  }

  const Permission& permission() const { return permission_; }
  int consecutive() const { return consecutive_; }

 private:
  void Take(const Step& step) {
    ExpireUntil(step.at);
    switch (step.kind) {
      case StepKind::kReply: {
        const ReplyFact& reply = *step.reply;
        if (!reply.accepted) {
          Revoke();
        } else if (reply.permanent) {
          Grant({PermissionStatus::kPermanent, std::nullopt});
        } else if (permission_.status != PermissionStatus::kPermanent) {
          Grant({PermissionStatus::kTemporary,
                 reply.expires_at.value_or(reply.at + kTemporaryPermissionLifetime)});
        }
        break;
      }
      case StepKind::kCallbackGrant:
        if (permission_.status != PermissionStatus::kPermanent) {
          Grant({PermissionStatus::kTemporary, step.at + kTemporaryPermissionLifetime});
        }
        break;
      case StepKind::kCallAnswered:
        consecutive_ = 0;
        break;
      case StepKind::kCallUnanswered:
        ++consecutive_;
        if (consecutive_ == thresholds_.reconsider_notice) {
          Note(NoticeKind::kReconsiderShown, step.at, *step.id);
        }
        if (consecutive_ >= thresholds_.auto_revoke) {
          Note(NoticeKind::kAutoRevoked, step.at, *step.id);
          Revoke();
        }
        break;
    }
  }

  // A fresh permission (granted from not_granted) starts its unanswered count at zero; an
  // upgrade or renewal of a live one keeps it.
  void Grant(Permission next) {
    if (permission_.status == PermissionStatus::kNotGranted) consecutive_ = 0;
    permission_ = next;
  }

  void Revoke() {
    permission_ = {};
    consecutive_ = 0;
  }

  void Note(NoticeKind kind, Instant at, const std::string& cause) {
    if (notices_) notices_->push_back({kind, at, cause});
  }

  Permission permission_;
  int consecutive_;
  UnansweredThresholds thresholds_;
  std::vector<Notice>* notices_;
};

Instant LastSeen(const CallFacts& call) {
  Instant last = call.FirstSeen();
  for (const auto& t : {call.connected_at, call.started_at, call.terminated_at, call.rejected_at,
                        call.callback_at}) {
    if (t && *t > last) last = *t;
  }
  return last;
}

}  // namespace

std::optional<Instant> NewestFact(const PairState& state) {
  std::optional<Instant> newest;
  auto see = [&](Instant t) {
    if (!newest || t > *newest) newest = t;
  };
  for (const auto& [id, at] : state.requests) see(at);
  for (const auto& [id, reply] : state.replies) see(reply.at);
  for (const auto& [id, call] : state.calls) see(LastSeen(call));
  for (const auto& [id, hold] : state.holds) see(hold.at);
  return newest;
}

Instant CallFacts::ConnectTime() const {
  if (connected_at) return *connected_at;
  if (started_at) return *started_at;
  return terminated_at.value_or(FirstSeen());
}

std::optional<Instant> CallFacts::UnansweredAt() const {
  if (direction != CallDirection::kBusinessInitiated || Answered()) return std::nullopt;
  std::optional<Instant> at = rejected_at;
  if (terminated_at) KeepMin(at, *terminated_at);
  return at;
}

Instant CallFacts::FirstSeen() const {
  std::optional<Instant> first;
  for (const auto& t : {connected_at, started_at, terminated_at, rejected_at, callback_at}) {
    if (t) KeepMin(first, *t);
  }
  return first.value_or(Instant{});
}

ApplyOutcome Merge(PairState& state, const Event& event) {
  if (TooLate(state, EventTime(event))) return ApplyOutcome::kTooLate;

  auto merge_call = [&](const std::string& id, auto&& update) {
    auto [it, inserted] = state.calls.try_emplace(id);
    const CallFacts before = it->second;
    update(it->second);
    return inserted || it->second != before ? ApplyOutcome::kApplied : ApplyOutcome::kDuplicate;
  };
  auto mark_authorization = [](CallFacts& call, const std::string& id) {
    if (!id.empty() && (call.authorization_id.empty() || id < call.authorization_id)) {
      call.authorization_id = id;
    }
  };
  auto mark_direction = [](CallFacts& call, CallDirection direction) {
    // Any event naming the call user-initiated makes it so: an order-free merge.
    if (direction == CallDirection::kUserInitiated) call.direction = direction;
  };

  struct Visitor {
    PairState& state;
    decltype(merge_call)& merge;
    decltype(mark_direction)& direction;
    decltype(mark_authorization)& authorization;

    ApplyOutcome operator()(const PermissionRequested& e) {
      return state.requests.try_emplace(e.request_id, e.at).second ? ApplyOutcome::kApplied
                                                                   : ApplyOutcome::kDuplicate;
    }
    ApplyOutcome operator()(const PermissionReplied& e) {
      const ReplyFact fact{e.at, e.accepted, e.permanent, e.expires_at, e.source};
      return state.replies.try_emplace(e.message_id, fact).second ? ApplyOutcome::kApplied
                                                                  : ApplyOutcome::kDuplicate;
    }
    ApplyOutcome operator()(const CallConnected& e) {
      return merge(e.call_id, [&](CallFacts& call) {
        direction(call, e.direction);
        authorization(call, e.authorization_id);
        KeepMin(call.connected_at, e.at);
      });
    }
    ApplyOutcome operator()(const CallTerminated& e) {
      return merge(e.call_id, [&](CallFacts& call) {
        direction(call, e.direction);
        authorization(call, e.authorization_id);
        KeepMin(call.terminated_at, e.at);
        if (e.started_at) KeepMin(call.started_at, *e.started_at);
        call.picked_up = call.picked_up || e.picked_up;
      });
    }
    ApplyOutcome operator()(const CallRejected& e) {
      return merge(e.call_id, [&](CallFacts& call) {
        authorization(call, e.authorization_id);
        KeepMin(call.rejected_at, e.at);
      });
    }
    ApplyOutcome operator()(const CallbackGranted& e) {
      return merge(e.call_id, [&](CallFacts& call) {
        direction(call, CallDirection::kUserInitiated);
        KeepMin(call.callback_at, e.at);
      });
    }
    // Recorded for the history; the facts it came from are already in the baseline.
    ApplyOutcome operator()(const NoticeFinalized&) { return ApplyOutcome::kDuplicate; }
    ApplyOutcome operator()(const UserIdChanged&) { return ApplyOutcome::kDuplicate; }
    ApplyOutcome operator()(const CallAuthorized& e) {
      return state.holds.try_emplace(e.authorization_id, Hold{e.at, e.expires_at}).second
                 ? ApplyOutcome::kApplied
                 : ApplyOutcome::kDuplicate;
    }
  };
  return std::visit(Visitor{state, merge_call, mark_direction, mark_authorization}, event);
}

void Compact(PairState& state, LimitsProfile profile, std::vector<Notice>* finalized) {
  const auto newest = NewestFact(state);
  if (!newest) return;
  Instant cut = *newest - kReorderHorizon;
  if (state.base.horizon && cut <= *state.base.horizon) return;
  // A call whose facts straddle the cut stays whole: lower the cut to its first fact.
  for (bool lowered = true; lowered;) {
    lowered = false;
    for (const auto& [id, call] : state.calls) {
      if (call.FirstSeen() < cut && LastSeen(call) >= cut) {
        cut = call.FirstSeen();
        lowered = true;
      }
    }
  }
  if (state.base.horizon && cut <= *state.base.horizon) return;

  Fold fold(state.base, profile, finalized);
  fold.Run(Timeline(state, Instant::max(), cut));
  state.base.permission = fold.permission();
  state.base.consecutive_unanswered = fold.consecutive();
  state.base.horizon = cut;
  std::erase_if(state.requests, [&](const auto& kv) { return kv.second < cut; });
  std::erase_if(state.replies, [&](const auto& kv) { return kv.second.at < cut; });
  std::erase_if(state.calls, [&](const auto& kv) { return LastSeen(kv.second) < cut; });
  std::erase_if(state.holds, [&](const auto& kv) { return kv.second.at < cut; });
}

void DropReleasedHolds(PairState& state, Instant now) {
  if (state.holds.empty()) return;
  std::set<std::string_view> reported;
  for (const auto& [id, call] : state.calls) {
    if (!call.authorization_id.empty()) reported.insert(call.authorization_id);
  }
  std::erase_if(state.holds, [&](const auto& kv) {
    return kv.second.expires_at <= now || reported.contains(kv.first);
  });
}

ApplyOutcome Apply(PairState& state, const Event& event, LimitsProfile profile,
                   std::vector<Notice>* finalized) {
  const ApplyOutcome outcome = Merge(state, event);
  if (outcome == ApplyOutcome::kApplied) Compact(state, profile, finalized);
  return outcome;
}

bool StatusView::LimitReached(Action action) const {
  for (std::size_t i = 0; i < kLimitRules.size(); ++i) {
    if (kLimitRules[i].action == action && usage[i].current_usage >= usage[i].max_allowed) {
      return true;
    }
  }
  return false;
}

bool StatusView::CanPerform(Action action) const {
  switch (action) {
    case Action::kSendCallPermissionRequest:
      return permission.status != PermissionStatus::kPermanent && !LimitReached(action);
    case Action::kStartCall:
      return permission.status != PermissionStatus::kNotGranted && !LimitReached(action);
  }
  return false;
}

StatusView View(const PairState& state, Instant now, LimitsProfile profile) {
  Fold fold(state.base, profile, nullptr);
  fold.Run(Timeline(state, now));
  fold.ExpireUntil(now);

  StatusView view;
  view.permission = fold.permission();

  // Any connected call clears the request counters: only requests after it count.
  std::optional<Instant> last_connect;
  for (const auto& [id, call] : state.calls) {
    if (call.Answered() && call.ConnectTime() <= now) {
      if (!last_connect || call.ConnectTime() > *last_connect) last_connect = call.ConnectTime();
    }
  }

  for (std::size_t i = 0; i < kLimitRules.size(); ++i) {
    const LimitRule& rule = kLimitRules[i];
    LimitUsage& usage = view.usage[i];
    usage.max_allowed = rule.MaxAllowed(profile);
    std::optional<Instant> oldest;
    auto count = [&](Instant t) {
      if (t > now - rule.period && t <= now) {
        ++usage.current_usage;
        KeepMin(oldest, t);
      }
    };
    switch (rule.action) {
      case Action::kSendCallPermissionRequest:
        for (const auto& [id, at] : state.requests) {
          if (!last_connect || at > *last_connect) count(at);
        }
        break;
      case Action::kStartCall: {
        std::set<std::string_view> used_authorizations;
        for (const auto& [id, call] : state.calls) {
          if (!call.authorization_id.empty()) used_authorizations.insert(call.authorization_id);
          if (call.direction == CallDirection::kBusinessInitiated && call.Answered()) {
            count(call.ConnectTime());
          }
        }
        if (oldest) oldest = *oldest + rule.period;
        // A live hold takes a slot until its call reports back or it expires.
        for (const auto& [id, hold] : state.holds) {
          if (hold.at <= now && now < hold.expires_at && !used_authorizations.contains(id)) {
            ++usage.current_usage;
            KeepMin(oldest, hold.expires_at);
          }
        }
        if (oldest && usage.current_usage >= usage.max_allowed) usage.limit_expiration = oldest;
        continue;
      }
    }
    if (oldest && usage.current_usage >= usage.max_allowed) {
      usage.limit_expiration = *oldest + rule.period;
    }
  }
  return view;
}

std::vector<Notice> Notices(const PairState& state, Instant now, LimitsProfile profile) {
  std::vector<Notice> notices;
  Fold fold(state.base, profile, &notices);
  fold.Run(Timeline(state, now));
  fold.ExpireUntil(now);
  return notices;
}

std::string_view StatusName(PermissionStatus status) {
  switch (status) {
    case PermissionStatus::kNotGranted:
      return "not_granted";
    case PermissionStatus::kTemporary:
      return "temporary";
    case PermissionStatus::kPermanent:
      return "permanent";
  }
  return "not_granted";
}

}  // namespace callgate
