// HTTPS end to end on the real binary: `callgate serve` with a certificate made here by the
// openssl CLI serves the status GET and applies a signed webhook over TLS 1.3 (ALPN http/1.1,
// the certificate verified by the client); a TLS 1.1 or 1.0 client — shown able to speak its
// version to `openssl s_server` — is refused by callgate with a protocol_version alert; SIGHUP
// serves a new certificate to new connections while an open one goes on, and a broken file keeps
// the old certificate; half or bad TLS configuration fails the start with the file named and no
// key material printed.
// usage: node --test tests/smoke/tls_test.mjs   (CALLGATE_BINARY=<path to callgate>)
import { spawn, spawnSync } from 'node:child_process';
import { createHmac, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

const binary = process.env.CALLGATE_BINARY;
assert.ok(binary, 'set CALLGATE_BINARY to the callgate binary');
const work = mkdtempSync(join(tmpdir(), 'callgate-tls-'));
const dataDir = join(work, 'data');
const children = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

const SECRET = 'tls-test-app-secret';
const PHONE_NUMBER_ID = '106540352242922';
const STATUS_PATH =
  '/api/v1/whatsapp/subaccounts/acme-eu/channels/wa-main/callPermissions?destination=%2B6591234567';

// A self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost: { cert, key } file paths.
function makeCertificate(name) {
  const cert = join(work, `${name}.crt`);
  const key = join(work, `${name}.key`);
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
    'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert],
  { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { cert, key, pem: readFileSync(cert, 'utf8') };
}
const fingerprint = (pem) => new X509Certificate(pem).fingerprint256;

let A;
let B;
let key; // the API key of the tenant
before(() => {
  A = makeCertificate('callgate-tls-a');
  B = makeCertificate('callgate-tls-b');
  const admin = (...args) => {
    const r = spawnSync(binary, ['admin', '--data-dir', dataDir, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  admin('account', 'create', 'acme');
  admin('subaccount', 'create', 'acme-eu', '--account', 'acme');
  admin('channel', 'create', 'wa-main', '--subaccount', 'acme-eu', '--phone-number-id', PHONE_NUMBER_ID);
  key = admin('key', 'create', '--account', 'acme');
});

// Starts `serve`; resolves with { child, port, stderr() } once it printed its https line.
function serve(args, env = {}) {
  const child = spawn(binary, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir,
    '--threads', '1', '--meta-app-secret', SECRET, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no listening line: ${out}${err}`)), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/callgate listening on https:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), stderr: () => err });
      }
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}${err}`)));
  });
}

async function stop(child) {
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
}

// An HTTPS request verified against `ca`; resolves with { status, body }.
function request(port, ca, method, path, headers = {}, body = '') {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, method, path, ca, headers, agent: false },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode, body: data }));
      });
    req.on('error', reject);
    req.end(body);
  });
}

