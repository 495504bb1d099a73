// Validates recorded callgate responses (JSONL, one response per line) against the
// OpenAPI description (docs/openapi.json). Exit 0 only if at least one response passed and
// none failed.
// usage: node tests/contract/validate.mjs <openapi.json> <responses.jsonl>
import { readFileSync } from 'node:fs';
import { loadContract } from './contract.mjs';

const [openapiPath, jsonlPath] = process.argv.slice(2);
if (!openapiPath || !jsonlPath) {
  console.error('usage: node tests/contract/validate.mjs <openapi.json> <responses.jsonl>');
  process.exit(2);
}

let checker;
let lines;
try {
  checker = loadContract(openapiPath).checker();
  lines = readFileSync(jsonlPath, 'utf8').split('\n');
} catch (e) {
  console.error(`contract: cannot start: ${e.message}`);
  process.exit(2);
}

let passed = 0;
let failed = 0;
lines.forEach((text, i) => {
  if (text.trim() === '') return; // blank lines (e.g. the final newline) carry no response
  const where = `line ${i + 1}`;
  let record;
  try {
    record = JSON.parse(text);
  } catch (e) {
    failed++;
    console.log(`${where}: not a JSON record: ${e.message}`);
    return;
  }
  const { outcome, problems } = checker.check(record, where);
  const label = `${where}: ${record?.method} ${record?.path} ${record?.status}`;
  if (outcome === 'pass') passed++;
  else {
    failed++;
    console.log(`${label}: ${problems.join('; ')}`);
  }
});

// An empty recording proves nothing about the service, so it fails too.
if (passed === 0) console.log('no response passed: nothing was validated');
console.log(`contract: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
