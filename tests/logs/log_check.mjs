// Checks the log of the e2e run (every line the servers wrote, in json, access log on) against the
// responses the run recorded:
//   - every line is one JSON object with time (RFC 3339 UTC, ms), level and msg; an access line
//     has exactly its fields (requestId, method, route, status, code and errorId on errors only,
//     durationMs, bytes) and its route is a path template of the API description, never a path;
//   - every recorded response's X-Request-Id has an access line with the response's status, and
//     every error response's errorId has the access line of that request (same requestId), a 5xx
//     also an error line: a client's errorId or request id finds the request in the log;
//   - nothing in the log is personal or secret: no E.164-looking number, no digits of a
//     destination the run used, no BSUID, no API key (or key id), no query string or path with
//     ids, none of the canaries tests/e2e/log_e2e_test.cc planted in its requests.
// Exit 0 only if no line and no response failed and there was something to check.
// usage: node tests/logs/log_check.mjs <openapi.json> <responses.jsonl> <log> <canaries.json>
import { readFileSync } from 'node:fs';

const [openapiPath, responsesPath, logPath, canariesPath] = process.argv.slice(2);
if (!canariesPath) {
  console.error('usage: node tests/logs/log_check.mjs <openapi.json> <responses.jsonl> <log> <canaries.json>');
  process.exit(2);
}

let doc, responses, logText, canaries;
try {
  doc = JSON.parse(readFileSync(openapiPath, 'utf8'));
  responses = readFileSync(responsesPath, 'utf8').split('\n').filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
  logText = readFileSync(logPath, 'utf8');
  canaries = JSON.parse(readFileSync(canariesPath, 'utf8'));
} catch (e) {
  console.error(`log: cannot start: ${e.message}`);
  process.exit(2);
}

const problems = [];
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const LEVELS = ['info', 'warn', 'error'];
const ROUTES = new Set([...Object.keys(doc.paths ?? {}), 'unmatched', 'rejected']);
const ACCESS_FIELDS = ['time', 'level', 'msg', 'requestId', 'method', 'route', 'status', 'code',
  'errorId', 'durationMs', 'bytes'];

