// The runner both checkers' selftests share: runs a checker once per case, expects its exit status
// and output patterns, prints ok/FAIL per case and exits non-zero if any failed (or none ran).
import { spawnSync } from 'node:child_process';

// cases: [{ name, args, wantExit, patterns, prepare? }]; `prepare` runs before its case.
export function runSelftest(cases) {
  let passed = 0;
  let failed = 0;
  for (const { name, args, wantExit, patterns, prepare } of cases) {
    if (prepare) prepare();
    const run = spawnSync(process.execPath, args, { encoding: 'utf8' });
    const output = run.stdout + run.stderr;
    const wrong = [];
    if (run.status !== wantExit) wrong.push(`exit ${run.status}, expected ${wantExit}`);
    for (const p of patterns) if (!p.test(output)) wrong.push(`output lacks ${p}`);
    if (wrong.length === 0) {
      passed++;
      console.log(`ok   ${name}`);
    } else {
      failed++;
      console.log(`FAIL ${name}: ${wrong.join('; ')}\n${output.replace(/^/gm, '    | ')}`);
    }
  }
  console.log(`selftest: ${passed} passed, ${failed} failed`);
  return failed > 0 || passed === 0 ? 1 : 0;
}
