#!/usr/bin/env bash
# A local Redis Cluster for tests, benchmarks and trying callgate: 3 masters + 3 replicas of
# Debian's redis-server on 127.0.0.1, one directory each under DIR.
#   scripts/redis-cluster.sh start DIR [BASE_PORT]   ports BASE_PORT..BASE_PORT+5 (default 7000);
#                                                    prints the seed list on stdout
#   scripts/redis-cluster.sh stop DIR                idempotent
# Env: REDIS_CLUSTER_NODE_TIMEOUT (ms, default 2000: fast failovers in tests),
#      REDIS_CLUSTER_WAIT (s to wait for a healthy cluster, default 60).
# Never touches the service Debian's package may run on 6379.
set -euo pipefail

usage() {
  echo "usage: $0 start DIR [BASE_PORT] | stop DIR" >&2
  exit 2
}

NODES=6

stop_cluster() {
  local dir=$1 pids=() pid
  [[ -d "$dir" ]] || return 0
  for pidfile in "$dir"/node-*/redis.pid; do
    [[ -f "$pidfile" ]] || continue
    pid=$(cat "$pidfile")
    # Only a redis-server of ours: a stale pidfile may name a reused pid.
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
      grep -q redis-server "/proc/$pid/cmdline" 2>/dev/null; then
      kill -CONT "$pid" 2>/dev/null || true  # a stopped node cannot act on SIGTERM
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$pidfile"
  done
  for _ in $(seq 50); do
    local alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    pids=("${alive[@]}")
    ((${#pids[@]})) || return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

info_field() {  # port "command words" field
  # shellcheck disable=SC2086 # the command's words are split on purpose
  redis-cli -h 127.0.0.1 -p "$1" $2 2>/dev/null | tr -d '\r' | sed -n "s/^$3://p"
}

start_cluster() {
  local dir=$1 base=$2 timeout=${REDIS_CLUSTER_NODE_TIMEOUT:-2000} wait=${REDIS_CLUSTER_WAIT:-60}
  command -v redis-server >/dev/null || { echo "redis-server is not installed (scripts/deps.sh test)" >&2; exit 1; }
  [[ "$base" =~ ^[0-9]+$ ]] && ((base > 0 && base + NODES - 1 <= 65535)) || usage
  ((base + 10000 + NODES - 1 <= 65535)) || { echo "BASE_PORT+10000 (the cluster bus) must be a port" >&2; exit 2; }
  stop_cluster "$dir"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local ports=() port i
  for ((i = 0; i < NODES; i++)); do
    port=$((base + i))
    if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
      echo "port $port is already in use by a Redis server" >&2
      exit 1
    fi
    ports+=("$port")
    local node_dir="$dir/node-$port"
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    cat >"$node_dir/redis.conf" <<CONF
bind 127.0.0.1
protected-mode yes
port $port
daemonize yes
pidfile $node_dir/redis.pid
logfile $node_dir/redis.log
dir $node_dir
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout $timeout
cluster-require-full-coverage no
appendonly yes
appendfsync everysec
save ""
min-replicas-to-write 1
min-replicas-max-lag 10
# A master sends a replica that (re)joins its data at once, not after the default 5 s wait for
# more replicas: with min-replicas-to-write 1, a shard whose killed master comes back as the new
# master's replica takes no writes until that sync is done.
repl-diskless-sync-delay 0
CONF
    redis-server "$node_dir/redis.conf"
  done
  for port in "${ports[@]}"; do
    local up=0
    for _ in $(seq 100); do
      redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && { up=1; break; }
      sleep 0.05
    done
    if ((!up)); then
      echo "the node on port $port did not start; its log ($dir/node-$port/redis.log) ends:" >&2
      tail -n 5 "$dir/node-$port/redis.log" >&2 || true
      exit 1
    fi
  done
  local addresses=()
  for port in "${ports[@]}"; do addresses+=("127.0.0.1:$port"); done
  redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 || {
    cat "$dir/create.log" >&2
    echo "redis-cli --cluster create failed" >&2
    exit 1
  }
  local deadline=$((SECONDS + wait)) healthy
  while true; do
    healthy=1
    for port in "${ports[@]}"; do
      [[ "$(info_field "$port" 'cluster info' cluster_state)" == ok ]] || { healthy=0; break; }
      if [[ "$(info_field "$port" 'info replication' role)" == slave ]]; then
        [[ "$(info_field "$port" 'info replication' master_link_status)" == up ]] || { healthy=0; break; }
      fi
    done
    # Every master also sees its replica, or min-replicas-to-write refuses writes.
    if ((healthy)); then
      local replicas=0
      for port in "${ports[@]}"; do
        [[ "$(info_field "$port" 'info replication' role)" == slave ]] && replicas=$((replicas + 1))
      done
      ((replicas == NODES / 2)) || healthy=0
      for port in "${ports[@]}"; do
        if [[ "$(info_field "$port" 'info replication' role)" == master &&
          "$(info_field "$port" 'info replication' connected_slaves)" -lt 1 ]]; then
          healthy=0
        fi
      done
    fi
    ((healthy)) && break
    if ((SECONDS >= deadline)); then
      echo "the cluster in $dir was not healthy within ${wait}s" >&2
      exit 1
    fi
    sleep 0.2
  done
  local IFS=,
  echo "${addresses[*]}"
}

case "${1:-}" in
  start)
    [[ $# -ge 2 && $# -le 3 ]] || usage
    start_cluster "$2" "${3:-7000}"
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    stop_cluster "$2"
    ;;
  *) usage ;;
esac
