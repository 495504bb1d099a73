// Fault test: the data directory's file system fills up under a running server, then frees up.
// Asserted: no crash; every write answered 201 or a clean 500 in the envelope; status reads
// served throughout; /readyz says 503 while writes fail and 200 again after; writes succeed again
// once space returns; after kill -9 every acknowledged reservation is there; and the server starts
// and serves reads while the disk is full. Needs root (it mounts a small tmpfs); CTest registers it
// only then.
// usage: node --test tests/fault/disk_full_test.mjs   (CALLGATE_BINARY=<path to callgate>)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, unlinkSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';

const binary = process.env.CALLGATE_BINARY;
assert.ok(binary, 'set CALLGATE_BINARY to the callgate binary');
const work = mkdtempSync(join(tmpdir(), 'callgate-fault-'));
const mountPoint = join(work, 'fs');
const dataDir = join(mountPoint, 'data');
const filler = join(mountPoint, 'filler');
const children = [];

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

after(() => {
  for (const child of children) child.kill('SIGKILL');
  spawnSync('umount', [mountPoint]);
  rmSync(work, { recursive: true, force: true });
});

function admin(...args) {
  const r = spawnSync(binary, ['admin', '--data-dir', dataDir, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

function serve() {
  const child = spawn(binary, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir,
    '--threads', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no listening line: ${out} ${err}`)), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/callgate listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), stderr: () => err });
      }
    });
    child.on('exit', (code, signal) => reject(new Error(`exited ${code ?? signal}: ${err}`)));
  });
}

// Fills the file system: writes 64 KiB blocks until it is full.
function fill() {
  const fd = openSync(filler, 'w');
  const block = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, block);
  } catch (e) {
    assert.equal(e.code, 'ENOSPC');
  } finally {
    closeSync(fd);
  }
}

const base = (port) => `http://127.0.0.1:${port}/api/v1/whatsapp/subaccounts/sub/channels/ch`;
const number = (i) => `+6591${String(i).padStart(6, '0')}`;

async function reserve(port, key, i) {
  const res = await fetch(`${base(port)}/callPermissionRequests`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}` },
    body: JSON.stringify({ destination: number(i), messageId: `wamid.fault-${i}` }),
  });
  return { status: res.status, body: await res.json() };
}

async function requestsOf(port, key, i) {
  const res = await fetch(`${base(port)}/callPermissions?destination=${encodeURIComponent(number(i))}`,
    { headers: { Authorization: `Bearer ${key}` } });
  assert.equal(res.status, 200, `status read of pair ${i}`);
  const body = await res.json();
  return body.actions[0].limits[0].currentUsage;
}

test('a full disk: clean errors, reads served, recovery, nothing acknowledged lost', async (t) => {
  run('mkdir', ['-p', mountPoint]);
  run('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mountPoint]);
  admin('account', 'create', 'acct');
  admin('subaccount', 'create', 'sub', '--account', 'acct');
  admin('channel', 'create', 'ch', '--subaccount', 'sub', '--phone-number-id', '100000000000077');
  const key = admin('key', 'create', '--account', 'acct');

  let server = await serve();
  const acknowledged = [];
  let i = 0;
  for (; i < 50; ++i) {
    const r = await reserve(server.port, key, i);
    assert.equal(r.status, 201);
    acknowledged.push(i);
  }

  fill();
  let failed = 0;
  for (let n = 0; n < 400; ++n, ++i) {
    const r = await reserve(server.port, key, i);
    if (r.status === 201) {
      acknowledged.push(i);
    } else {
      assert.equal(r.status, 500, JSON.stringify(r.body));
      assert.equal(r.body.code, 2000);
      assert.match(r.body.errorId, /^[0-9a-f-]{36}$/);
      ++failed;
    }
  }
  assert.ok(failed > 0, 'writes kept succeeding on a full disk: the test did not fill it');
  assert.equal(server.child.exitCode, null, 'the server died');
  assert.equal(await requestsOf(server.port, key, 0), 1);  // reads served
  await new Promise((r) => setTimeout(r, 1100));  // /readyz probes at most once a second
  const notReady = await fetch(`http://127.0.0.1:${server.port}/readyz`);
  assert.equal(notReady.status, 503);
  assert.equal((await notReady.json()).code, 2000);

  // Space returns: writes and readiness recover by themselves.
  unlinkSync(filler);
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status, 200);
  const again = await reserve(server.port, key, i);
  assert.equal(again.status, 201, JSON.stringify(again.body));
  acknowledged.push(i++);

  // kill -9, then fill the disk and start again: it starts, serves reads, and has every
  // acknowledged reservation.
  server.child.kill('SIGKILL');
  await new Promise((r) => server.child.on('exit', r));
  fill();
  server = await serve();
  let found = 0;
  for (const n of acknowledged) {
    assert.equal(await requestsOf(server.port, key, n), 1, `pair ${n}`);
    ++found;
  }
  t.diagnostic(`reservations: ${acknowledged.length} acknowledged, ${failed} answered 500 on the ` +
    `full disk; after kill -9 and a start on the full disk ${found} of ${acknowledged.length} found`);
  server.child.kill('SIGTERM');
  await new Promise((r) => server.child.on('exit', r));
  unlinkSync(filler);
});
