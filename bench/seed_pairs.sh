# Sourced by bench/cluster.sh and bench/ab.sh.
# seed_pairs PORT SECRET PHONE_NUMBER_ID ID_TAG COUNT USERS TARGETS API: stores COUNT pairs, each
# holding a permanent permission, through the signed webhook of the callgate on PORT (200 users to
# a delivery); their numbers go to the file USERS, their status paths (under API) to TARGETS.
# ID_TAG goes into the upstream message ids, so that stores seeded apart never share one.
seed_pairs() {
  local port=$1 secret=$2 phone_number_id=$3 tag=$4 count=$5 users=$6 targets=$7 api=$8
  local now first i user contacts messages body signature reply
  : >"$users"
  : >"$targets"
  now=$(date +%s)
  for ((first = 0; first < count; first += 200)); do
    contacts="" messages=""
    for ((i = first; i < first + 200 && i < count; i++)); do
      user=$(printf '447%09d' "$i")
      echo "$user" >>"$users"
      echo "$api/callPermissions?destination=%2B$user" >>"$targets"
      contacts+="${contacts:+,}{\"profile\":{\"name\":\"Bench\"},\"wa_id\":\"$user\"}"
      messages+="${messages:+,}{\"from\":\"$user\",\"id\":\"wamid.HBgLbenchseed${tag}x$user\",\"timestamp\":\"$now\",\"type\":\"interactive\",\"interactive\":{\"type\":\"call_permission_reply\",\"call_permission_reply\":{\"response\":\"accept\",\"is_permanent\":true,\"response_source\":\"user_action\"}}}"
    done
    body="{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550000000\",\"phone_number_id\":\"$phone_number_id\"},\"contacts\":[$contacts],\"messages\":[$messages]}}]}]}"
    signature=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
    reply=$(printf '%s' "$body" | curl -sS --max-time 60 -H 'Content-Type: application/json' \
      -H "X-Hub-Signature-256: sha256=$signature" --data-binary @- \
      "http://127.0.0.1:$port/webhooks/whatsapp")
    if [[ $reply != *"\"applied\":$((i - first))"* ]]; then
      echo "seeding: $reply" >&2
      return 1
    fi
  done
}