// What must never appear, each with what it is.
const forbidden = [
  [/\+\d{8,15}/, 'an E.164 phone number'],
  [/%2B\d{6,15}/i, 'a URL-encoded phone number'],
  [/\bUS\.(ENT\.)?[A-Za-z0-9]+/, 'a BSUID'],
  [/cgk_[0-9a-f]{16}/, 'an API key or key id'],
  [/subaccounts\/[^{/]/, 'a path with ids'],
  [/[?&][A-Za-z_.]+=/, 'a query string'],
];
const literal = (s) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
for (const [name, value] of Object.entries(canaries)) {
  if (name === 'about') continue;
  forbidden.push([literal(value), `the canary ${name}`]);
  if (/^\+\d+$/.test(value)) forbidden.push([literal(value.slice(1)), `the canary ${name}'s digits`]);
}
// The destinations the run used (in its paths and bodies), as bare digits too.
const destinations = new Set();
for (const r of responses) {
  for (const text of [r.path ?? '', r.body ?? '']) {
    for (const m of text.matchAll(/(?:%2B|\+)(\d{8,15})/gi)) destinations.add(m[1]);
  }
}
for (const digits of destinations) forbidden.push([literal(digits), `the destination digits ${digits}`]);

// Every line: JSON with the common fields; access lines with exactly theirs.
const access = [];
const errorLines = new Map(); // errorId -> line number, of level error lines
let lineCount = 0;
logText.split('\n').forEach((text, i) => {
  if (text === '') return;
  ++lineCount;
  const where = `line ${i + 1}`;
  for (const [pattern, what] of forbidden) {
    const m = pattern.exec(text);
    if (m) problems.push(`${where}: holds ${what}: ${JSON.stringify(m[0])}`);
  }
  let line;
  try {
    line = JSON.parse(text);
  } catch (e) {
    return problems.push(`${where}: not JSON: ${e.message}`);
  }
  if (typeof line !== 'object' || line === null || Array.isArray(line)) {
    return problems.push(`${where}: not a JSON object`);
  }
  if (typeof line.time !== 'string' || !TIME.test(line.time)) problems.push(`${where}: time ${JSON.stringify(line.time)} is not RFC 3339 UTC with ms`);
  if (!LEVELS.includes(line.level)) problems.push(`${where}: level ${JSON.stringify(line.level)}`);
  if (typeof line.msg !== 'string' || line.msg === '') problems.push(`${where}: no msg`);
  if (line.level === 'error' && typeof line.errorId === 'string') errorLines.set(line.errorId, i + 1);
  if (line.msg !== 'access') return;
  const bad = [];
  for (const key of Object.keys(line)) if (!ACCESS_FIELDS.includes(key)) bad.push(`unexpected field ${key}`);
  if (line.level !== 'info') bad.push(`level ${line.level}`);
  if (typeof line.requestId !== 'string' || !REQUEST_ID.test(line.requestId)) bad.push(`requestId ${JSON.stringify(line.requestId)}`);
  if (typeof line.method !== 'string' || !/^([A-Z]+|-)$/.test(line.method)) bad.push(`method ${JSON.stringify(line.method)}`);
  if (!ROUTES.has(line.route)) bad.push(`route ${JSON.stringify(line.route)} is not a path template of the API`);
  if (!Number.isInteger(line.status) || line.status < 100 || line.status > 599) bad.push(`status ${line.status}`);
  if (typeof line.durationMs !== 'number' || !(line.durationMs >= 0)) bad.push(`durationMs ${line.durationMs}`);
  if (!Number.isInteger(line.bytes) || line.bytes < 0) bad.push(`bytes ${line.bytes}`);
  if (line.status >= 400) {
    if (!Number.isInteger(line.code) || line.code <= 0) bad.push(`an error without its code`);
    if (typeof line.errorId !== 'string' || !UUID.test(line.errorId)) bad.push(`errorId ${JSON.stringify(line.errorId)}`);
  } else if ('code' in line || 'errorId' in line) {
    bad.push('code or errorId on a success');
  }
  if (bad.length) problems.push(`${where}: access line: ${bad.join('; ')}`);
  access.push(line);
});

// Every recorded response is findable: by its X-Request-Id, and an error by its errorId.
const byRequestId = new Map();
const byErrorId = new Map();
for (const line of access) {
  if (!byRequestId.has(line.requestId)) byRequestId.set(line.requestId, []);
  byRequestId.get(line.requestId).push(line);
  if (line.errorId) byErrorId.set(line.errorId, line);
}
let matched = 0;
responses.forEach((r, i) => {
  const where = `response ${i + 1} (${r.method} ${r.status})`;
  const header = Object.entries(r.headers ?? {}).find(([k]) => k.toLowerCase() === 'x-request-id');
  if (!header) return problems.push(`${where}: no X-Request-Id recorded`);
  const requestId = header[1];
  const lines = byRequestId.get(requestId) ?? [];
  if (!lines.some((l) => l.status === r.status)) {
    return problems.push(`${where}: no access line for X-Request-Id ${requestId} with status ${r.status}`);
  }
  if (r.status >= 400) {
    let errorId;
    try {
      errorId = JSON.parse(r.body).errorId;
    } catch {
      // the contract check reports a body that is not JSON
    }
    if (typeof errorId !== 'string') return problems.push(`${where}: no errorId in the body`);
    const line = byErrorId.get(errorId);
    if (!line) return problems.push(`${where}: errorId ${errorId} is not in the log`);
    if (line.requestId !== requestId || line.status !== r.status) {
      return problems.push(`${where}: errorId ${errorId} logged with request ${line.requestId} ${line.status}, answered with ${requestId} ${r.status}`);
    }
    if (r.status >= 500 && !errorLines.has(errorId)) {
      return problems.push(`${where}: errorId ${errorId} has no error line saying what failed`);
    }
  }
  ++matched;
});

for (const p of problems.slice(0, 50)) console.log(p);
if (problems.length > 50) console.log(`... and ${problems.length - 50} more`);
if (access.length === 0) console.log('no access line: nothing was checked');
if (responses.length === 0) console.log('no recorded response: nothing was checked');
console.log(`log: ${lineCount} lines, ${access.length} access lines; ${matched} of ${responses.length} responses found; ${problems.length} problems`);
process.exit(problems.length > 0 || access.length === 0 || responses.length === 0 ? 1 : 0);
