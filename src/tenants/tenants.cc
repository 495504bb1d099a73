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