// A raw TLS connection (ALPN http/1.1) on which requests are written by hand, so that one
// connection can be kept across a reload. get(path) resolves with the response's text.
async function connect(port, ca) {
  const socket = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['http/1.1'] });
  await new Promise((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  let received = '';
  let waiting = null;
  socket.setEncoding('utf8');
  socket.on('data', (d) => {
    received += d;
    waiting?.();
  });
  const get = (path) => new Promise((resolve, reject) => {
    waiting = () => {
      const head = received.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(received.slice(0, head))?.[1] ?? 0);
      if (received.length < head + 4 + length) return;
      const response = received.slice(0, head + 4 + length);
      received = received.slice(head + 4 + length);
      waiting = null;
      resolve(response);
    };
    socket.once('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
  });
  return { socket, get, peer: () => socket.getPeerCertificate().fingerprint256 };
}

// Waits until `predicate()` holds, up to 5 s.
async function until(predicate, what) {
  const deadline = Date.now() + 5000;
  while (!predicate()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function sClient(port, flag) {
  return spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, flag,
    '-cipher', 'DEFAULT@SECLEVEL=0'], { input: '', encoding: 'utf8', timeout: 10000 });
}

test('status GET and a signed webhook POST over HTTPS (TLS 1.3, http/1.1)', async () => {
  const { child, port } = await serve([], { CALLGATE_TLS_CERT: A.cert, CALLGATE_TLS_KEY: A.key });
  try {
    const conn = await connect(port, A.pem);
    assert.equal(conn.socket.getProtocol(), 'TLSv1.3');
    assert.equal(conn.socket.alpnProtocol, 'http/1.1');
    assert.match(await conn.get('/healthz'), /^HTTP\/1\.1 200 OK\r\n/);
    conn.socket.destroy();

    const auth = { Authorization: `Bearer ${key}` };
    const unknown = await request(port, A.pem, 'GET', STATUS_PATH, auth);
    assert.equal(unknown.status, 200, unknown.body);
    assert.equal(JSON.parse(unknown.body).status, 'not_granted');

    const delivery = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{ id: '1', changes: [{ field: 'messages', value: {
        metadata: { phone_number_id: PHONE_NUMBER_ID },
        messages: [{ from: '6591234567', id: 'wamid.TLS1', timestamp: String(Math.floor(Date.now() / 1000)),
          type: 'interactive', interactive: { type: 'call_permission_reply',
            call_permission_reply: { response: 'accept', is_permanent: true, response_source: 'user_action' } } }],
      } }] }],
    });
    const signature = `sha256=${createHmac('sha256', SECRET).update(delivery).digest('hex')}`;
    const posted = await request(port, A.pem, 'POST', '/webhooks/whatsapp',
      { 'Content-Type': 'application/json', 'X-Hub-Signature-256': signature }, delivery);
    assert.equal(posted.status, 200, posted.body);
    assert.equal(JSON.parse(posted.body).applied, 1, posted.body);

    const granted = await request(port, A.pem, 'GET', STATUS_PATH, auth);
    assert.equal(JSON.parse(granted.body).status, 'permanent', granted.body);
  } finally {
    await stop(child);
  }
});

test('TLS 1.1 and 1.0 clients are refused by the server (protocol_version alert)', async () => {
  const { child, port } = await serve(['--tls-cert', A.cert, '--tls-key', A.key]);
  try {
    for (const flag of ['-tls1_1', '-tls1']) {
      // The same client completes a handshake with a server that allows its version...
      const reference = spawn('openssl', ['s_server', '-accept', '127.0.0.1:0', '-cert', A.cert,
        '-key', A.key, '-cipher', 'DEFAULT@SECLEVEL=0', '-naccept', '1'],
      { stdio: ['pipe', 'pipe', 'pipe'] }); // stdin kept open: s_server stops at its end
      children.push(reference);
      let out = '';
      reference.stdout.on('data', (d) => (out += d));
      await until(() => /^ACCEPT .*:(\d+)$/m.test(out), 's_server to listen');
      const referencePort = Number(/^ACCEPT .*:(\d+)$/m.exec(out)[1]);
      const accepted = sClient(referencePort, flag);
      reference.kill('SIGKILL');
      assert.match(accepted.stdout, /Protocol *: TLSv1(\.1)?\n/, accepted.stdout + accepted.stderr);
      assert.match(accepted.stdout, /Cipher is ECDHE-/, `${flag} client cannot speak its version`);

      // ...and callgate answers its ClientHello with a protocol_version alert.
      const refused = sClient(port, flag);
      assert.notEqual(refused.status, 0);
      assert.match(refused.stderr, /alert protocol version/, refused.stderr);
      assert.match(refused.stdout, /Cipher is \(NONE\)/);
    }
    const modern = sClient(port, '-tls1_3');
    assert.match(modern.stdout, /New, TLSv1\.3, Cipher is TLS_AES_128_GCM_SHA256/, modern.stdout);
  } finally {
    await stop(child);
  }
});

