// The Debian package: `cpack -G DEB` in the build directory builds it; asserted are its control
// fields, its files (binary, systemd unit, /etc/default/callgate as a conffile, docs), the unit's
// essentials, and that the packaged binary runs.
// usage: node --test tests/package/deb_test.mjs   (CALLGATE_BUILD_DIR=<cmake build directory>,
//        CALLGATE_BINARY=<the callgate it packages>)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';

const buildDir = process.env.CALLGATE_BUILD_DIR;
const binary = process.env.CALLGATE_BINARY;
assert.ok(buildDir && binary, 'set CALLGATE_BUILD_DIR and CALLGATE_BINARY');
const work = mkdtempSync(join(tmpdir(), 'callgate-deb-'));
after(() => rmSync(work, { recursive: true, force: true }));

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...options });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

test('cpack builds a .deb with the binary, a systemd unit and its configuration', () => {
  const version = run(binary, ['--version']).trim().replace(/^callgate /, '');
  run('cpack', ['-G', 'DEB', '-B', work], { cwd: buildDir });
  const debs = readdirSync(work).filter((f) => f.endsWith('.deb'));
  assert.deepEqual(debs, [`callgate_${version}_amd64.deb`]);
  const deb = join(work, debs[0]);

  const field = (name) => run('dpkg-deb', ['-f', deb, name]).trim();
  assert.equal(field('Package'), 'callgate');
  assert.equal(field('Version'), version);
  const depends = field('Depends');
  for (const dep of ['adduser', 'ca-certificates', 'libsqlite3-0', 'libphonenumber8', 'libssl3', 'libsimdjson',
    'libprometheus-cpp-core1.0']) {
    assert.ok(depends.includes(dep), `Depends lacks ${dep}: ${depends}`);
  }

  const files = run('dpkg-deb', ['-c', deb]).split('\n').map((l) => l.split(/\s+/).pop());
  for (const f of ['./usr/bin/callgate', './usr/lib/systemd/system/callgate.service',
    './etc/default/callgate', './usr/share/doc/callgate/README.md',
    './usr/share/doc/callgate/openapi.json']) {
    assert.ok(files.includes(f), `${f} not in the package`);
  }
  const control = join(work, 'control');
  run('dpkg-deb', ['-e', deb, control]);
  assert.equal(readFileSync(join(control, 'conffiles'), 'utf8').trim(), '/etc/default/callgate');
  assert.match(readFileSync(join(control, 'postinst'), 'utf8'), /adduser --system --group .*callgate/);

  const root = join(work, 'root');
  run('dpkg-deb', ['-x', deb, root]);
  const unit = readFileSync(join(root, 'usr/lib/systemd/system/callgate.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/bin\/callgate serve$/m);
  assert.match(unit, /^User=callgate$/m);
  assert.match(unit, /^EnvironmentFile=-\/etc\/default\/callgate$/m);
  assert.match(unit, /^Environment=CALLGATE_DATA_DIR=\/var\/lib\/callgate$/m);
  // Every variable the defaults file names is one `serve` reads.
  const help = run(binary, ['serve', '--help']);
  const defaults = readFileSync(join(root, 'etc/default/callgate'), 'utf8');
  for (const [, name] of defaults.matchAll(/^#?(CALLGATE_[A-Z_]+)=/gm)) {
    assert.ok(help.includes(`(Env:${name})`), `${name} in /etc/default/callgate is not a serve variable`);
  }

  // The packaged (stripped) binary runs.
  assert.equal(run(join(root, 'usr/bin/callgate'), ['--version']).trim(), `callgate ${version}`);
  assert.match(run(join(root, 'usr/bin/callgate'), ['serve', '--help']), /--data-dir/);
});
