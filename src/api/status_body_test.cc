#include "api/status_body.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "api/json.h"
#include "core/time.h"

namespace callgate {
namespace {

// The body as the general JSON writer spells it, member by member: the reference the renderer's
// constant stretches must reproduce byte for byte.
std::string Reference(const StatusView& view, std::string_view id_name = {},
                      std::string_view id_value = {}) {
  std::string body;
  JsonWriter json(body);
  json.BeginObject();
  if (!id_name.empty()) json.Key(id_name).String(id_value);
  json.Key("status").String(StatusName(view.permission.status));
  json.Key("actions").BeginArray();
  for (const Action action : {Action::kSendCallPermissionRequest, Action::kStartCall}) {
    json.BeginObject()
        .Key("actionName")
        .String(ActionName(action))
        .Key("canPerformAction")
        .Bool(view.CanPerform(action))
        .Key("limits")
        .BeginArray();
    for (std::size_t i = 0; i < kLimitRules.size(); ++i) {
      if (kLimitRules[i].action != action) continue;
      const LimitUsage& usage = view.usage[i];
      json.BeginObject()
          .Key("timePeriod")
          .String(kLimitRules[i].iso_period)
          .Key("maxAllowed")
          .Int(usage.max_allowed)
          .Key("currentUsage")
          .Int(usage.current_usage);
      if (usage.limit_expiration) {
        json.Key("limitExpirationTime").String(FormatCentis(*usage.limit_expiration));
      }
      json.EndObject();
    }
    json.EndArray().EndObject();
  }
  json.EndArray();
  if (view.permission.status == PermissionStatus::kTemporary) {
    json.Key("expirationTime").String(FormatCentis(*view.permission.expires_at));
  }
  json.EndObject();
  return body;
}

// Every status, every limit reached or not (with its expiration then), extreme numbers and
// timestamps (the widest year, the last centisecond of a day).
std::vector<StatusView> Views() {
  const Instant t = *ParseTimestamp("2026-12-01T23:59:59.999Z");
  const Instant far = *ParseTimestamp("9999-12-31T23:59:59.999Z");
  std::vector<StatusView> views;
  for (const PermissionStatus status : {PermissionStatus::kNotGranted, PermissionStatus::kTemporary,
                                        PermissionStatus::kPermanent}) {
    for (unsigned reached = 0; reached < (1u << kLimitRules.size()); ++reached) {
      for (const int extreme : {0, 1}) {
        StatusView view;
        view.permission.status = status;
        if (status == PermissionStatus::kTemporary) view.permission.expires_at = extreme ? far : t;
        for (std::size_t i = 0; i < kLimitRules.size(); ++i) {
          LimitUsage& usage = view.usage[i];
          usage.max_allowed = extreme ? 2147483647 : kLimitRules[i].production;
          usage.current_usage =
              (reached >> i) & 1 ? usage.max_allowed : (extreme ? -2147483647 - 1 : 0);
          if ((reached >> i) & 1) usage.limit_expiration = extreme ? far : t + Millis(i);
        }
        views.push_back(view);
      }
    }
  }
  return views;
}

TEST(StatusBodyTest, IsTheGeneralWritersBodyByteForByteForEveryKindOfView) {
  simdjson::dom::parser parser;
  for (const StatusView& view : Views()) {
    const std::string body = RenderStatus(view);
    EXPECT_EQ(body, Reference(view));
    EXPECT_EQ(parser.parse(body).error(), simdjson::SUCCESS) << body;
    EXPECT_EQ(StatusBody(view), body);
    EXPECT_EQ(RenderStatus(view, "requestId", "r\"1"), Reference(view, "requestId", "r\"1"));
  }
}

TEST(StatusBodyTest, MembersAppendAfterWhatTheCallerOpenedWith) {
  for (const StatusView& view : Views()) {
    std::string out = R"({"destination":"+6591234567",)";
    AppendStatusMembers(out, view);
    EXPECT_EQ(out, R"({"destination":"+6591234567",)" + RenderStatus(view).substr(1));
  }
}

TEST(StatusBodyTest, TheThreadsLastBodyFollowsTheView) {
  std::vector<StatusView> views = Views();
  const std::string first = RenderStatus(views[0]);
  const std::string last = RenderStatus(views.back());
  ASSERT_NE(first, last);
  EXPECT_EQ(StatusBody(views[0]), first);
  EXPECT_EQ(StatusBody(views.back()), last);
  EXPECT_EQ(StatusBody(views[0]), first);
}

}  // namespace
}  // namespace callgate
