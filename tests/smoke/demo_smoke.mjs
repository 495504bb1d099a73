// Proves the README's "run" experience: `callgate serve --demo` prints a curl command that
// works as printed, the endpoint answers per contract, SIGTERM stops it cleanly, and a
// restart on the same data dir keeps working (old key included: keys are only revoked
// explicitly).
// usage: node tests/smoke/demo_smoke.mjs <path-to-callgate-binary> <openapi.json>
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadContract } from '../contract/contract.mjs';

const [binary, openapiPath] = process.argv.slice(2);
if (!binary || !openapiPath) {
  console.error('usage: node tests/smoke/demo_smoke.mjs <path-to-callgate-binary> <openapi.json>');
  process.exit(2);
}

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 10_000;
const LISTEN_RE = /^callgate listening on http:\/\/127\.0\.0\.1:(\d+)$/;
const DEMO_RE =
  /^demo: (curl -sS -H 'Authorization: Bearer ([^'\s]+)' '(http:\/\/127\.0\.0\.1:(\d+)(\/api\/v1\/whatsapp\/subaccounts\/demo-sub\/channels\/demo-channel\/callPermissions\?destination=%2B6500000000))')$/;

const checker = loadContract(openapiPath).checker();
const work = mkdtempSync(join(tmpdir(), 'callgate-smoke-'));
const dataDir = join(work, 'data');
mkdirSync(dataDir);
// curl reads $CURL_HOME/.curlrc: this makes it report status and content type on stderr,
// so the printed command runs exactly as printed and stdout stays the body.
writeFileSync(join(work, '.curlrc'), 'write-out = "%{stderr}\\ncallgate-smoke: %{http_code} %{content_type}\\n"\n');

let server = null; // the running child, killed on every way out
process.on('exit', () => server?.child.kill('SIGKILL'));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1));

let passed = 0;
let failed = 0;
class Abort extends Error {}

// Runs one check; a failed `fatal` check stops the run (later checks need its result).
async function step(name, fn, { fatal = false } = {}) {
  try {
    const value = await fn();
    passed++;
    console.log(`ok   ${name}`);
    return value;
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
    if (fatal) throw new Abort();
    return undefined;
  }
}

const output = (s) => `\n--- stdout ---\n${s.stdout}--- stderr ---\n${s.stderr}--------------`;

// Spawns the server and resolves once it printed the listening line and then the demo line.
function start() {
  const child = spawn(binary, ['serve', '--demo', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--threads', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s = { child, stdout: '', stderr: '' };
  server = s;
  // 'close' rather than 'exit': by then all of the child's output has been read.
  s.exit = new Promise((res) => child.on('close', (code, signal) => res({ code, signal })));
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => (s.stderr += d));

  s.ready = new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`${why}${output(s)}`));
    };
    const timer = setTimeout(() => fail(`no demo line within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    child.on('error', (e) => fail(`cannot start ${binary}: ${e.message}`));
    s.exit.then(({ code, signal }) => fail(`exited early (code ${code}, signal ${signal})`));
    let port = null;
    let pending = '';
    child.stdout.on('data', (d) => {
      s.stdout += d;
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) {
        const listen = LISTEN_RE.exec(line);
        if (listen && port === null) port = listen[1];
        if (!line.startsWith('demo: ')) continue;
        const demo = DEMO_RE.exec(line);
        if (port === null) return fail('demo line came before the listening line');
        if (!demo) return fail(`demo line not in the expected form: ${line}`);
        if (demo[4] !== port) return fail(`demo port ${demo[4]} != listening port ${port}`);
        clearTimeout(timer);
        return resolve({ command: demo[1], key: demo[2], url: demo[3], target: demo[5] });
      }
    });
  });
  return s;
}

// Checks one response against the contract; `status` is the one we expect.
function expectResponse(what, status, response) {
  const { outcome, problems } = checker.check({ method: 'GET', ...response }, what);
  if (response.status !== status) throw new Error(`HTTP ${response.status}, expected ${status}; body: ${response.body}`);
  if (outcome !== 'pass') throw new Error(`not per contract: ${problems.join('; ')}; body: ${response.body}`);
  return JSON.parse(response.body);
}

async function runPrintedCurl(demo) {
  const { stdout, stderr } = await promisify(execFile)('/bin/sh', ['-c', demo.command], {
    env: { ...process.env, CURL_HOME: work },
    timeout: REQUEST_TIMEOUT_MS,
  }).catch((e) => {
    throw new Error(`curl failed (exit ${e.code}): ${e.stderr}`);
  });
  const m = /^callgate-smoke: (\d{3}) (.*)$/m.exec(stderr);
  if (!m) throw new Error(`curl did not report a status: ${stderr}`);
  expectResponse('demo curl', 200, { path: demo.target, status: Number(m[1]), contentType: m[2], body: stdout });
}

async function get(demo, key) {
  const res = await fetch(demo.url, {
    headers: key ? { Authorization: `Bearer ${key}` } : {},
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  return { path: demo.target, status: res.status, contentType: res.headers.get('content-type'), body: await res.text() };
}

async function stop(s) {
  s.child.kill('SIGTERM');
  const timeout = new Promise((res) => setTimeout(res, STOP_TIMEOUT_MS, null));
  const exited = await Promise.race([s.exit, timeout]);
  if (!exited) throw new Error(`still running ${STOP_TIMEOUT_MS / 1000} s after SIGTERM${output(s)}`);
  if (exited.code !== 0) throw new Error(`exit code ${exited.code}, signal ${exited.signal}${output(s)}`);
}

async function main() {
  const first = start();
  const demo1 = await step('first start prints the listening and demo lines', () => first.ready, { fatal: true });
  await step('printed curl command answers 200 per contract', () => runPrintedCurl(demo1));
  await step('request without Authorization gets the 401 envelope with code 1200', async () => {
    const body = expectResponse('no auth', 401, await get(demo1, null));
    if (body.code !== 1200) throw new Error(`code ${body.code}, expected 1200`);
  });
  await step('SIGTERM exits with code 0', () => stop(first), { fatal: true });

  const second = start();
  const demo2 = await step('restart on the same data dir prints the demo lines', () => second.ready, { fatal: true });
  await step('restart issues a fresh key', () => {
    if (demo2.key === demo1.key) throw new Error('same key as the first start');
  });
  await step('printed curl command answers 200 after restart', () => runPrintedCurl(demo2));
  await step('key from the first start still works', async () => expectResponse('old key', 200, await get(demo2, demo1.key)));
  await step('SIGTERM exits with code 0 after restart', () => stop(second), { fatal: true });
}

try {
  await main();
} catch (e) {
  if (!(e instanceof Abort)) {
    failed++;
    console.log(`FAIL unexpected: ${e.stack}`);
  }
} finally {
  server?.child.kill('SIGKILL'); // no-op if it already exited
  rmSync(work, { recursive: true, force: true });
}
console.log(`smoke: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
