// The log of the real binary: `callgate serve --log-format json --access-log on` writes every
// line of standard error as one JSON object, from the first start line to "stopped", with one
// access line per request that finds its X-Request-Id and errorId and holds no key, destination,
// path id or secret; text is time, level, message and key=value fields; `--access-log off` writes
// none; the CALLGATE_* twins work and a bad value is a clean startup error.
// usage: node --test tests/smoke/log_smoke.mjs   (CALLGATE_BINARY=<path to callgate>)
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';

const binary = process.env.CALLGATE_BINARY;
assert.ok(binary, 'set CALLGATE_BINARY to the callgate binary');
const work = mkdtempSync(join(tmpdir(), 'callgate-log-'));
const children = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

const SECRET = 'smoke-app-secret-5Jq';
const TOKEN = 'smoke-verify-token-8Wd';
const STATUS = '/api/v1/whatsapp/subaccounts/{subAccountId}/channels/{channelId}/callPermissions';
const BSUID = 'US.8430651272995310';

// A signed delivery to the demo channel: a reply from a phone number, one from a user known only by
// a BSUID, and a text message (never applied), so the delivery is logged as not all applied.
function delivery() {
  const at = String(Math.floor(Date.now() / 1000));
  const reply = (from, id) => ({
    from, id, timestamp: at, type: 'interactive',
    interactive: { type: 'call_permission_reply', call_permission_reply: { response: 'accept', is_permanent: true, response_source: 'user_action' } },
  });
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [{ id: '1', changes: [{ field: 'messages', value: {
      metadata: { phone_number_id: '100000000000001' },
      messages: [reply('6591234567', 'wamid.S1'), reply(BSUID, 'wamid.S2'),
        { from: '6591234567', id: 'wamid.S3', timestamp: at, type: 'text', text: { body: 'hi' } }],
    } }] }],
  });
  const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
  return { method: 'POST', body, headers: { 'X-Hub-Signature-256': signature } };
}
let run = 0;

