// The admin CLI is scriptable (exit codes, one object per line, the key alone on stdout, never
// a secret in `key list`), CALLGATE_* environment variables configure `serve`, and admin changes
// reach a running server without a restart.
// usage: node --test tests/smoke/cli_test.mjs   (CALLGATE_BINARY=<path to callgate>)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';

const binary = process.env.CALLGATE_BINARY;
assert.ok(binary, 'set CALLGATE_BINARY to the callgate binary');
const work = mkdtempSync(join(tmpdir(), 'callgate-cli-'));
const dataDir = join(work, 'data');
const children = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

function admin(...args) {
  const r = spawnSync(binary, ['admin', '--data-dir', dataDir, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// Starts `serve` with the given environment; resolves with the port it printed.
function serve(env, args = []) {
  const child = spawn(binary, ['serve', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/callgate listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
}

const target = (port, sub, channel) =>
  `http://127.0.0.1:${port}/api/v1/whatsapp/subaccounts/${sub}/channels/${channel}/callPermissions?destination=%2B6591234567`;

test('tenant objects are created and listed one per line', () => {
  assert.equal(admin('account', 'create', 'acme').code, 0);
  assert.equal(admin('subaccount', 'create', 'acme-eu', '--account', 'acme').code, 0);
  const ch = admin('channel', 'create', 'wa-main', '--subaccount', 'acme-eu', '--phone-number-id',
    '106540352242922', '--callback-permission', 'enabled', '--limits', 'sandbox');
  assert.equal(ch.code, 0, ch.err);
  assert.equal(ch.out, 'wa-main\n');
  assert.deepEqual(admin('list').out.trim().split('\n'), [
    'account acme',
    'subaccount acme-eu account=acme',
    'channel wa-main subaccount=acme-eu phone_number_id=106540352242922 callback_permission=enabled limits=sandbox',
  ]);
  assert.equal(admin('channel', 'set-callback-permission', 'wa-main', 'disabled').code, 0);
  assert.match(admin('channel', 'list').out, /callback_permission=disabled/);
});

test('bad input fails with a non-zero exit and a message on stderr', () => {
  for (const args of [
    ['account', 'create', 'acme'], // exists
    ['subaccount', 'create', 'x', '--account', 'nobody'],
    ['channel', 'create', 'c2', '--subaccount', 'acme-eu', '--phone-number-id', '106540352242922'],
    ['account', 'create', 'bad id'],
    ['channel', 'create', 'c3', '--subaccount', 'acme-eu', '--phone-number-id', '1', '--limits', 'huge'],
    ['key', 'create', '--account', 'nobody'],
    ['key', 'revoke', 'ffffffffffffffff'],
  ]) {
    const r = admin(...args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.equal(r.out, '', args.join(' '));
    assert.notEqual(r.err, '', args.join(' '));
  }
});

test('key create prints the key alone; key list shows ids, never secrets', () => {
  const created = admin('key', 'create', '--account', 'acme');
  assert.equal(created.code, 0);
  assert.match(created.out, /^cgk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n$/);
  const key = created.out.trim();
  const keyId = key.slice(4, 20);
  const listed = admin('key', 'list', '--account', 'acme').out;
  assert.match(listed, new RegExp(`^${keyId} created=\\S+ status=active$`, 'm'));
  assert.ok(!listed.includes(key.slice(21)), 'the secret must never be listed');
});

test('CALLGATE_* variables configure serve; admin changes reach the running server', async () => {
  const key = admin('key', 'create', '--account', 'acme').out.trim();
  const { child, port } = await serve({
    CALLGATE_LISTEN: '127.0.0.1:0',
    CALLGATE_DATA_DIR: dataDir,
    CALLGATE_THREADS: '1',
    CALLGATE_CACHE_MB: '0',
  });
  const auth = { headers: { Authorization: `Bearer ${key}` } };
  assert.equal((await fetch(target(port, 'acme-eu', 'wa-main'), auth)).status, 200);

  // A channel created while the server runs is served without a restart...
  assert.equal(admin('channel', 'create', 'wa-late', '--subaccount', 'acme-eu',
    '--phone-number-id', '106540352242999').code, 0);
  const deadline = Date.now() + 5000;
  let status;
  while (Date.now() < deadline) {
    status = (await fetch(target(port, 'acme-eu', 'wa-late'), auth)).status;
    if (status === 200) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(status, 200, 'new channel visible within 5 s');

  // ...and a revoked key stops working the same way.
  assert.equal(admin('key', 'revoke', key.slice(4, 20)).code, 0);
  while (Date.now() < deadline + 5000) {
    status = (await fetch(target(port, 'acme-eu', 'wa-main'), auth)).status;
    if (status === 401) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(status, 401, 'revoked key refused within 5 s');
  assert.match(admin('key', 'list', '--account', 'acme').out, /status=revoked/);

  child.kill('SIGTERM');
  const code = await new Promise((r) => child.on('exit', r));
  assert.equal(code, 0);
});

// Issue 9: admin changes used to take up to 250 ms to reach a running server, so a script that
// created a key and used it at once got 401. Now the next request after the command returned
// honours it: no waiting, no retries.
test('an admin change is honoured by the very next request', async () => {
  const { child, port } = await serve({
    CALLGATE_LISTEN: '127.0.0.1:0',
    CALLGATE_DATA_DIR: dataDir,
    CALLGATE_THREADS: '2',
  });
  try {
    for (let round = 0; round < 10; ++round) {
      const key = admin('key', 'create', '--account', 'acme').out.trim();
      const auth = { headers: { Authorization: `Bearer ${key}` } };
      assert.equal((await fetch(target(port, 'acme-eu', 'wa-main'), auth)).status, 200,
        `new key accepted at once (round ${round})`);
      const channel = `wa-now-${round}`;
      assert.equal(admin('channel', 'create', channel, '--subaccount', 'acme-eu',
        '--phone-number-id', `10654035225${String(round).padStart(4, '0')}`).code, 0);
      assert.equal((await fetch(target(port, 'acme-eu', channel), auth)).status, 200,
        `new channel served at once (round ${round})`);
      assert.equal(admin('key', 'revoke', key.slice(4, 20)).code, 0);
      assert.equal((await fetch(target(port, 'acme-eu', 'wa-main'), auth)).status, 401,
        `revoked key refused at once (round ${round})`);
    }
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await new Promise((r) => child.on('exit', r)), 0);
});

test('serve refuses a port with trailing characters', () => {
  const r = spawnSync(binary, ['serve', '--listen', '127.0.0.1:80x', '--data-dir', dataDir],
    { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--listen wants HOST:PORT/);
});

test('serve refuses a cache size that is not a number of MiB', () => {
  const r = spawnSync(binary, ['serve', '--cache-mb', 'lots', '--data-dir', dataDir],
    { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /cache-mb/);
});

test('serve refuses a bad --listen with a clear message', () => {
  const r = spawnSync(binary, ['serve', '--listen', 'nonsense', '--data-dir', dataDir],
    { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--listen wants HOST:PORT/);
});

test('serve refuses a bad --metrics-listen with a clear message', () => {
  const r = spawnSync(binary, ['serve', '--metrics-listen', 'nowhere', '--data-dir', dataDir],
    { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--metrics-listen wants HOST:PORT/);
});

// GET /metrics is served on the main listener, and with CALLGATE_METRICS_LISTEN also on a
// listener of its own that serves nothing else; its address is printed.
test('CALLGATE_METRICS_LISTEN adds a listener that serves /metrics alone', async () => {
  const child = spawn(binary, ['serve'], {
    env: {
      ...process.env,
      CALLGATE_LISTEN: '127.0.0.1:0',
      CALLGATE_DATA_DIR: dataDir,
      CALLGATE_THREADS: '1',
      CALLGATE_METRICS_LISTEN: '127.0.0.1:0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const [port, metricsPort] = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no listening lines: ${out}`)), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      const main = out.match(/callgate listening on http:\/\/127\.0\.0\.1:(\d+)\n/);
      const metrics = out.match(/callgate metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics\n/);
      if (main && metrics) {
        clearTimeout(timer);
        resolve([Number(main[1]), Number(metrics[1])]);
      }
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  try {
    assert.notEqual(port, metricsPort);
    for (const p of [port, metricsPort]) {
      const res = await fetch(`http://127.0.0.1:${p}/metrics`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
      assert.match(await res.text(), /^callgate_build_info\{version="\d+\.\d+\.\d+"\} 1$/m);
    }
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    const other = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
    assert.equal(other.status, 404);
    assert.equal((await other.json()).code, 1300);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await new Promise((r) => child.on('exit', r)), 0);
});

test('--version prints the version and exits 0', () => {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^callgate \d+\.\d+\.\d+\n$/);
});

// Every serve flag, with its CALLGATE_* twin and its default, so an operator can configure from
// the help alone (issue 12).
test('serve --help lists every flag with its environment variable and its default', () => {
  const r = spawnSync(binary, ['serve', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // One entry per flag: the option line and its description, up to the next option line.
  const entries = r.stdout.split(/\n(?=  --)/).filter((e) => e.startsWith('  --'));
  const flags = entries.map((e) => e.match(/^ {2}(--[a-z-]+)/)[1]);
  assert.deepEqual(flags.sort(), ['--access-log', '--cache-mb', '--call-hold', '--data-dir',
    '--demo', '--idle-timeout', '--listen', '--log-format', '--max-body', '--max-connections',
    '--meta-app-secret', '--meta-verify-token', '--metrics-listen', '--notify-lease', '--rate-limit',
    '--redis-cluster', '--redis-key-prefix', '--threads',
    '--tls-cert', '--tls-key'].sort());
  for (const entry of entries) {
    const flag = entry.match(/^ {2}--([a-z-]+)/)[1];
    const env = `CALLGATE_${flag.toUpperCase().replaceAll('-', '_')}`;
    assert.ok(entry.includes(`(Env:${env})`), `${flag}: no ${env} in ${entry}`);
    assert.match(entry, /=[^ ]+ \(Env:|\(default: /, `${flag}: no default in ${entry}`);
  }
});
