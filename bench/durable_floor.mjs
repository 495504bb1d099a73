// The most durable writes the cluster itself can take, whatever callgate costs. A client run
// where the load generators run (so it costs the nodes' CPU nothing) sends what callgate sends
// for a call authorisation — the commit script (commit_shape.mjs), on one pipelined connection per
// master, each write answered only once a replica acknowledged it through one `WAIT 1` per read
// of replies (callgate's group commit) — from 64 writers in a closed loop over PAIRS pairs.
// Alternating with it, in each round: the same client's plain SETs with the same WAITs, its
// plain SETs without, and `redis-benchmark --cluster -t set -c 64` (the reference for
// durable writes). Writes per second and the nodes' CPU per write (INFO cpu of every node).
//   node bench/durable_floor.mjs SEED_PORT [SECONDS=5] [ROUNDS=3]
// Needs redis-cli and redis-benchmark. Prints one JSON line. Its keys start with "floor:".
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import net from "node:net";
import { commitArgs, commitKeys, commitScript, resp, sha1 } from "./commit_shape.mjs";

const seedPort = Number(process.argv[2]);
const seconds = Number(process.argv[3] ?? 5);
const rounds = Number(process.argv[4] ?? 3);
if (!seedPort) throw new Error("usage: node bench/durable_floor.mjs SEED_PORT [SECONDS] [ROUNDS]");
const WRITERS = 64;
const PAIRS = 20000;
const REPLICA_TIMEOUT_MS = 500; // callgate's default --redis-replica-timeout

const cli = (port, ...args) =>
  execFileSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8" });

// --- The cluster: masters and their slots, every node's CPU -------------------------------------
const nodes = cli(seedPort, "CLUSTER", "NODES").trim().split("\n").map((line) => line.split(" "));
const masters = nodes.filter((f) => f[2].includes("master") && !f[2].includes("fail"));
const slotOwner = new Array(16384);
for (const [i, f] of masters.entries()) {
  for (const range of f.slice(8).filter((r) => !r.startsWith("["))) {
    const [from, to = from] = range.split("-").map(Number);
    for (let s = from; s <= to; ++s) slotOwner[s] = i;
  }
}
const masterPorts = masters.map((f) => Number(f[1].split(/[:@]/)[1]));
const allPorts = nodes.map((f) => Number(f[1].split(/[:@]/)[1]));
const nodesCpu = () =>
  allPorts.reduce((sum, port) => {
    const info = cli(port, "INFO", "cpu");
    const field = (n) => Number(info.match(new RegExp(`${n}:([0-9.]+)`))[1]);
    return sum + field("used_cpu_user") + field("used_cpu_sys");
  }, 0);

// CRC16-XMODEM, as Redis Cluster hashes a key's {tag}.
const crcTable = Array.from({ length: 256 }, (_, i) => {
  let c = i << 8;
  for (let k = 0; k < 8; ++k) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
  return c & 0xffff;
});
const slotOf = (tag) => {
  let crc = 0;
  for (const b of Buffer.from(tag)) crc = ((crc << 8) ^ crcTable[((crc >> 8) ^ b) & 0xff]) & 0xffff;
  return crc % 16384;
};

// --- A pipelined connection with callgate's group commit ----------------------------------------
// Replies: simple strings, errors, integers, bulk strings, arrays (nested).
function parseReply(buf, at) {
  const end = buf.indexOf("\r\n", at);
  if (end < 0) return null;
  const type = String.fromCharCode(buf[at]);
  const line = buf.toString("latin1", at + 1, end);
  if (type === "+" || type === ":") return { value: type === ":" ? Number(line) : line, next: end + 2 };
  if (type === "-") return { value: new Error(line), next: end + 2 };
  if (type === "$") {
    const n = Number(line);
    if (n < 0) return { value: null, next: end + 2 };
    if (buf.length < end + 2 + n + 2) return null;
    return { value: buf.subarray(end + 2, end + 2 + n), next: end + 2 + n + 2 };
  }
  if (type === "*") {
    const items = [];
    let next = end + 2;
    for (let i = 0; i < Number(line); ++i) {
      const item = parseReply(buf, next);
      if (!item) return null;
      items.push(item.value);
      next = item.next;
    }
    return { value: items, next };
  }
  throw new Error(`unexpected reply type ${type}`);
}

class Connection {
  constructor(port) {
    this.socket = net.connect(port, "127.0.0.1");
    this.socket.setNoDelay(true);
    this.waiting = []; // reply handlers, in the order their commands were written
    this.out = [];
    this.held = []; // durable writes answered, awaiting the next WAIT's acknowledgement
    this.in = Buffer.alloc(0);
    this.socket.on("data", (data) => this.onData(data));
    this.socket.on("error", (e) => {
      throw e;
    });
  }
  send(args, onReply) {
    this.out.push(resp(args));
    this.waiting.push(onReply);
    if (this.out.length === 1) setImmediate(() => this.flush());
  }
  flush() {
    const bytes = Buffer.concat(this.out);
    this.out = [];
    this.socket.write(bytes);
  }
  // A durable write's reply: released by the first WAIT sent after it that a replica acknowledges.
  hold(release) {
    this.held.push(release);
  }
  onData(data) {
    this.in = this.in.length ? Buffer.concat([this.in, data]) : data;
    let at = 0;
    for (;;) {
      const reply = parseReply(this.in, at);
      if (!reply) break;
      at = reply.next;
      this.waiting.shift()(reply.value);
    }
    this.in = this.in.subarray(at);
    if (this.held.length) {
      const covered = this.held;
      this.held = [];
      this.send(["WAIT", "1", String(REPLICA_TIMEOUT_MS)], (acked) => {
        if (!(acked >= 1)) throw new Error(`WAIT: no replica acknowledged (${acked})`);
        for (const release of covered) release();
      });
    }
  }
}