test('SIGHUP serves a new certificate to new connections; open ones keep theirs', async () => {
  const cert = join(work, 'live.crt');
  const keyFile = join(work, 'live.key');
  copyFileSync(A.cert, cert);
  copyFileSync(A.key, keyFile);
  const ca = [A.pem, B.pem];
  const { child, port, stderr } = await serve(['--tls-cert', cert, '--tls-key', keyFile]);
  try {
    const open = await connect(port, ca);
    assert.equal(open.peer(), fingerprint(A.pem));
    assert.match(await open.get('/healthz'), /^HTTP\/1\.1 200 OK\r\n/);

    copyFileSync(B.cert, cert);
    copyFileSync(B.key, keyFile);
    child.kill('SIGHUP');
    await until(() => /reloaded the TLS certificate.*\n/.test(stderr()), 'the reload line');
    assert.match(stderr(), /SIGHUP: reloaded the TLS certificate from .*live\.crt: subject \/CN=callgate-tls-b/);
    const fresh = await connect(port, ca);
    assert.equal(fresh.peer(), fingerprint(B.pem));
    assert.match(await fresh.get('/healthz'), /^HTTP\/1\.1 200 OK\r\n/);
    // The connection opened before the reload goes on, on its certificate.
    assert.match(await open.get('/healthz'), /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(open.peer(), fingerprint(A.pem));

    // A broken key: one line, no key material, the previous certificate kept.
    writeFileSync(keyFile, readFileSync(A.key, 'utf8')); // the other certificate's key
    child.kill('SIGHUP');
    await until(() => /still serving the previous certificate\n/.test(stderr()), 'the refusal line');
    assert.match(stderr(), /SIGHUP: the TLS key file .*live\.key is not the private key of the certificate in .*live\.crt; still serving the previous certificate\n/);
    assert.ok(!stderr().includes('PRIVATE KEY'));
    const kept = await connect(port, ca);
    assert.equal(kept.peer(), fingerprint(B.pem));
    assert.match(await kept.get('/healthz'), /^HTTP\/1\.1 200 OK\r\n/);
    for (const c of [open, fresh, kept]) c.socket.destroy();
  } finally {
    await stop(child);
  }
});

test('half a TLS configuration fails the start and says what is missing', () => {
  const run = (args, env = {}) => spawnSync(binary, ['serve', '--data-dir', dataDir, ...args],
    { encoding: 'utf8', env: { ...process.env, ...env } });
  const certOnly = run(['--tls-cert', A.cert]);
  assert.equal(certOnly.status, 2);
  assert.match(certOnly.stderr, /--tls-cert needs --tls-key \(CALLGATE_TLS_KEY\)/);
  const keyOnly = run([], { CALLGATE_TLS_KEY: A.key });
  assert.equal(keyOnly.status, 2);
  assert.match(keyOnly.stderr, /--tls-key needs --tls-cert \(CALLGATE_TLS_CERT\)/);
});

test('a certificate or key that cannot be served fails the start, naming the file', () => {
  const run = (cert, keyFile) => spawnSync(binary, ['serve', '--listen', '127.0.0.1:0',
    '--data-dir', dataDir, '--tls-cert', cert, '--tls-key', keyFile], { encoding: 'utf8' });
  const missing = run(join(work, 'nothing.crt'), A.key);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /error:? cannot read the TLS certificate file .*nothing\.crt: No such file or directory/);
  const mismatched = run(A.cert, B.key);
  assert.equal(mismatched.status, 1);
  assert.match(mismatched.stderr, /error:? the TLS key file .*callgate-tls-b\.key is not the private key of the certificate in .*callgate-tls-a\.crt/);
  for (const r of [missing, mismatched]) {
    assert.ok(!(r.stdout + r.stderr).includes('PRIVATE KEY'));
    assert.doesNotMatch(r.stdout, /listening/);
  }
});
