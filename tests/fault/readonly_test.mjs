// Fault test: the data directory is on a file system that is read-only when the server starts
// (after a clean stop, and after kill -9 left the WAL behind), then becomes writable while it
// runs. Asserted: it starts and serves status and history reads of exactly what was acknowledged;
// every write (reservation, call authorisation, webhook delivery) is a clean 500/2000 envelope and
// the process lives; /readyz is 503/2000; admin writes fail with a clear message and a non-zero
// exit while admin reads work; once the mount is writable again, without a restart, /readyz is 200
// and writes succeed within seconds; after kill -9 and a restart everything acknowledged is there.
// And a read-only directory holding no store fails to start with one error line.
// Needs root (it mounts tmpfs file systems); CTest registers it only then.
// usage: node --test tests/fault/readonly_test.mjs   (CALLGATE_BINARY=<path to callgate>)
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';

const binary = process.env.CALLGATE_BINARY;
assert.ok(binary, 'set CALLGATE_BINARY to the callgate binary');
const work = mkdtempSync(join(tmpdir(), 'callgate-readonly-'));
const mounts = [];
const children = [];
const appSecret = 'readonly-test-secret';
const phoneNumberId = '100000000000078';

after(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const m of mounts) spawnSync('umount', [m]);
  rmSync(work, { recursive: true, force: true });
});

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

// A fresh 32 MiB tmpfs; returns its mount point.
function mountTmpfs(name) {
  const mountPoint = join(work, name);
  mkdirSync(mountPoint);
  run('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', mountPoint]);
  mounts.push(mountPoint);
  return mountPoint;
}

const remount = (mountPoint, mode) => run('mount', ['-o', `remount,${mode}`, mountPoint]);

function admin(dataDir, ...args) {
  return spawnSync(binary, ['admin', '--data-dir', dataDir, ...args], { encoding: 'utf8' });
}

function adminOk(dataDir, ...args) {
  const r = admin(dataDir, ...args);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

function serve(dataDir) {
  const child = spawn(binary, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir,
    '--threads', '2', '--meta-app-secret', appSecret], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  let out = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  // Started once the port is on stdout and every start line on stderr (the last says where it
  // serves).
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line: ${out} ${err}`)), 15000);
    const check = () => {
      const m = out.match(/callgate listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && /Z info serving .*\n/.test(err)) {
        clearTimeout(timer);
        resolve({ child, exited, port: Number(m[1]), stderr: () => err });
      }
    };
    child.stdout.on('data', (d) => { out += d; check(); });
    child.stderr.on('data', (d) => { err += d; check(); });
    exited.then((how) => reject(new Error(`exited ${how}: ${err}`)));
  });
}

async function stop(server, signal) {
  server.child.kill(signal);
  const how = await server.exited;
  if (signal === 'SIGTERM') assert.equal(how, 0, server.stderr());
}

const base = (port) => `http://127.0.0.1:${port}/api/v1/whatsapp/subaccounts/sub/channels/ch`;
const number = (i) => `+6592${String(i).padStart(6, '0')}`;

async function post(url, key, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...headers },
    body,
  });
  return { status: res.status, body: await res.json() };
}

const reserve = (port, key, i) => post(`${base(port)}/callPermissionRequests`, key,
  JSON.stringify({ destination: number(i), messageId: `wamid.readonly-${i}` }));

// The send_call_permission_request usage of pair i over 24 h: 1 once its reservation is stored.
async function requestsOf(port, key, i) {
  const res = await fetch(`${base(port)}/callPermissions?destination=${encodeURIComponent(number(i))}`,
    { headers: { Authorization: `Bearer ${key}` } });
  assert.equal(res.status, 200, `status read of pair ${i}`);
  return (await res.json()).actions[0].limits[0].currentUsage;
}

async function historyOf(port, key, i) {
  const res = await fetch(
    `${base(port)}/callPermissions/history?destination=${encodeURIComponent(number(i))}`,
    { headers: { Authorization: `Bearer ${key}` } });
  assert.equal(res.status, 200, `history read of pair ${i}`);
  return (await res.json()).entries;
}

// A signed delivery: pair i's user accepts a permanent permission (a write when applied).
function delivery(port, i) {
  const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '1', changes: [{
    field: 'messages', value: { metadata: { phone_number_id: phoneNumberId }, messages: [{
      from: number(i).slice(1), id: `wamid.reply-${i}`, timestamp: String(Math.floor(Date.now() / 1000)),
      type: 'interactive', interactive: { type: 'call_permission_reply', call_permission_reply: {
        response: 'accept', is_permanent: true, response_source: 'user_action' } } }] } }] }] });
  const signature = createHmac('sha256', appSecret).update(body).digest('hex');
  return post(`http://127.0.0.1:${port}/webhooks/whatsapp`, null, body,
    { 'X-Hub-Signature-256': `sha256=${signature}` });
}

