// What one durable write costs Redis itself, apart from replication, the AOF and the network:
// callgate's commit script (CommitPair, src/store/redis/scripts.cc, read from the source so that it
// is the script callgate sends) replayed pipelined on a standalone redis-server of its own,
// against the same writes as plain commands (a SET of the pair's value and an HSET of one history
// entry), and against an EVALSHA of `return {1}` with the same keys and arguments (the price of
// calling a script at all). Server CPU (INFO cpu) per commit, median over alternating rounds;
// ratios against the plain commands of the same round.
//   node bench/script_cost.mjs [PORT=7390] [ROUNDS=3]
// Needs redis-server and redis-cli (bench/run.sh installs them). Prints one JSON line.
import { execFileSync, spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { commitArgs, commitKeys, commitScript, resp, sha1 } from "./commit_shape.mjs";

const port = Number(process.argv[2] ?? 7390);
const rounds = Number(process.argv[3] ?? 3);
const PAIRS = 1000; // distinct pairs, each committed COMMITS times: a history of that many entries
const COMMITS = 30;

const emptyScript = "return {1}\n";

// The commits, shaped as callgate's (a call authorisation: a ~200-byte state, one history entry,
// no idempotency key, no notification), each expecting the token the one before it left.
const work = fs.mkdtempSync(path.join(os.tmpdir(), "callgate-script-cost-"));
const files = { commit: [], empty: [], plain: [] };
const token = new Array(PAIRS).fill(Buffer.alloc(0));
const now = Date.now();
for (let c = 0; c < COMMITS; ++c) {
  for (let p = 0; p < PAIRS; ++p) {
    const keys = commitKeys("bench:", p.toString(16).padStart(24, "0"));
    const next = crypto.randomBytes(8);
    const state = crypto.randomBytes(200);
    const eventKey = Buffer.concat([Buffer.from([1]), crypto.randomBytes(16)]);
    const args = commitArgs(token[p], next, state, eventKey, now);
    files.commit.push(resp(["EVALSHA", sha1(commitScript), "6", ...keys, ...args]));
    files.empty.push(resp(["EVALSHA", sha1(emptyScript), "6", ...keys, ...args]));
    files.plain.push(resp(["SET", keys[0], Buffer.concat([Buffer.from("D"), next, Buffer.alloc(13), state])]));
    files.plain.push(resp(["HSET", keys[1], eventKey, Buffer.alloc(17)]));
    token[p] = next;
  }
}
for (const [name, chunks] of Object.entries(files)) {
  fs.writeFileSync(path.join(work, `${name}.resp`), Buffer.concat(chunks));
}

// --- The server ----------------------------------------------------------------------------------
const server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "",
  "--appendonly", "no", "--dir", work], { stdio: "ignore" });
const cli = (...args) => execFileSync("redis-cli", ["-p", String(port), ...args], { encoding: "utf8" });
const cliInput = (input, ...args) =>
  execFileSync("redis-cli", ["-p", String(port), ...args], { input, encoding: "utf8" });
try {
  for (let i = 0; ; ++i) {
    try {
      if (cli("PING").trim() === "PONG") break;
    } catch {}
    if (i > 100) throw new Error(`redis-server did not start on port ${port}`);
    execFileSync("sleep", ["0.1"]);
  }
  for (const script of [commitScript, emptyScript]) {
    const loaded = cliInput(script, "-x", "SCRIPT", "LOAD").trim();
    if (loaded !== sha1(script)) throw new Error(`SCRIPT LOAD gave ${loaded}, expected ${sha1(script)}`);
  }
  const cpu = () => {
    const info = cli("INFO", "cpu");
    const field = (n) => Number(info.match(new RegExp(`${n}:([0-9.]+)`))[1]);
    return field("used_cpu_user") + field("used_cpu_sys");
  };
  const runs = { commit: [], empty: [], plain: [] };
  const commits = PAIRS * COMMITS;
  for (let r = 0; r < rounds; ++r) {
    for (const name of ["plain", "commit", "empty"]) {
      cli("FLUSHALL");
      const before = cpu();
      const out = execFileSync("redis-cli", ["-p", String(port), "--pipe"],
        { input: fs.readFileSync(path.join(work, `${name}.resp`)), encoding: "utf8" });
      const after = cpu();
      const m = out.match(/errors: (\d+), replies: (\d+)/);
      if (!m || m[1] !== "0") throw new Error(`${name}: ${out.trim()}`);
      if (name === "commit") {
        // Every commit expected the token the one before it left: all of them wrote.
        const history = Number(cli("HLEN", `bench:{${"0".padStart(24, "0")}}:h`).trim());
        if (history !== COMMITS) throw new Error(`a pair's history holds ${history}, not ${COMMITS}`);
      }
      runs[name].push(((after - before) * 1e6) / commits);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const ratios = (name) => runs[name].map((v, i) => v / runs.plain[i]);
  const round1 = (x) => Math.round(x * 10) / 10;
  console.log(JSON.stringify({
    redis: cli("INFO", "server").match(/redis_version:(\S+)/)[1],
    commits, rounds,
    us_per_commit: {
      script: round1(median(runs.commit)),
      empty_script: round1(median(runs.empty)),
      set_and_hset: round1(median(runs.plain)),
    },
    script_over_set_and_hset: round1(median(ratios("commit"))),
    empty_script_over_set_and_hset: round1(median(ratios("empty"))),
  }));
} finally {
  try {
    cli("SHUTDOWN", "NOSAVE");
  } catch {}
  server.kill();
  fs.rmSync(work, { recursive: true, force: true });
}
