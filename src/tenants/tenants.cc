#include "tenants/tenants.h"

namespace callgate {
namespace {

template <class Map>
const typename Map::mapped_type* Find(const Map& map, const std::string& key) {
  const auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

}  // namespace

const Channel* TenantSnapshot::FindChannel(const std::string& id) const {
  return Find(channels, id);
}

const Channel* TenantSnapshot::FindChannelByPhoneNumberId(const std::string& pnid) const {
  const std::string* id = Find(channel_by_phone_number_id, pnid);
  return id ? FindChannel(*id) : nullptr;
}

const Subaccount* TenantSnapshot::FindSubaccount(const std::string& id) const {
  return Find(subaccounts, id);
}

const NotifyTarget* TenantSnapshot::FindNotifyTarget(const std::string& channel_id) const {
  const Channel* channel = FindChannel(channel_id);
  const Subaccount* sub = channel ? FindSubaccount(channel->subaccount_id) : nullptr;
  return sub ? Find(notify_targets, sub->account_id) : nullptr;
}

std::vector<std::string> NotifyTarget::SigningSecrets(Instant now) const {
  std::vector<std::string> secrets{secret};
  if (!previous_secret.empty() && previous_until && now < *previous_until) {
    secrets.push_back(previous_secret);
  }
  return secrets;
}

// Ids appear in URL paths: keep them to a safe, unambiguous alphabet.
bool ValidTenantId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace callgate
