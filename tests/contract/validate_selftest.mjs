// Proves validate.mjs can fail: runs it on fixture recordings and checks each is accepted or
// rejected, and rejected for the intended reason (so a typo in a fixture can't pass as a
// detected violation).
// usage: node tests/contract/validate_selftest.mjs [openapi.json]   (default: docs/openapi.json)
import { runSelftest } from '../selftest_runner.mjs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const openapi = process.argv[2] ?? resolve(here, '../../docs/openapi.json');
const validator = join(here, 'validate.mjs');

// [fixture, expected exit code, patterns the output must contain]
const ONE_FAILURE = /^contract: 0 passed, 1 failed$/m;
const cases = [
  ['valid.jsonl', 0, [/^contract: 12 passed, 0 failed$/m]],
  ['empty.jsonl', 1, [/^contract: 0 passed, 0 failed$/m]],
  ['bad-status-enum.jsonl', 1, [ONE_FAILURE, /^line 1: .* 200: body\/status must be equal to one of the allowed values/m]],
  ['missing-error-id.jsonl', 1, [ONE_FAILURE, /^line 1: .* 400: body must have required property 'errorId'/m]],
  ['error-id-not-uuid.jsonl', 1, [ONE_FAILURE, /^line 1: .* 401: body\/errorId must match format "uuid"/m]],
  ['timestamp-not-date-time.jsonl', 1, [ONE_FAILURE, /^line 1: .* 500: body\/timestamp must match format "date-time"/m]],
  ['temporary-without-expiration.jsonl', 1, [ONE_FAILURE, /^line 1: .* 200: expirationTime is required when status is temporary/m]],
  ['expiration-on-permanent.jsonl', 1, [ONE_FAILURE, /^line 1: .* 200: expirationTime must be absent when status is "permanent"/m]],
  ['non-json-body.jsonl', 1, [ONE_FAILURE, /^line 1: .* 500: body is not JSON/m]],
  ['wrong-content-type.jsonl', 1, [ONE_FAILURE, /^line 1: .* 401: content type must be application\/json, got "text\/html"/m]],
  ['duplicate-error-id.jsonl', 1, [/^contract: 1 passed, 1 failed$/m, /^line 2: .* 400: errorId \S+ already used on line 1$/m]],
  ['code-not-integer.jsonl', 1, [ONE_FAILURE, /^line 1: .* 400: body\/code must be integer/m]],
  ['missing-start-call.jsonl', 1, [ONE_FAILURE, /^line 1: .* 200: action start_call must appear exactly once, found 0/m]],
  ['limit-missing-current-usage.jsonl', 1, [ONE_FAILURE, /^line 1: .* 200: body\/actions\/1\/limits\/0 must have required property 'currentUsage'/m]],
  ['limit-expiration-not-date-time.jsonl', 1, [ONE_FAILURE, /^line 1: .* 200: body\/actions\/0\/limits\/0\/limitExpirationTime must match format "date-time"/m]],
  ['limit-expiration-below-limit.jsonl', 1, [ONE_FAILURE, /limitExpirationTime only allowed when currentUsage >= maxAllowed/]],
  ['unknown-path-error-not-envelope.jsonl', 1, [ONE_FAILURE, /^line 1: GET \/nope 404: body must have required property 'code'/m]],
  ['not-a-record.jsonl', 1, [ONE_FAILURE, /^line 1: not a JSON record/m]],
  ['undocumented-success.jsonl', 1, [ONE_FAILURE, /^line 1: GET \/debug\/vars 200: GET \/debug\/vars is not in the API description$/m]],
  ['code-of-another-meaning.jsonl', 1, [ONE_FAILURE, /^line 1: .* 404: body\/code must be equal to one of the allowed values \(1300\)$/m]],
  ['405-without-allow.jsonl', 1, [ONE_FAILURE, /^line 1: DELETE \/healthz 405: a 405 must carry Allow$/m]],
  ['retry-after-not-seconds.jsonl', 1, [ONE_FAILURE, /^line 1: POST .*\/calls 429: header Retry-After "soon" must be integer$/m]],
  ['missing-request-id.jsonl', 1, [ONE_FAILURE, /^line 1: GET \/healthz 200: header X-Request-Id is required$/m]],
  ['request-id-malformed.jsonl', 1, [ONE_FAILURE, /^line 1: GET \/readyz 200: header X-Request-Id "not an id" must match pattern/m]],
  ['challenge-as-json.jsonl', 1, [ONE_FAILURE, /^line 1: GET \/webhooks\/whatsapp\S* 200: content type must be text\/plain, got "application\/json"$/m]],
];

process.exit(runSelftest(cases.map(([fixture, wantExit, patterns]) => ({
  name: fixture,
  args: [validator, openapi, join(here, 'fixtures', fixture)],
  wantExit,
  patterns,
}))));