// Serves a fresh demo data directory with `args` and `env`; resolves with the port and the key.
function serve(args, env = {}) {
  const child = spawn(binary, ['serve', '--listen', '127.0.0.1:0', '--data-dir',
    join(work, `data-${++run}`), '--threads', '2', '--demo', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const server = { child, out: '', err: '' };
  // 'close', not 'exit': only then has all of standard error been read.
  server.exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  child.stderr.on('data', (d) => { server.err += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no demo line: ${server.out} ${server.err}`)), 15000);
    child.stdout.on('data', (d) => {
      server.out += d;
      const port = server.out.match(/callgate listening on http:\/\/127\.0\.0\.1:(\d+)/);
      const key = server.out.match(/Bearer (cgk_[^']+)'/);
      if (port && key) {
        clearTimeout(timer);
        resolve(Object.assign(server, { port: Number(port[1]), key: key[1] }));
      }
    });
    server.exited.then((code) => reject(new Error(`exited ${code}: ${server.err}`)));
  });
}

// Stops `server` with SIGTERM; its standard error, once it exited 0.
async function stop(server) {
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0, server.err);
  return server.err;
}

const pair = (port) => `http://127.0.0.1:${port}/api/v1/whatsapp/subaccounts/demo-sub/channels/demo-channel`;

// A few requests of each kind; each answer's status, X-Request-Id and errorId.
async function requests(server) {
  const auth = { Authorization: `Bearer ${server.key}` };
  const base = `http://127.0.0.1:${server.port}`;
  const asked = [
    [`${pair(server.port)}/callPermissions?destination=%2B6591234567`, { headers: { ...auth, 'X-Request-Id': 'smoke-1' } }],
    [`${pair(server.port)}/callPermissions?destination=6591234567`, { headers: auth }],
    [`${pair(server.port)}/callPermissions?destination=%2B6591234567`, { headers: { Authorization: `Bearer ${server.key}x` } }],
    [`${base}/no/such/path?destination=%2B6591234567`, {}],
    [`${base}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${TOKEN}&hub.challenge=7`, {}],
    [`${base}/webhooks/whatsapp`, { method: 'POST', body: '{}', headers: { 'X-Hub-Signature-256': 'sha256=00' } }],
    [`${base}/webhooks/whatsapp`, delivery()],
    [`${base}/healthz`, {}],
  ];
  const answers = [];
  for (const [url, init] of asked) {
    const res = await fetch(url, init);
    const body = await res.text();
    answers.push({
      status: res.status,
      requestId: res.headers.get('x-request-id'),
      errorId: res.status >= 400 ? JSON.parse(body).errorId : undefined,
    });
  }
  return answers;
}

test('json: every line is one object; each request has its access line, and nothing secret', async () => {
  const server = await serve(['--log-format', 'json', '--access-log', 'on',
    '--meta-app-secret', SECRET, '--meta-verify-token', TOKEN]);
  const answers = await requests(server);
  const err = await stop(server);
  const lines = err.trimEnd().split('\n').map((text) => {
    assert.doesNotThrow(() => JSON.parse(text), text);
    return JSON.parse(text);
  });
  for (const line of lines) {
    assert.match(line.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.ok(['info', 'warn', 'error'].includes(line.level), JSON.stringify(line));
    assert.equal(typeof line.msg, 'string');
  }
  assert.match(lines[0].msg, /^serving .* with 2 thread\(s\)/);
  assert.equal(lines.at(-1).msg, 'stopped');
  const access = lines.filter((l) => l.msg === 'access');
  assert.equal(access.length, answers.length, err);
  for (const answer of answers) {
    const line = access.find((l) => l.requestId === answer.requestId);
    assert.ok(line, `no access line for ${answer.requestId}`);
    assert.equal(line.status, answer.status);
    assert.equal(line.errorId, answer.errorId);
    assert.ok(line.durationMs >= 0 && Number.isInteger(line.bytes));
  }
  assert.equal(access[0].requestId, 'smoke-1');
  assert.equal(access[0].route, STATUS);
  assert.equal(access[0].method, 'GET');
  assert.equal(access[1].code, 1002);
  assert.equal(access[3].route, 'unmatched');
  assert.equal(access[6].status, 200);
  assert.ok(lines.some((l) => l.level === 'warn' && /^webhook: not all applied/.test(l.msg)), err);
  for (const secret of [server.key.slice(0, 20), SECRET, TOKEN, '6591234567', BSUID, 'US.',
    'demo-sub', 'no/such', 'destination', 'wamid']) {
    assert.ok(!err.includes(secret), `the log holds ${secret}:\n${err}`);
  }
});

test('text: time, level, message, then key=value fields', async () => {
  const server = await serve(['--log-format', 'text']);
  const [first] = await requests(server);
  const err = await stop(server);
  for (const line of err.trimEnd().split('\n')) {
    assert.match(line, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (info|warn|error) \S/);
  }
  assert.match(err, /Z warn no --meta-app-secret: every webhook delivery will be refused \(401\)\n/);
  assert.match(err, new RegExp(`Z info access requestId=smoke-1 method=GET route=${STATUS.replace(/[{}]/g, '\\$&')} status=${first.status} durationMs=\\d+\\.\\d{3} bytes=\\d+\\n`));
  assert.match(err, /Z info access requestId=\S+ method=GET route=\S+ status=400 code=1002 errorId=[0-9a-f-]{36} durationMs=/);
});

test('--access-log off writes no access line; the CALLGATE_* twins set both', async () => {
  const server = await serve(['--access-log', 'off']);
  await requests(server);
  const err = await stop(server);
  assert.doesNotMatch(err, / access /);
  assert.match(err, /Z info serving /);

  const twin = await serve([], { CALLGATE_LOG_FORMAT: 'json', CALLGATE_ACCESS_LOG: 'off' });
  await requests(twin);
  const lines = (await stop(twin)).trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.length >= 2);
  assert.ok(!lines.some((l) => l.msg === 'access'));
});

test('a bad --log-format or --access-log is a clean startup error', () => {
  for (const [args, env, flag] of [
    [['--log-format', 'xml'], {}, '--log-format'],
    [['--access-log', 'yes'], {}, '--access-log'],
    [[], { CALLGATE_LOG_FORMAT: 'JSON' }, '--log-format'],
    [[], { CALLGATE_ACCESS_LOG: '1' }, '--access-log'],
  ]) {
    const r = spawnSync(binary, ['serve', '--data-dir', join(work, 'never'), ...args],
      { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 15000 });
    assert.notEqual(r.status, 0, `${args} ${JSON.stringify(env)} started`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(flag), r.stderr);
  }
});
