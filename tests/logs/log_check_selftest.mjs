// Proves log_check.mjs can fail: runs it on a valid log and on copies with one planted fault each
// (a phone number, a key, a BSUID, a canary, a raw path, a missing errorId or request id, ...),
// and checks each is accepted or rejected, and rejected for the intended reason.
// usage: node tests/logs/log_check_selftest.mjs [openapi.json]   (default: docs/openapi.json)
import { runSelftest } from '../selftest_runner.mjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const openapi = process.argv[2] ?? resolve(here, '../../docs/openapi.json');
const canariesPath = join(here, 'canaries.json');
const canaries = JSON.parse(readFileSync(canariesPath, 'utf8'));
const checker = join(here, 'log_check.mjs');
const work = mkdtempSync(join(tmpdir(), 'callgate-log-selftest-'));

const STATUS = '/api/v1/whatsapp/subaccounts/{subAccountId}/channels/{channelId}/callPermissions';
const CALLS = '/api/v1/whatsapp/subaccounts/{subAccountId}/channels/{channelId}/calls';
const E400 = '0d5c7b8e-1f0a-4c1e-9d55-6b2f3f1c9a01';
const E500 = '7a0e6d4c-2b1f-4e8a-8c3d-5f6e7a8b9c0d';
const GENERATED = 'c1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8';
const path = '/api/v1/whatsapp/subaccounts/sub-a/channels/chan-a';
const envelope = (code, errorId) =>
  JSON.stringify({ code, message: 'm', errorId, timestamp: '2026-02-01T08:12:30.000Z' });
const responses = [
  { method: 'GET', path: `${path}/callPermissions?destination=%2B6500000000`, status: 200, body: '{}', headers: { 'X-Request-Id': 'r-1' } },
  { method: 'GET', path: `${path}/callPermissions?destination=12`, status: 400, body: envelope(1002, E400), headers: { 'X-Request-Id': GENERATED } },
  { method: 'POST', path: `${path}/calls`, status: 500, body: envelope(2000, E500), headers: { 'x-request-id': 'r-3' } },
];
const time = '2026-02-01T08:12:30.123Z';
const line = (fields) => JSON.stringify({ time, level: 'info', ...fields });
const accessLine = (fields) => line({ msg: 'access', method: 'GET', route: STATUS, durationMs: 0.052, bytes: 300, ...fields });
const valid = [
  line({ msg: 'serving /tmp/data with 2 thread(s), up to 100 connections' }),
  accessLine({ requestId: 'r-1', status: 200 }),
  accessLine({ requestId: GENERATED, status: 400, code: 1002, errorId: E400 }),
  line({ level: 'error', msg: 'storing a reservation failed: store io', errorId: E500 }),
  accessLine({ requestId: 'r-3', method: 'POST', route: CALLS, status: 500, code: 2000, errorId: E500 }),
];
const replace = (i, text) => valid.map((l, j) => (j === i ? text : l));
const without = (i) => valid.filter((_, j) => j !== i);
const plant = (msg) => [...valid, line({ level: 'warn', msg })];

// [name, log lines, expected exit code, patterns the output must contain]
const cases = [
  ['valid', valid, 0, [/^log: 5 lines, 3 access lines; 3 of 3 responses found; 0 problems$/m]],
  ['a phone number', plant('call to +6591234567 failed'), 1, [/^line 6: holds an E.164 phone number: "\+6591234567"$/m]],
  ['a destination of the run, without its +', plant('pair 6500000000 failed'), 1, [/^line 6: holds the destination digits 6500000000/m]],
  ['an API key', plant('key cgk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA refused'), 1, [/^line 6: holds an API key or key id/m]],
  ['a BSUID', plant('user US.13491208655302741918 skipped'), 1, [/^line 6: holds a BSUID: "US\.13491208655302741918"$/m]],
  ['a webhook secret', plant(`secret ${canaries.appSecret}`), 1, [/^line 6: holds the canary appSecret/m]],
  ['a verify token', plant(`token ${canaries.verifyToken}`), 1, [/^line 6: holds the canary verifyToken/m]],
  ['a raw path for a route', replace(1, accessLine({ requestId: 'r-1', status: 200, route: responses[0].path })), 1,
    [/^line 2: holds a path with ids/m, /^line 2: holds a query string/m, /^line 2: access line: route .* is not a path template of the API$/m]],
  ['an errorId not in the log', replace(2, accessLine({ requestId: GENERATED, status: 400, code: 1002, errorId: E500.replace('7', '8') })), 1,
    [new RegExp(`^response 2 \\(GET 400\\): errorId ${E400} is not in the log$`, 'm')]],
  ['an errorId under another request',
    [...replace(2, accessLine({ requestId: 'r-1', status: 400, code: 1002, errorId: E400 })),
      accessLine({ requestId: GENERATED, status: 400, code: 1002, errorId: E500.replace('7', '8') })], 1,
    [new RegExp(`^response 2 \\(GET 400\\): errorId ${E400} logged with request r-1 400, answered with ${GENERATED} 400$`, 'm')]],
  ['a request id not in the log', without(1), 1, [/^response 1 \(GET 200\): no access line for X-Request-Id r-1 with status 200$/m]],
  ['a 5xx without the line saying what failed', without(3), 1, [/^response 3 \(POST 500\): errorId \S+ has no error line/m]],
  ['a line that is not JSON', [...valid, 'callgate: serving /tmp/data'], 1, [/^line 6: not JSON/m]],
  ['a message that broke its line', [...valid, '{"time":"2026-02-01T08:12:30.123Z","level":"info","msg":"two', 'lines"}'], 1,
    [/^line 6: not JSON/m, /^line 7: not JSON/m]],
  ['a time without ms', replace(0, line({ time: '2026-02-01T08:12:30Z', msg: 'm' })), 1, [/^line 1: time "2026-02-01T08:12:30Z" is not RFC 3339 UTC with ms$/m]],
  ['a code on a success', replace(1, accessLine({ requestId: 'r-1', status: 200, code: 1000 })), 1, [/^line 2: access line: code or errorId on a success$/m]],
  ['an access line with an extra field', replace(1, accessLine({ requestId: 'r-1', status: 200, path: '/x' })), 1, [/^line 2: access line: unexpected field path$/m]],
  ['an empty log', [], 1, [/^no access line: nothing was checked$/m]],
];

const responsesPath = join(work, 'responses.jsonl');
writeFileSync(responsesPath, responses.map((r) => JSON.stringify(r)).join('\n') + '\n');
const logPath = join(work, 'e2e.log');
const status = runSelftest(cases.map(([name, lines, wantExit, patterns]) => ({
  name,
  args: [checker, openapi, responsesPath, logPath, canariesPath],
  wantExit,
  patterns,
  prepare: () => writeFileSync(logPath, lines.map((l) => `${l}\n`).join('')),
})));
rmSync(work, { recursive: true, force: true });
process.exit(status);