function assertCleanFailure(r, what) {
  assert.equal(r.status, 500, `${what}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.code, 2000, what);
  assert.match(r.body.errorId, /^[0-9a-f-]{36}$/, what);
  assert.ok(r.body.timestamp, what);
}

async function waitFor(condition, ms) {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(condition(), `not within ${ms} ms`);
}

const readyz = async (port) => {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, body: await res.json() };
};

// Everything acknowledged reads back: each reserved pair's usage and its whole history, and a
// pair never written reads as such.
async function assertAcknowledged(port, key, acknowledged, histories) {
  for (const i of acknowledged) {
    assert.equal(await requestsOf(port, key, i), 1, `pair ${i}`);
    if (histories.has(i)) assert.deepEqual(await historyOf(port, key, i), histories.get(i), `history ${i}`);
  }
  assert.equal(await requestsOf(port, key, 999999), 0);
}

async function scenario(name, stopSignal) {
  const mountPoint = mountTmpfs(name);
  const dataDir = join(mountPoint, 'data');
  adminOk(dataDir, 'account', 'create', 'acct');
  adminOk(dataDir, 'subaccount', 'create', 'sub', '--account', 'acct');
  adminOk(dataDir, 'channel', 'create', 'ch', '--subaccount', 'sub', '--phone-number-id', phoneNumberId);
  const key = adminOk(dataDir, 'key', 'create', '--account', 'acct');

  let server = await serve(dataDir);
  const acknowledged = [];
  const histories = new Map();
  let i = 0;
  for (; i < 40; ++i) {
    const r = await reserve(server.port, key, i);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    acknowledged.push(i);
  }
  for (const n of [0, 17, 39]) histories.set(n, await historyOf(server.port, key, n));
  assert.equal(histories.get(0).length, 1);
  await stop(server, stopSignal);
  // What each scenario is about: a clean stop removes the WAL, kill -9 leaves it.
  assert.equal(existsSync(join(dataDir, 'callgate.db-wal')), stopSignal === 'SIGKILL');
  remount(mountPoint, 'ro');

  // Read-only: it starts, serves reads, refuses writes cleanly.
  server = await serve(dataDir);
  assert.match(server.stderr(), /cannot be written \(Read-only file system\): serving reads only/);
  await assertAcknowledged(server.port, key, acknowledged, histories);
  const failed = await reserve(server.port, key, i);
  assertCleanFailure(failed, 'a reservation');
  // Logged once with its errorId, saying what failed; and in the request's access line.
  const logged = () => server.stderr().split('\n').filter((l) => l.includes(failed.body.errorId));
  await waitFor(() => logged().length === 2, 2000);
  assert.deepEqual(logged().map((l) => l.split(' ')[1]).sort(), ['error', 'info'], server.stderr());
  assert.match(logged().find((l) => / error /.test(l)), / failed: store .+ errorId=/);
  assertCleanFailure(await post(`${base(server.port)}/calls`, key,
    JSON.stringify({ destination: number(0) })), 'a call authorisation');
  assertCleanFailure(await delivery(server.port, 0), 'a webhook delivery');
  let ready = await readyz(server.port);
  assert.equal(ready.status, 503);
  assert.equal(ready.body.code, 2000);
  const refused = admin(dataDir, 'account', 'create', 'acct2');
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /^error: .*Read-only file system.*the store is read-only, nothing was changed\n$/);
  assert.match(adminOk(dataDir, 'account', 'list'), /acct/);
  assert.equal(await requestsOf(server.port, key, 0), 1, 'reads served after the failed writes');
  assert.equal(server.child.exitCode, null, 'the server died');

  // Writable again: the same process recovers by itself, and reads go on being served while it
  // swaps its connections (four clients reading throughout).
  let reading = true;
  let reads = 0;
  const readers = [1, 2, 3, 4].map(async (n) => {
    while (reading) {
      assert.equal(await requestsOf(server.port, key, n), 1, `pair ${n} during the recovery`);
      ++reads;
    }
  });
  remount(mountPoint, 'rw');
  const deadline = Date.now() + 5000;
  while ((ready = await readyz(server.port)).status !== 200 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
  }
  reading = false;
  await Promise.all(readers);
  assert.ok(reads > 0);
  assert.equal(ready.status, 200, `not ready 5 s after the remount: ${server.stderr()}`);
  assert.match(server.stderr(), /can be written again: writes resumed/);
  for (const end = i + 10; i < end; ++i) {
    const r = await reserve(server.port, key, i);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    acknowledged.push(i);
  }
  const applied = await delivery(server.port, 0);
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  assert.equal(applied.body.applied, 1);
  const call = await post(`${base(server.port)}/calls`, key, JSON.stringify({ destination: number(0) }));
  assert.equal(call.status, 201, JSON.stringify(call.body));
  adminOk(dataDir, 'account', 'create', 'acct2');
  // Pair 0 now has its request, the reply and the call; the last pair its request.
  histories.set(0, await historyOf(server.port, key, 0));
  assert.deepEqual(histories.get(0).map((e) => e.kind).sort(),
    ['call_authorized', 'permission_reply_accept', 'permission_request_sent']);
  histories.set(i - 1, await historyOf(server.port, key, i - 1));
  assert.equal(histories.get(i - 1).length, 1);
  await assertAcknowledged(server.port, key, acknowledged, histories);

  // kill -9 and a restart: everything acknowledged, before and after, is there.
  await stop(server, 'SIGKILL');
  server = await serve(dataDir);
  await assertAcknowledged(server.port, key, acknowledged, histories);
  assert.match(adminOk(dataDir, 'account', 'list'), /acct2/);
  await stop(server, 'SIGTERM');
}

test('read-only after a clean stop: reads served, clean errors, recovery without restart',
  () => scenario('clean', 'SIGTERM'));

test('read-only after kill -9 (the WAL left behind): the same, and no acknowledged write lost',
  () => scenario('killed', 'SIGKILL'));

test('a read-only directory without a store: a clean startup failure', async () => {
  const mountPoint = mountTmpfs('empty');
  const dataDir = join(mountPoint, 'data');
  mkdirSync(dataDir);
  remount(mountPoint, 'ro');
  const r = spawnSync(binary, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir],
    { encoding: 'utf8', timeout: 15000 });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, '');
  const errors = r.stderr.split('\n').filter((line) => / error /.test(line));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0], /Z error no store at .*callgate\.db to serve, and .* cannot be written \(Read-only file system\)$/);
  const listed = admin(dataDir, 'list');
  assert.equal(listed.status, 1);
  assert.match(listed.stderr, /^error: no store at /);
});
