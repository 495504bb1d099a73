// Checks recorded HTTP responses of callgate against the OpenAPI 3.0 contract of the
// 8x8 "Get Call Permission Status" endpoint, plus the rules the published responses
// follow but the schema cannot express. Shared by validate.mjs and the demo smoke test.
import { readFileSync } from 'node:fs';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

const DOC_ID = 'openapi.json';
const PERMISSION_STATUSES = ['temporary', 'permanent', 'not_granted'];
const ACTION_NAMES = ['send_call_permission_request', 'start_call'];

// JSON pointer (as a URI fragment) to a location inside the contract document.
const pointer = (parts) =>
  parts.map((p) => encodeURIComponent(String(p).replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

export function loadContract(openapiPath) {
  const doc = JSON.parse(readFileSync(openapiPath, 'utf8'));

  // Strict mode stays on so an unknown keyword or format (a typo, or a format ajv-formats
  // lacks) fails loudly instead of silently validating nothing. OpenAPI 3.0 adds a few
  // annotation keywords that are not JSON Schema; declare them as such (`nullable` is
  // built into ajv). `paths` and `components` are declared only so the document itself can
  // be registered: response schemas are then compiled as $refs into it, which makes any
  // `#/components/schemas/...` reference inside them resolve exactly as in OpenAPI.
  const ajv = new Ajv({ strict: true, allErrors: true });
  addFormats(ajv); // provides and enforces `uuid` and `date-time`
  ajv.addVocabulary(['example', 'xml', 'externalDocs', 'discriminator', 'paths', 'components']);
  ajv.addSchema({ paths: doc.paths ?? {}, components: doc.components ?? {} }, DOC_ID);

  const compiled = new Map();
  const validatorAt = (parts) => {
    const ref = `${DOC_ID}#/${pointer(parts)}`;
    if (!compiled.has(ref)) compiled.set(ref, ajv.compile({ $ref: ref }));
    return compiled.get(ref);
  };
  const isDateTime = ajv.compile({ type: 'string', format: 'date-time' });

  // Path templates as regexes; templates with fewer parameters first, so a concrete
  // path wins over a templated one as OpenAPI requires.
  const routes = Object.keys(doc.paths ?? {})
    .map((template) => {
      const source = template
        .split(/(\{[^}]+\})/)
        .map((part) => (/^\{.+\}$/.test(part) ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('');
      return { template, regex: new RegExp(`^${source}$`), params: (template.match(/\{/g) ?? []).length };
    })
    .sort((a, b) => a.params - b.params);

  function findOperation(method, path) {
    const m = method.toLowerCase();
    const route = routes.find((r) => r.regex.test(path) && isObject(doc.paths[r.template][m]));
    return route && { template: route.template, method: m, operation: doc.paths[route.template][m] };
  }

  // Schema location for a status: exact code, then its range (4XX), then `default`.
  function responseSchemaParts(op, status) {
    const responses = op.operation.responses ?? {};
    const key = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => k in responses);
    if (key === undefined || !responses[key].content?.['application/json']?.schema) return null;
    return ['paths', op.template, op.method, 'responses', key, 'content', 'application/json', 'schema'];
  }

  // The error envelope every status >= 400 must use: components.schemas.ErrorResponse if
  // the contract has one, else the first response schema titled ErrorResponse.
  function findErrorEnvelope() {
    if (doc.components?.schemas?.ErrorResponse) return ['components', 'schemas', 'ErrorResponse'];
    for (const [template, item] of Object.entries(doc.paths ?? {})) {
      for (const [method, operation] of Object.entries(item)) {
        for (const [code, response] of Object.entries(operation?.responses ?? {})) {
          if (response.content?.['application/json']?.schema?.title === 'ErrorResponse') {
            return ['paths', template, method, 'responses', code, 'content', 'application/json', 'schema'];
          }
        }
      }
    }
    throw new Error(`${openapiPath}: no ErrorResponse schema found`);
  }
  const errorEnvelope = validatorAt(findErrorEnvelope());

  const ajvProblems = (errors) =>
    errors.map((e) => {
      const allowed = e.params?.allowedValues ? ` (${e.params.allowedValues.join('|')})` : '';
      return `body${e.instancePath} ${e.message}${allowed}`;
    });

  // What the 8x8 published 200 response always has, beyond what its schema requires.
  function permissionProblems(body) {
    if (!isObject(body)) return []; // the schema already reported it
    const problems = [];
    if (!PERMISSION_STATUSES.includes(body.status)) {
      problems.push(`status must be one of ${PERMISSION_STATUSES.join('|')}, got ${JSON.stringify(body.status)}`);
    }
    if (body.status === 'temporary' && !('expirationTime' in body)) {
      problems.push('expirationTime is required when status is temporary');
    }
    if (body.status !== 'temporary' && 'expirationTime' in body) {
      problems.push(`expirationTime must be absent when status is ${JSON.stringify(body.status)}`);
    }
    if (!Array.isArray(body.actions)) return [...problems, 'actions must be an array'];
    for (const name of ACTION_NAMES) {
      const n = body.actions.filter((a) => a?.actionName === name).length;
      if (n !== 1) problems.push(`action ${name} must appear exactly once, found ${n}`);
    }
    body.actions.forEach((action, i) => {
      const at = `actions[${i}]`;
      if (!isObject(action)) return problems.push(`${at} must be an object`);
      if (!ACTION_NAMES.includes(action.actionName)) {
        problems.push(`${at}.actionName must be one of ${ACTION_NAMES.join('|')}, got ${JSON.stringify(action.actionName)}`);
      }
      if (typeof action.canPerformAction !== 'boolean') problems.push(`${at}.canPerformAction must be a boolean`);
      if (!Array.isArray(action.limits)) return problems.push(`${at}.limits must be an array`);
      action.limits.forEach((limit, j) => {
        const lt = `${at}.limits[${j}]`;
        if (!isObject(limit)) return problems.push(`${lt} must be an object`);
        if (typeof limit.timePeriod !== 'string') problems.push(`${lt}.timePeriod must be a string`);
        for (const k of ['maxAllowed', 'currentUsage']) {
          if (!Number.isInteger(limit[k])) problems.push(`${lt}.${k} must be an integer`);
        }
        // limitExpirationTime is our additive field (RULES §3): when a slot frees, so it
        // only makes sense on a limit that is reached.
        if ('limitExpirationTime' in limit) {
          if (!isDateTime(limit.limitExpirationTime)) problems.push(`${lt}.limitExpirationTime must be a date-time`);
          if (!(limit.currentUsage >= limit.maxAllowed)) {
            problems.push(`${lt}.limitExpirationTime only allowed when currentUsage >= maxAllowed`);
          }
        }
      });
    });
    return problems;
  }

  // One checker per run: errorIds must be unique across everything it sees.
  function checker() {
    const errorIdSeenAt = new Map();

    // errorIds are recorded even from a failing body, so a later duplicate is still caught.
    function errorProblems(body, where, schemaValid) {
      if (!isObject(body)) return [];
      const problems = [];
      if (schemaValid && !Number.isInteger(body.code)) problems.push('code must be an integer');
      if (typeof body.errorId === 'string') {
        if (errorIdSeenAt.has(body.errorId)) {
          problems.push(`errorId ${body.errorId} already used on ${errorIdSeenAt.get(body.errorId)}`);
        } else {
          errorIdSeenAt.set(body.errorId, where);
        }
      }
      return problems;
    }

    // record: {method, path (raw target incl. query), status, contentType, body (raw text)}.
    // Returns {outcome: 'pass'|'fail'|'skip', problems: [string]}.
    function check(record, where) {
      const { method, path, status, contentType, body } = record ?? {};
      if (typeof method !== 'string' || typeof path !== 'string' || !Number.isInteger(status) || typeof body !== 'string') {
        return { outcome: 'fail', problems: ['record needs string method, path, body and an integer status'] };
      }
      const op = findOperation(method, path.split('?')[0]);
      // Other endpoints of the service (health, webhooks...) are not this contract's business
      // unless they fail: every error from the service must use the envelope.
      if (!op && status < 400) return { outcome: 'skip', problems: ['not in the contract'] };

      const problems = [];
      if (!String(contentType ?? '').toLowerCase().startsWith('application/json')) {
        problems.push(`content type must be application/json, got ${JSON.stringify(contentType)}`);
      }
      let parsed;
      try {
        parsed = JSON.parse(body);
      } catch (e) {
        return { outcome: 'fail', problems: [...problems, `body is not JSON: ${e.message}`] };
      }

      const parts = op && responseSchemaParts(op, status);
      const validate = parts ? validatorAt(parts) : status >= 400 ? errorEnvelope : null;
      const schemaValid = Boolean(validate?.(parsed));
      if (!validate) problems.push(`contract has no response for status ${status} on ${op.method.toUpperCase()} ${op.template}`);
      else if (!schemaValid) problems.push(...ajvProblems(validate.errors));

      // The extra rules run only on a schema-valid body, so a failure is reported once.
      if (status >= 400) problems.push(...errorProblems(parsed, where, schemaValid));
      else if (schemaValid && status === 200 && op.operation.operationId === 'get-call-permission-status') {
        problems.push(...permissionProblems(parsed));
      }
      return { outcome: problems.length ? 'fail' : 'pass', problems };
    }

    return { check };
  }

  return { checker };
}
