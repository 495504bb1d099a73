// What callgate sends Redis for one call authorisation, for the benchmarks that replay it without
// callgate (script_cost.mjs, durable_floor.mjs): the commit script (CommitPair), read from
// src/store/redis/scripts.cc so that it is the very script callgate sends, its keys and
// arguments, and RESP framing.
import crypto from "node:crypto";
import fs from "node:fs";

const source = fs.readFileSync(new URL("../src/store/redis/scripts.cc", import.meta.url), "utf8");
const literal = (name) => {
  const m = source.match(new RegExp(`constexpr char ${name}\\[\\] = R"lua\\(([\\s\\S]*?)\\)lua";`));
  if (!m) throw new Error(`${name} not found in scripts.cc`);
  return m[1];
};
const body = source.match(/const redis::Script& CommitPair\(\) \{[\s\S]*?R"lua\(([\s\S]*?)\)lua"\);/);
if (!body) throw new Error("CommitPair not found in scripts.cc");

export const commitScript = literal("kPairCodec") + literal("kOutboxCodec") + body[1];
export const sha1 = (text) => crypto.createHash("sha1").update(text).digest("hex");

// One command as RESP: an array of bulk strings.
export const resp = (args) => {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
};

// The six keys of pair `tag` (a {hash tag}: all in one slot, as callgate's are): pair, history,
// records, claim, outbox, and the outbox index (callgate's is per slot; one per pair here).
export const commitKeys = (prefix, tag) =>
  ["p", "h", "i", "c", "o", "ox"].map((k) => `${prefix}{${tag}}:${k}`);

// The arguments of a commit shaped as a call authorisation (a ~200-byte state, one new history
// entry, no idempotency key, no notification) that expects `token` and leaves `next`.
export const commitArgs = (token, next, state, eventKey, nowMs) => [
  token, "", "", "1", next, state, "", "", String(nowMs * 1000), String(nowMs), "86400000",
  "bench:0", "0", eventKey, String(nowMs), Buffer.from([1, 0xa0, 0xfe, 0x0a])];
