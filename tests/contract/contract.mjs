// Checks recorded HTTP responses of callgate against its OpenAPI 3.0 description
// (docs/openapi.json: every endpoint, the 8x8 status endpoint as 8x8 publishes it), plus the
// rules the responses follow but a schema cannot express. Shared by validate.mjs and the demo
// smoke test.
import { readFileSync } from 'node:fs';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

const DOC_ID = 'openapi.json';
const JSON_MEDIA = 'application/json';
// Operations whose success body is the 8x8 status body (the reservations lead it with their id).
const STATUS_BODY_OPERATIONS = ['get-call-permission-status', 'reserve-call-permission-request', 'authorize-call'];
// The batch status operation: each item that is a status body is checked as the status GET's.
const BATCH_STATUS_OPERATION = 'get-call-permission-status-batch';
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

  // The response declared for a status: exact code, then its range (4XX), then `default`;
  // a `$ref` to components/responses is followed. Returns {at: location parts, response}.
  function declaredResponse(op, status) {
    const responses = op.operation.responses ?? {};
    const key = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => k in responses);
    if (key === undefined) return null;
    const ref = responses[key].$ref;
    if (ref === undefined) return { at: ['paths', op.template, op.method, 'responses', key], response: responses[key] };
    const name = /^#\/components\/responses\/([^/]+)$/.exec(ref)?.[1];
    const response = name && doc.components?.responses?.[name];
    if (!response) throw new Error(`${openapiPath}: unresolvable response ${ref}`);
    return { at: ['components', 'responses', name], response };
  }

  // A declared header, a `$ref` to components/headers followed.
  function resolveHeader(header) {
    const ref = header?.$ref;
    if (ref === undefined) return header;
    const name = /^#\/components\/headers\/([^/]+)$/.exec(ref)?.[1];
    const resolved = name && doc.components?.headers?.[name];
    if (!resolved) throw new Error(`${openapiPath}: unresolvable header ${ref}`);
    return resolved;
  }

  // A header value (always text) checked against its declared schema: integers as numbers.
  function headerProblems(declared, headers) {
    const problems = [];
    const byName = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    for (const [name, declaredHeader] of Object.entries(declared ?? {})) {
      const header = resolveHeader(declaredHeader);
      const value = byName.get(name.toLowerCase());
      if (value === undefined) {
        if (header.required) problems.push(`header ${name} is required`);
        continue;
      }
      const schema = header.schema ?? {};
      const typed = schema.type === 'integer' && /^-?\d+$/.test(value) ? Number(value) : value;
      const validate = ajv.compile(schema);
      if (!validate(typed)) problems.push(`header ${name} ${JSON.stringify(value)} ${validate.errors[0].message}`);
    }
    return problems;
  }

  // The error envelope every status >= 400 must use: components.schemas.ErrorResponse if
  // the document has one, else the first response schema titled ErrorResponse.
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

    // record: {method, path (raw target incl. query), status, contentType, body (raw text),
    // headers (optional: {name: value})}. Returns {outcome: 'pass'|'fail', problems: [string]}.
    function check(record, where) {
      const { method, path, status, contentType, body, headers } = record ?? {};
      if (typeof method !== 'string' || typeof path !== 'string' || !Number.isInteger(status) || typeof body !== 'string') {
        return { outcome: 'fail', problems: ['record needs string method, path, body and an integer status'] };
      }
      const route = path.split('?')[0];
      const op = findOperation(method, route);
      // The document describes every endpoint: a success it does not describe is a failure.
      // An error on an undescribed path or method (404, 405) must still use the envelope.
      if (!op && status < 400) {
        return { outcome: 'fail', problems: [`${method} ${route} is not in the API description`] };
      }

      const problems = [];
      const declared = op ? declaredResponse(op, status) : null;
      if (op && !declared) {
        return { outcome: 'fail', problems: [`the API description has no response for status ${status} on ${op.method.toUpperCase()} ${op.template}`] };
      }
      if (declared && isObject(headers)) problems.push(...headerProblems(declared.response.headers, headers));
      if (status === 405 && isObject(headers)) {
        const allow = Object.entries(headers).find(([k]) => k.toLowerCase() === 'allow')?.[1];
        if (allow === undefined) problems.push('a 405 must carry Allow');
      }

      // The media type: one the response declares (an error without an operation: JSON).
      const media = declared ? Object.keys(declared.response.content ?? {}) : [JSON_MEDIA];
      const got = String(contentType ?? '').split(';')[0].trim().toLowerCase();
      if (media.length === 0) {
        if (body !== '') problems.push('the response declares no body, got one');
        return { outcome: problems.length ? 'fail' : 'pass', problems };
      }
      if (!media.includes(got)) {
        problems.push(`content type must be ${media.join(' or ')}, got ${JSON.stringify(contentType)}`);
      }
      const chosen = media.includes(got) ? got : media[0];
      let parsed = body;
      if (chosen === JSON_MEDIA) {
        try {
          parsed = JSON.parse(body);
        } catch (e) {
          return { outcome: 'fail', problems: [...problems, `body is not JSON: ${e.message}`] };
        }
      }

      const hasSchema = declared?.response.content?.[chosen]?.schema;
      const validate = hasSchema
        ? validatorAt([...declared.at, 'content', chosen, 'schema'])
        : status >= 400 ? errorEnvelope : null;
      const schemaValid = Boolean(validate?.(parsed));
      if (!validate) problems.push(`the API description has no ${chosen} schema for status ${status} on ${op.method.toUpperCase()} ${op.template}`);
      else if (!schemaValid) problems.push(...ajvProblems(validate.errors));

      // The extra rules run only on a schema-valid body, so a failure is reported once.
      if (status >= 400) problems.push(...errorProblems(parsed, where, schemaValid));
      else if (schemaValid && STATUS_BODY_OPERATIONS.includes(op.operation.operationId)) {
        problems.push(...permissionProblems(parsed));
      } else if (schemaValid && op.operation.operationId === BATCH_STATUS_OPERATION) {
        parsed.results.forEach((item, i) => {
          if ('status' in item) problems.push(...permissionProblems(item).map((p) => `results[${i}]: ${p}`));
        });
      }
      return { outcome: problems.length ? 'fail' : 'pass', problems };
    }

    return { check };
  }

  return { checker };
}