// --- The writes -----------------------------------------------------------------------------------
const tags = Array.from({ length: PAIRS }, (_, p) => `floor${p.toString(16).padStart(8, "0")}`);
const owner = tags.map((tag) => slotOwner[slotOf(tag)]);
const state = crypto.randomBytes(200);
const commitSha = sha1(commitScript);
// Tokens and history keys only need to differ: a counter costs the client less than randomness.
let counter = 0n;
const unique = (size) => {
  const b = Buffer.alloc(size);
  b.writeBigUInt64BE(++counter, size - 8);
  return b;
};
const setValue = Buffer.concat([Buffer.from("D"), crypto.randomBytes(21), state]);

// Runs `mode` for `seconds` with WRITERS writers, each on a random pair no other writer holds.
async function runClient(mode) {
  const connections = masterPorts.map((port) => new Connection(port));
  const tokens = new Array(PAIRS).fill(Buffer.alloc(0));
  // Pairs start empty: each run's keys are its own.
  const prefix = `floor:${mode}:${crypto.randomBytes(4).toString("hex")}:`;
  const busy = new Uint8Array(PAIRS);
  let writes = 0;
  let conflicts = 0;
  let stop = false;
  const cpuBefore = nodesCpu();
  const clientBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  await new Promise((resolve) => {
    let running = WRITERS;
    const writer = () => {
      if (stop) {
        if (--running === 0) resolve();
        return;
      }
      let p;
      do p = Math.floor(Math.random() * PAIRS);
      while (busy[p]);
      busy[p] = 1;
      const connection = connections[owner[p]];
      const done = () => {
        busy[p] = 0;
        ++writes;
        writer();
      };
      const keys = commitKeys(prefix, tags[p]);
      if (mode === "commit_wait") {
        const next = unique(8);
        const eventKey = unique(17);
        eventKey[0] = 1;
        const args = commitArgs(tokens[p], next, state, eventKey, Date.now());
        connection.send(["EVALSHA", commitSha, "6", ...keys, ...args], (reply) => {
          if (reply instanceof Error) throw reply;
          if (reply[0] !== 1) ++conflicts;
          else tokens[p] = next;
          connection.hold(done);
        });
      } else {
        connection.send(["SET", keys[0], setValue], (reply) => {
          if (reply instanceof Error) throw reply;
          if (mode === "set_wait") connection.hold(done);
          else done();
        });
      }
    };
    for (let w = 0; w < WRITERS; ++w) writer();
    setTimeout(() => {
      stop = true;
    }, seconds * 1000);
  });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const client = process.cpuUsage(clientBefore);
  const cpu = nodesCpu() - cpuBefore;
  for (const c of connections) c.socket.destroy();
  if (conflicts) throw new Error(`${mode}: ${conflicts} commits found another token`);
  return {
    rps: writes / elapsed,
    nodes_us: (cpu * 1e6) / writes,
    client_us: (client.user + client.system) / writes,
  };
}

function runRedisBenchmark(requests) {
  const cpuBefore = nodesCpu();
  const out = execFileSync("redis-benchmark", ["--cluster", "-h", "127.0.0.1", "-p", String(seedPort),
    "-t", "set", "-c", String(WRITERS), "-P", "1", "-n", String(requests), "-r", "100000", "--csv"],
  { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  const cpu = nodesCpu() - cpuBefore;
  const m = out.match(/"SET","([0-9.]+)"/);
  if (!m) throw new Error(`redis-benchmark printed no SET rate: ${out}`);
  return { rps: Number(m[1]), nodes_us: (cpu * 1e6) / requests };
}

for (const port of masterPorts) {
  const loaded = execFileSync("redis-cli", ["-p", String(port), "-x", "SCRIPT", "LOAD"],
    { input: commitScript, encoding: "utf8" }).trim();
  if (loaded !== sha1(commitScript)) throw new Error(`SCRIPT LOAD on ${port} gave ${loaded}`);
}
const modes = ["commit_wait", "set_wait", "set"];
const runs = { redis_benchmark_set: [], commit_wait: [], set_wait: [], set: [] };
let rbRequests = 20000 * seconds;
for (let r = 0; r < rounds; ++r) {
  const rb = runRedisBenchmark(rbRequests);
  runs.redis_benchmark_set.push(rb);
  rbRequests = Math.floor(rb.rps * seconds);
  for (const mode of modes) runs[mode].push(await runClient(mode));
}
for (const port of masterPorts) {
  // What the runs stored: gone, so that the cluster's memory figures are callgate's alone.
  execFileSync("sh", ["-c", `redis-cli -p ${port} --scan --pattern 'floor:*' | xargs -r -n 500 redis-cli -p ${port} DEL >/dev/null`]);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const round1 = (x) => Math.round(x * 10) / 10;
const summary = (name) => ({
  rps: Math.round(median(runs[name].map((x) => x.rps))),
  nodes_us_per_write: round1(median(runs[name].map((x) => x.nodes_us))),
  ...(name === "redis_benchmark_set" ? {}
    : { client_us_per_write: round1(median(runs[name].map((x) => x.client_us))) }),
  over_redis_benchmark_set: name === "redis_benchmark_set" ? 1
    : Math.round(median(runs[name].map((x, i) => x.rps / runs.redis_benchmark_set[i].rps)) * 100) / 100,
});
console.log(JSON.stringify({
  seconds, rounds, writers: WRITERS, pairs: PAIRS,
  redis_benchmark_set: summary("redis_benchmark_set"),
  commit_wait: summary("commit_wait"),
  set_wait: summary("set_wait"),
  set: summary("set"),
}));
