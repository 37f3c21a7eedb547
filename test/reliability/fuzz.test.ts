import http from 'node:http';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import type { Redis } from 'ioredis';
import { QueueName } from '@onnx-batch/shared';
import { testEnv, type TestEnv } from '../helpers/env';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis';
import type { Spawned } from '../helpers/processes';
import { countOf, jobKeys, ProcessGroup, queueCounts, queueEvents, rssBytes, seededRandom, sleep } from '../helpers/reliability';

/**
 * Thousands of bad requests against one API process (no worker): every one is answered 4xx with
 * an RFC 9457 problem+json body, none 5xx; the process stays up, queues nothing and does not grow.
 *
 * Reproducible: case `i` is generated from its own PRNG seeded with SEED and i. Bodies are built
 * so that each is invalid for a definite reason (a bad field, a bad row, a bad line…), so no case
 * can ever be a valid batch.
 */
const SEED = 0x5eed_f022;
/**
 * Warm-up: this many cases outside the measured range, then a burst of this many of the heaviest
 * kinds. After a few thousand requests with big bodies the process settles at the RSS it keeps
 * (V8's grown new space, compiled code, malloc arenas fragmented by multi-MB buffers): measured
 * after GC it moves between ~160 and ~200 MB from one pass to the next without growing, while
 * after only 1 000 warm-up requests it is still ~40–80 MB lower. So the baseline comes after 5 000.
 */
const WARM_UP = 5000;
const WARM_UP_HEAVY = 64;
const HEAVY_KINDS = ['huge-array', 'mega-string', 'deep'];
const CASES = 10_500;
const CONCURRENCY = 16;
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const MAX_ROWS_PER_JOB = 120_000;
/**
 * RSS may grow at most this much from after warm-up to after the run, both measured idle after a
 * full garbage collection. The run sends ~200 MB of bodies, some of 1–6 MB, 16 at a time, so the
 * heap peaks 100–150 MB above its idle size, and when V8 gives that back to the OS depends on its
 * memory reducer and on the machine's load (anything from 10 s to never within a test). So the
 * test asks for a full GC first (see GC_HOOK) and then samples: what remains is live memory plus
 * the allocator's settled footprint, which varies by ±20 MB between identical passes. 60 MB of
 * growth over 10 500 requests would be a leak of 6 KB a request: anything that leaks per request
 * (a listener, a buffered body, a cached schema) shows up past it; that noise stays well below.
 */
const RSS_BOUND = 60 * 1024 * 1024;
/**
 * Preloaded into the API process (test instrumentation only, no application code changes): lets
 * the test trigger a full garbage collection with SIGUSR2 before it reads RSS.
 */
const GC_HOOK = '--expose-gc --import=data:text/javascript,process.on(%22SIGUSR2%22,()=>globalThis.gc())';

type Random = () => number;

interface HttpCase {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Sent with Transfer-Encoding: chunked (no Content-Length). */
  chunked?: boolean;
}

interface RawCase {
  kind: string;
  raw: Buffer;
  /** A request Node may drop without an answer (its body never completes). */
  mayNotAnswer?: boolean;
}

type Case = HttpCase | RawCase;

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  error?: string;
  /** The request died on a kept-alive connection: the case whose answer came last on it. */
  resetAfter?: number;
  /** How long that connection had been idle when this request went out on it. */
  idleMs?: number;
}

// ---------------------------------------------------------------- building blocks

const pick = <T>(r: Random, items: readonly T[]): T => items[Math.floor(r() * items.length)] as T;
const int = (r: Random, min: number, max: number): number => min + Math.floor(r() * (max - min + 1));
const chance = (r: Random, p: number): boolean => r() < p;

const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];
/** Raw JSON tokens: RAW("1e309") is emitted as 1e309, unquoted. */
const RAW = (token: string): string => `@@RAW${token}@@`;
const toJson = (value: unknown): string =>
  JSON.stringify(value).replace(/"@@RAW(.*?)@@"/g, (_, token: string) => token.replace(/\\"/g, '"'));

/** Feature values that are fine on their own (some odd, like -0 and 1e-400). */
const DECOY_VALUES = [RAW('-0'), RAW('0'), RAW('1e-400'), RAW('0.0'), RAW('10'), RAW('5.1'), RAW('3.5e0'), RAW('1E0')];
/** Feature values that are valid JSON but not a valid iris feature (type or range). */
const BAD_VALUES = [
  RAW('1e309'),
  RAW('-1e309'),
  RAW('11'),
  RAW('-1'),
  RAW('1e308'),
  RAW('9007199254740993'),
  RAW('-0.0001'),
  RAW('10.000001'),
  RAW('123456789012345678901234567890'),
  '5.1',
  'NaN',
  'Infinity',
  '',
  null,
  true,
  false,
  [],
  {},
  [5.1],
  { value: 5.1 },
  '\u0000',
  '\u202e5',
];
/** Values of `?wait=` a client may send that are not a whole number of seconds from 0 to 60 (and one that is). */
const WAIT_VALUES = ['-1', '61', '1e309', 'NaN', 'Infinity', 'abc', '%ff', '1&wait=2', '', '0x10', '-0', '1'];

/** Tokens that make the JSON itself malformed. */
const MALFORMED_TOKENS = [
  'NaN',
  'Infinity',
  '-Infinity',
  '+1',
  '01',
  '.5',
  '1.',
  '0x10',
  '1e',
  '--1',
  '1_000',
  'undefined',
  "'5'",
  '5,,',
  'tru',
  'nul',
];

const validValue = (r: Random): string => RAW((r() * 10).toFixed(int(r, 0, 6)));
const validArrayRow = (r: Random): unknown[] => FEATURES.map(() => (chance(r, 0.1) ? pick(r, DECOY_VALUES) : validValue(r)));
const validObjectRow = (r: Random): Record<string, unknown> => {
  const row: Record<string, unknown> = chance(r, 0.5) ? { id: `row-${int(r, 0, 1e6)}` } : {};
  for (const f of FEATURES) row[f] = chance(r, 0.1) ? pick(r, DECOY_VALUES) : validValue(r);
  return row;
};
const validRow = (r: Random): unknown => (chance(r, 0.5) ? validArrayRow(r) : validObjectRow(r));

/** A row no model accepts. */
const UNIVERSALLY_BAD_ROWS: unknown[] = [null, true, false, 42, RAW('1e309'), [], {}, [[]], [null], [{}]];

/** A row the iris model refuses. */
function badIrisRow(r: Random): unknown {
  switch (int(r, 0, 6)) {
    case 0:
      return pick(r, UNIVERSALLY_BAD_ROWS);
    case 1: {
      const row = validArrayRow(r);
      row[int(r, 0, 3)] = pick(r, BAD_VALUES);
      return row;
    }
    case 2: {
      const row = validObjectRow(r);
      row[pick(r, FEATURES)] = pick(r, BAD_VALUES);
      return row;
    }
    case 3: {
      const row = validObjectRow(r);
      delete row[pick(r, FEATURES)];
      return row;
    }
    case 4:
      return chance(r, 0.5) ? validArrayRow(r).slice(0, int(r, 0, 3)) : [...validArrayRow(r), ...validArrayRow(r).slice(0, int(r, 1, 4))];
    case 5:
      return pick(r, ['5.1,3.5,1.4,0.2', 'sepal_length', '', '\u0000', 'x'.repeat(int(r, 1, 300))]);
    default: {
      const row = validArrayRow(r);
      row[int(r, 0, 3)] = chance(r, 0.5) ? pick(r, BAD_VALUES) : pick(r, UNIVERSALLY_BAD_ROWS);
      return row;
    }
  }
}

/** Rows with at least one the iris model refuses, at a random place. */
function rowsWithABadOne(r: Random, max = 50): unknown[] {
  const rows = Array.from({ length: int(r, 0, max) }, () => validRow(r));
  const bad = int(r, 1, 3);
  for (let i = 0; i < bad; i++) rows.splice(int(r, 0, rows.length), 0, badIrisRow(r));
  return rows;
}

const unicodeChar = (r: Random): string => {
  const ranges: [number, number][] = [
    [0x20, 0x7e],
    [0xa0, 0x24f],
    [0x370, 0x3ff],
    [0x590, 0x6ff],
    [0x200b, 0x206f],
    [0x3040, 0x30ff],
    [0x4e00, 0x4fff],
    [0xfe00, 0xfeff],
    [0x1f300, 0x1f6ff],
    [0x10000, 0x1007f],
  ];
  const [lo, hi] = pick(r, ranges);
  return String.fromCodePoint(int(r, lo, hi));
};
const unicodeString = (r: Random, max: number): string => Array.from({ length: int(r, 1, max) }, () => unicodeChar(r)).join('');
const printable = (r: Random, length: number): string => Array.from({ length }, () => String.fromCharCode(int(r, 0x21, 0x7e))).join('');
const randomBytes = (r: Random, length: number): Buffer => Buffer.from(Array.from({ length }, () => int(r, 0, 255)));

/** Model names that are not models (path traversal, unicode, reserved words, lengths). */
const BAD_MODEL_NAMES = [
  '../../etc/passwd',
  '..',
  '.',
  '/',
  '\\..\\..\\windows',
  'iris/../spam',
  'iris/',
  'IRIS',
  'Iris',
  ' iris',
  'iris ',
  'iris\u0000',
  '\u202eiris',
  'ïris',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'con',
  'nul',
  '%00',
  '%2e%2e',
  'a'.repeat(64),
  'a'.repeat(65),
  '',
  '🙂',
  'iris\n',
  '$where',
];
/** Versions iris does not have (it has 1, 2 and 3), or that are not versions at all. */
const BAD_VERSIONS: unknown[] = [
  true,
  false,
  1.5,
  -1,
  0,
  999,
  99,
  RAW('1e309'),
  null,
  [],
  ['2'],
  {},
  { $gt: 0 },
  '999',
  '0',
  '-1',
  '',
  '../..',
  '__proto__',
  'constructor',
  '2 ',
  ' 2',
  '2\u0000',
  'latest',
  'v2',
];
const BAD_PRIORITIES: unknown[] = [0, 1001, -1, 1.5, '10', null, true, [], {}, RAW('1e309'), RAW('-0.5'), RAW('9007199254740993'), 'high'];
const BAD_URLS: unknown[] = [
  123,
  true,
  null,
  [],
  {},
  '',
  ' ',
  'not a url',
  'file:///etc/passwd',
  'javascript:alert(1)',
  'gopher://127.0.0.1:6379/_FLUSHALL',
  'ftp://x/y',
  'http://user:pass@example.com/hook',
  'https://:pw@example.com/',
  'http://',
  'http//example.com',
  '//example.com/x',
  '/relative',
  `https://example.com/${'a'.repeat(2100)}`,
  'data:text/plain,hi',
];
const EXTRA_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'inputs2',
  'Model',
  'id',
  'rows',
  'data',
  '',
  ' ',
  'model\u0000',
  '$where',
  'x'.repeat(200),
];

function randomJsonValue(r: Random, depth = 0): unknown {
  switch (int(r, 0, depth > 2 ? 4 : 6)) {
    case 0:
      return null;
    case 1:
      return chance(r, 0.5);
    case 2:
      return pick(r, [RAW('1e309'), RAW('-0'), RAW('9007199254740993'), -1, 0, 1.5, 1e21]);
    case 3:
      return unicodeString(r, 20);
    case 4:
      return printable(r, int(r, 0, 40));
    case 5:
      return Array.from({ length: int(r, 0, 4) }, () => randomJsonValue(r, depth + 1));
    default: {
      const out = Object.create(null) as Record<string, unknown>;
      for (let i = int(r, 0, 4); i > 0; i--) out[pick(r, [...EXTRA_KEYS, 'model', 'inputs', 'version'])] = randomJsonValue(r, depth + 1);
      return out;
    }
  }
}

// ---------------------------------------------------------------- requests

const SUBMIT_ROUTES = ['/v1/batch-predict', '/batch-predict'];
const PREDICT_ROUTES = ['/v1/models/iris/predict', '/v1/models/iris/versions/2/predict', '/v1/models/iris/versions/1/predict'];
const POST_ROUTES = [...SUBMIT_ROUTES, ...PREDICT_ROUTES];
const JSON_HEADERS = { 'content-type': 'application/json' };
const uuid = (r: Random): string => {
  const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[int(r, 0, 15)]).join('');
  return `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(r, ['8', '9', 'a', 'b'])}${hex(3)}-${hex(12)}`;
};

/** A submit body (for a submit or predict route) invalid for at least one definite reason. */
function invalidEnvelope(r: Random, route: string): string {
  const predict = !SUBMIT_ROUTES.includes(route);
  // No prototype: a key spelt `__proto__` becomes an own property, and JSON.stringify writes it.
  const body: Record<string, unknown> = Object.assign(
    Object.create(null) as Record<string, unknown>,
    predict
      ? { inputs: Array.from({ length: int(r, 1, 5) }, () => validRow(r)) }
      : { model: 'iris', inputs: Array.from({ length: int(r, 1, 20) }, () => validRow(r)) },
  );
  if (!predict && chance(r, 0.3)) body.version = pick(r, ['1', '2', 1, 2]);
  if (chance(r, 0.3)) body.priority = int(r, 1, 1000);
  const mutations = predict
    ? ['inputs', 'badRow', 'priority', 'extra', 'model-field']
    : ['model', 'version', 'inputs', 'badRow', 'priority', 'callbackUrl', 'extra', 'missing'];
  for (let n = int(r, 1, 3); n > 0; n--) {
    switch (pick(r, mutations)) {
      case 'model':
        body.model = chance(r, 0.6) ? pick(r, BAD_MODEL_NAMES) : pick(r, [null, 1, true, [], {}, ['iris'], { name: 'iris' }]);
        break;
      case 'version':
        body.version = pick(r, BAD_VERSIONS);
        break;
      case 'inputs':
        body.inputs = pick(r, [null, 'rows', 1, true, {}, { 0: [5.1, 3.5, 1.4, 0.2] }, [], RAW('1e309')]);
        break;
      case 'priority':
        body.priority = pick(r, BAD_PRIORITIES);
        break;
      case 'callbackUrl':
        body.callbackUrl = pick(r, BAD_URLS);
        break;
      case 'extra':
        body[pick(r, EXTRA_KEYS)] = randomJsonValue(r);
        break;
      case 'model-field':
        body.model = 'iris';
        break;
      case 'missing':
        if (route === '/v1/batch-predict') delete body.model;
        else delete body.inputs;
        break;
      default:
        body.inputs = rowsWithABadOne(r);
    }
  }
  if (route === '/batch-predict' && chance(r, 0.3)) return toJson(rowsWithABadOne(r)); // the seed's bare array
  return toJson(body);
}

/** Text that is not JSON (a character inserted inside a string literal could leave it valid: then it is spoilt for sure). */
function malformedJson(r: Random): string {
  const text = almostJson(r);
  try {
    JSON.parse(text);
  } catch {
    return text;
  }
  return `${text}}`;
}

function almostJson(r: Random): string {
  const valid = toJson({ model: 'iris', inputs: Array.from({ length: int(r, 1, 10) }, () => validRow(r)) });
  switch (int(r, 0, 7)) {
    case 0:
      return valid.slice(0, int(r, 0, valid.length - 1)); // truncated
    case 1: {
      const at = int(r, 1, valid.length - 1);
      return `${valid.slice(0, at)}${pick(r, [',', '}', ']', '"', ':', '{', '[', '\\', '\u0000', ' x '])}${valid.slice(at)}`;
    }
    case 2: {
      const tokens = [validValue(r), pick(r, MALFORMED_TOKENS), validValue(r), validValue(r)];
      return `{"model":"iris","inputs":[[${tokens.map((t) => t.replace(/@@RAW|@@/g, '')).join(',')}]]}`;
    }
    case 3:
      return pick(r, [
        "{'model':'iris'}",
        '{model:"iris"}',
        '{"model":"iris",}',
        '{"model":"iris" "inputs":[]}',
        '[1,2,]',
        '{"a":1}{"b":2}',
        '{"a":1} x',
        '\uFEFF{"model":1}',
        '{"a":"\\x41"}',
        '{"a":"\\u12"}',
        '{"a":"\\ud800"',
        '{"a":1',
        ']',
        '}',
        '""',
        '"',
        'nul',
        'true false',
      ]);
    case 4:
      return printable(r, int(r, 1, 200));
    case 5:
      return unicodeString(r, 100);
    case 6:
      return `${valid}${pick(r, ['x', ',', '}', ']', '{}', ' 1'])}`;
    default:
      return randomBytes(r, int(r, 1, 300)).toString('latin1');
  }
}

function deepValue(depth: number, kind: 'array' | 'object', inner = '1'): string {
  return kind === 'array' ? `${'['.repeat(depth)}${inner}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}${inner}${'}'.repeat(depth)}`;
}

function withQuery(r: Random, base: string): string {
  const params: string[] = [];
  if (base === '/v1/batch-predict' || chance(r, 0.5)) params.push(`model=${pick(r, ['iris', 'iris', 'iris', 'spam'])}`);
  if (chance(r, 0.4)) params.push(`version=${pick(r, ['1', '2'])}`);
  if (chance(r, 0.1))
    params.push(
      pick(r, [
        'priority=abc',
        'priority=0',
        'priority=1e309',
        'version=%ff',
        'model=__proto__',
        'model=iris&model=spam',
        'model[]=iris',
        'callbackUrl=file:///etc/passwd',
        'foo=bar',
        '__proto__=1',
        'version=../../etc',
        `model=${'a'.repeat(100)}`,
      ]),
    );
  return params.length > 0 ? `${base}?${params.join('&')}` : base;
}

function ndjsonBody(r: Random): Buffer {
  const lines: Buffer[] = [];
  const good = chance(r, 0.3) ? int(r, 0, 3000) : int(r, 0, 20);
  for (let i = 0; i < good; i++) lines.push(Buffer.from(toJson(validRow(r))));
  const badLine = (): Buffer => {
    switch (int(r, 0, 5)) {
      case 0:
        return Buffer.from(toJson(badIrisRow(r)));
      case 1:
        return Buffer.from(malformedJson(r).replace(/\n/g, ' ') || '{');
      case 2:
        return Buffer.concat([Buffer.from('{"sepal_length":'), randomBytes(r, 20), Buffer.from('}')]);
      case 3:
        return Buffer.from(deepValue(int(r, 100, 10_000), chance(r, 0.5) ? 'array' : 'object'));
      case 4:
        return Buffer.from([0xff, 0xfe, 0xfd, 0x0a]).subarray(0, 3);
      default:
        return Buffer.from(printable(r, int(r, 1, 100)));
    }
  };
  for (let n = int(r, 1, 3); n > 0; n--) lines.splice(int(r, 0, lines.length), 0, badLine());
  const eol = pick(r, ['\n', '\r\n', '\n\n']);
  return Buffer.concat(lines.flatMap((l) => [l, Buffer.from(eol)]));
}

function csvBody(r: Random): string {
  let header = [...(chance(r, 0.5) ? ['id'] : []), ...FEATURES];
  if (chance(r, 0.3)) {
    header = pick(r, [
      header.slice(0, -1),
      [...header, 'colour'],
      [...header, FEATURES[0] as string],
      header.map((h) => h.toUpperCase()),
      [''],
      ['"sepal_length', 'sepal_width', 'petal_length', 'petal_width'],
      ['\u0000', ...FEATURES],
    ]);
  }
  const rows: string[] = [];
  for (let i = int(r, 0, 200); i > 0; i--)
    rows.push([...(header[0] === 'id' ? [`r${i}`] : []), ...FEATURES.map(() => (r() * 10).toFixed(2))].join(','));
  const bad = (): string =>
    pick(r, [
      `${header[0] === 'id' ? 'x,' : ''}5.1,wide,1.4,0.2`,
      `${header[0] === 'id' ? 'x,' : ''}5.1,3.5,1.4`,
      `${header[0] === 'id' ? 'x,' : ''}5.1,3.5,1.4,0.2,9`,
      `${header[0] === 'id' ? 'x,' : ''}11,3.5,1.4,0.2`,
      `${header[0] === 'id' ? 'x,' : ''}-1,3.5,1.4,0.2`,
      `"5.1,3.5,1.4,0.2`,
      `${header[0] === 'id' ? '"x""",' : ''}NaN,Infinity,1e309,-0`,
      printable(r, 30),
      '\u0000\u0000',
    ]);
  for (let n = int(r, 1, 3); n > 0; n--) rows.splice(int(r, 0, rows.length), 0, bad());
  return `${chance(r, 0.1) ? '\uFEFF' : ''}${[header.join(','), ...rows].join(pick(r, ['\n', '\r\n']))}\n`;
}

const WEIRD_IDS = [
  '../../etc/passwd',
  '..%2F..%2Fetc%2Fpasswd',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '%2e%2e',
  '..',
  '.',
  '%00',
  'abc%00def',
  '%ff',
  '%fe%ff',
  '%c0%ae%c0%ae',
  '%e2%80%ae',
  '%f0%9f%92%a9',
  '%ef%bb%bf',
  '%25',
  '%252e%252e',
  '%',
  '%2',
  '%zz',
  '%u002e',
  'null',
  'undefined',
  '__proto__',
  'constructor',
  '0',
  '-1',
  '%20',
  '%0d%0aSet-Cookie:x=1',
  '*',
  '~',
];
function weirdId(r: Random): string {
  switch (int(r, 0, 6)) {
    case 0:
    case 1:
      return pick(r, WEIRD_IDS);
    case 2:
      return encodeURIComponent(unicodeString(r, 40));
    case 3:
      // arbitrary bytes, often not UTF-8
      return Array.from({ length: int(r, 1, 12) }, () => `%${int(r, 0, 255).toString(16).padStart(2, '0')}`).join('');
    case 4:
      return printable(r, int(r, 2000, 12_000)).replace(/[^A-Za-z0-9._~-]/g, 'a'); // very long
    case 5:
      return uuid(r).toUpperCase();
    default:
      return `${uuid(r)}${pick(r, ['%00', '/..', '%2f..', '.json', '%20', 'x'])}`;
  }
}

const WRONG_CONTENT_TYPES = [
  'text/plain',
  'application/xml',
  'text/html',
  'multipart/form-data; boundary=----x',
  'application/x-www-form-urlencoded',
  'application/json; charset=utf-16',
  'application/json; charset=utf-32',
  'application/json; charset=latin1',
  'application/json; charset=bogus',
  'application/octet-stream',
  '*/*',
  'application/*',
  'application/jsonx',
  'application/vnd.api+json',
  'application/json, text/plain',
  'APPLICATION/JSON',
  'application/json;;;',
  'text/json',
  'image/png',
  `application/json; x=${'a'.repeat(3000)}`,
  'text/csv; charset=utf-16',
  'application/x-ndjson; charset=utf-16',
  'json',
  ' ',
  ';',
];
const WEIRD_METHODS = [
  'PUT',
  'PATCH',
  'DELETE',
  'GET',
  'TRACE',
  'PROPFIND',
  'PROPPATCH',
  'MKCOL',
  'COPY',
  'MOVE',
  'LOCK',
  'UNLOCK',
  'SEARCH',
  'PURGE',
  'REPORT',
  'LINK',
  'UNLINK',
  'NOTIFY',
  'SUBSCRIBE',
  'MERGE',
  'CHECKOUT',
];

function httpCase(r: Random, kind: string): HttpCase {
  switch (kind) {
    case 'malformed-json': {
      const path = pick(r, POST_ROUTES);
      return {
        kind,
        method: 'POST',
        path,
        headers: { ...JSON_HEADERS },
        body: Buffer.from(malformedJson(r), chance(r, 0.9) ? 'utf8' : 'latin1'),
        chunked: chance(r, 0.2),
      };
    }
    case 'wrong-types': {
      const path = pick(r, POST_ROUTES);
      return { kind, method: 'POST', path, headers: { ...JSON_HEADERS }, body: Buffer.from(invalidEnvelope(r, path)) };
    }
    case 'numbers': {
      const path = pick(r, POST_ROUTES);
      const row: unknown[] = FEATURES.map(() => pick(r, DECOY_VALUES));
      row[int(r, 0, 3)] = chance(r, 0.6)
        ? pick(
            r,
            BAD_VALUES.filter((v) => typeof v === 'string' && v.startsWith('@@RAW')),
          )
        : RAW(pick(r, MALFORMED_TOKENS));
      const rows = [...Array.from({ length: int(r, 0, 5) }, () => validArrayRow(r)), row];
      const body = SUBMIT_ROUTES.includes(path)
        ? { model: 'iris', inputs: rows, ...(chance(r, 0.3) ? { priority: RAW(pick(r, ['1e309', '-0', '1e2', '100.0'])) } : {}) }
        : { inputs: rows };
      return { kind, method: 'POST', path, headers: { ...JSON_HEADERS }, body: Buffer.from(toJson(body)) };
    }
    case 'deep': {
      const path = pick(r, POST_ROUTES);
      const deep = deepValue(10_000, chance(r, 0.5) ? 'array' : 'object');
      const where = int(r, 0, 5);
      const text = [
        deep,
        `{"model":"iris","inputs":${deep}}`,
        `{"model":"iris","inputs":[${deep}]}`,
        `{"model":"iris","inputs":[{"sepal_length":${deep},"sepal_width":1,"petal_length":1,"petal_width":1}]}`,
        `{"model":${deep},"inputs":[[1,1,1,1]]}`,
        `{"model":"iris","priority":${deep},"inputs":[[1,1,1,1]]}`,
      ][where] as string;
      return {
        kind,
        method: 'POST',
        path,
        headers: { ...JSON_HEADERS },
        body: Buffer.from(PREDICT_ROUTES.includes(path) ? text.replace('"model":"iris",', '') : text),
      };
    }
    case 'huge-array': {
      const path = pick(r, SUBMIT_ROUTES);
      const n = int(r, 50_000, 200_000);
      let text: string;
      switch (int(r, 0, 3)) {
        case 0: // many valid rows staged, then one bad row (or too many rows): all of it must be dropped
          text = `{"model":"iris","inputs":[${'[5.1,3.5,1.4,0.2],'.repeat(n)}${toJson(badIrisRow(r))}]}`;
          break;
        case 1:
          text = `{"model":"iris","inputs":[${'0,'.repeat(n)}0]}`;
          break;
        case 2:
          text = `{"model":[${'"iris",'.repeat(n)}"iris"],"inputs":[[1,1,1,1]]}`;
          break;
        default:
          text = `{"model":"iris","inputs":[${'{},'.repeat(n)}{}]}`;
      }
      return { kind, method: 'POST', path, headers: { ...JSON_HEADERS }, body: Buffer.from(text), chunked: chance(r, 0.3) };
    }
    case 'mega-string': {
      const big = 'M'.repeat(int(r, 1, 3) * 1024 * 1024 - int(r, 0, 1000));
      const path = pick(r, SUBMIT_ROUTES);
      switch (int(r, 0, 6)) {
        case 0:
          return {
            kind,
            method: 'POST',
            path,
            headers: { ...JSON_HEADERS },
            body: Buffer.from(toJson({ model: big, inputs: [[1, 1, 1, 1]] })),
          };
        case 1:
          return {
            kind,
            method: 'POST',
            path,
            headers: { ...JSON_HEADERS },
            body: Buffer.from(toJson({ model: 'iris', callbackUrl: `https://example.com/${big}`, inputs: [[1, 1, 1, 1]] })),
          };
        case 2:
          return {
            kind,
            method: 'POST',
            path,
            headers: { ...JSON_HEADERS },
            body: Buffer.from(toJson({ model: 'iris', version: big, inputs: [[1, 1, 1, 1]] })),
          };
        case 3:
          return {
            kind,
            method: 'POST',
            path,
            headers: { ...JSON_HEADERS },
            body: Buffer.from(toJson({ model: 'iris', inputs: [{ sepal_length: big, sepal_width: 1, petal_length: 1, petal_width: 1 }] })),
          };
        case 4:
          return {
            kind,
            method: 'POST',
            path,
            headers: { ...JSON_HEADERS },
            body: Buffer.from(`{"model":"iris","inputs":[[1,1,1,1]],"${big}":1}`),
          };
        case 5:
          return {
            kind,
            method: 'POST',
            path: '/v1/batch-predict?model=iris',
            headers: { 'content-type': 'application/x-ndjson' },
            body: Buffer.from(`[1,1,1,1]\n${big}\n`),
            chunked: true,
          };
        default: // beyond MAX_BODY_BYTES
          return {
            kind,
            method: 'POST',
            path,
            headers: { ...JSON_HEADERS },
            body: Buffer.from(toJson({ model: 'iris', inputs: [[1, 1, 1, 1]], pad: big + big }).replace('"pad"', '"pad2"')),
          };
      }
    }
    case 'content-type': {
      const path = pick(r, POST_ROUTES);
      const type = pick(r, WRONG_CONTENT_TYPES);
      const body = chance(r, 0.5) ? invalidEnvelope(r, path) : malformedJson(r);
      return {
        kind,
        method: 'POST',
        path: SUBMIT_ROUTES.includes(path) ? withQuery(r, path) : path,
        headers: type.trim() === '' && chance(r, 0.5) ? {} : { 'content-type': type },
        body: Buffer.from(body),
      };
    }
    case 'method': {
      if (chance(r, 0.6)) {
        const path = pick(r, POST_ROUTES);
        return {
          kind,
          method: pick(r, WEIRD_METHODS),
          path,
          headers: { ...JSON_HEADERS },
          body: chance(r, 0.5) ? Buffer.from(invalidEnvelope(r, path)) : undefined,
        };
      }
      const id = uuid(r);
      const path = pick(r, [
        '/v1/models',
        '/v1/models/iris',
        '/v1/models/iris/versions/2',
        '/livez',
        '/readyz',
        `/v1/batch-result/${id}/results`,
        `/v1/batch-result/${id}/cancel`,
        `/batch-result/${id}`,
        `/v1/batch-result/${id}`,
      ]);
      const method = path.endsWith('/cancel')
        ? pick(r, ['GET', 'PUT', 'DELETE', 'POST'])
        : path.startsWith('/v1/batch-result/') && !path.endsWith('/results')
          ? pick(r, ['PUT', 'PATCH', 'POST', 'DELETE'])
          : pick(r, ['POST', 'PUT', 'PATCH', 'DELETE', 'PROPFIND']);
      return { kind, method, path, headers: { ...JSON_HEADERS }, body: chance(r, 0.5) ? Buffer.from(malformedJson(r)) : undefined };
    }
    case 'weird-path': {
      const id = weirdId(r);
      const templates: [string, string][] = [
        ['GET', `/v1/batch-result/${id}`],
        ['GET', `/v1/batch-result/${id}/results`],
        ['POST', `/v1/batch-result/${id}/cancel`],
        ['DELETE', `/v1/batch-result/${id}`],
        ['GET', `/batch-result/${id}`],
        ['GET', `/v1/models/${id}`],
        ['GET', `/v1/models/${chance(r, 0.5) ? 'iris' : id}/versions/${weirdId(r)}`],
        ['POST', `/v1/models/${id}/predict`],
        ['POST', `/v1/models/iris/versions/${id}/predict`],
        ['GET', `/${id}`],
        ['GET', `/v1/${id}`],
        ['POST', `/v1/batch-predict/${id}`],
        ['GET', `/v1/batch-result/${uuid(r)}?wait=${pick(r, WAIT_VALUES)}`],
        ['GET', `/v1/batch-result/${uuid(r)}/results?offset=${pick(r, ['-1', 'x', '1e309', '%00'])}&limit=${pick(r, ['0', '10001', 'y'])}`],
      ];
      const [method, long] = pick(r, templates);
      const path = long.slice(0, 12_000); // two long ids in one path would pass Node's 16 KB header limit
      return {
        kind,
        method,
        path,
        headers: method === 'POST' ? { ...JSON_HEADERS } : {},
        body: method === 'POST' ? Buffer.from(malformedJson(r)) : undefined,
      };
    }
    case 'headers': {
      const path = pick(r, POST_ROUTES);
      const headers: Record<string, string> = { ...JSON_HEADERS };
      let body: Buffer = Buffer.from(invalidEnvelope(r, path));
      switch (int(r, 0, 7)) {
        case 0:
          headers['x-fuzz'] = printable(r, int(r, 8000, 14_000));
          break;
        case 1:
          for (let i = int(r, 100, 600); i > 0; i--) headers[`x-f${i}`] = printable(r, int(r, 1, 10));
          break;
        case 2:
          headers['idempotency-key'] = pick(r, [printable(r, 300), 'a b', '\t', 'café', printable(r, 255)]);
          break;
        case 3: {
          const encoding = pick(r, ['gzip', 'deflate', 'br', 'gzip, gzip', 'identity', 'x-foo', 'compress', 'GZIP']);
          headers['content-encoding'] = encoding;
          if (encoding === 'gzip' && chance(r, 0.5))
            body = gzipSync(body); // a real gzip of an invalid body
          else if (chance(r, 0.5)) body = randomBytes(r, int(r, 1, 200));
          break;
        }
        case 4:
          headers.authorization = pick(r, [
            'Bearer',
            'Bearer ',
            `Bearer ${printable(r, 5000)}`,
            'Basic Zm9vOmJhcg==',
            'Bearer a b c',
            printable(r, 100),
          ]);
          headers['x-api-key'] = printable(r, int(r, 0, 300));
          break;
        case 5:
          headers['x-request-id'] = pick(r, [printable(r, 500), '../../etc/passwd', '', '\t', 'a'.repeat(129)]);
          headers.accept = pick(r, ['application/xml', '*/*;q=abc', '', 'text/csv;q=2', printable(r, 200)]);
          break;
        case 6:
          headers['content-type'] =
            `application/json; charset=utf-8; ` +
            Array.from({ length: 50 }, (_, i) => `p${i}=${printable(r, 20).replace(/[;,"\\]/g, 'x')}`).join('; ');
          break;
        default:
          headers.cookie = printable(r, 8000).replace(/[;]/g, 'x');
          headers.range = 'bytes=0-1,2-3,4-5';
          headers['if-none-match'] = '*';
      }
      return { kind, method: 'POST', path, headers, body };
    }
    case 'ndjson': {
      const path = withQuery(r, pick(r, ['/v1/batch-predict', '/v1/batch-predict', '/batch-predict']));
      return {
        kind,
        method: 'POST',
        path,
        headers: { 'content-type': pick(r, ['application/x-ndjson', 'application/jsonl', 'application/x-ndjson; charset=utf-8']) },
        body: ndjsonBody(r),
        chunked: chance(r, 0.5),
      };
    }
    case 'csv': {
      const path = withQuery(r, pick(r, ['/v1/batch-predict', '/batch-predict']));
      return {
        kind,
        method: 'POST',
        path,
        headers: { 'content-type': 'text/csv' },
        body: Buffer.from(csvBody(r)),
        chunked: chance(r, 0.5),
      };
    }
    default:
      throw new Error(`no generator for ${kind}`);
  }
}

/** Requests only a raw socket can send: broken framing, bogus lengths, bad request lines. */
function rawCase(r: Random): RawCase {
  const body = Buffer.from(invalidEnvelope(r, '/v1/batch-predict'));
  const head = (lines: string[]): string => `${lines.join('\r\n')}\r\n\r\n`;
  const post = (extra: string[], payload: Buffer | string = body, method = 'POST', path = '/v1/batch-predict'): Buffer =>
    Buffer.concat([
      Buffer.from(head([`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...extra])),
      Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
    ]);
  const variants: (() => RawCase)[] = [
    () => ({
      kind: 'raw:content-length-not-a-number',
      raw: post([
        'Content-Type: application/json',
        `Content-Length: ${pick(r, ['abc', '-1', '1.5', '0x10', '', ' ', '99999999999999999999'])}`,
      ]),
    }),
    () => ({
      kind: 'raw:content-length-too-small',
      raw: post(['Content-Type: application/json', `Content-Length: ${int(r, 1, Math.max(1, body.length - 1))}`]),
    }),
    () => ({
      kind: 'raw:content-length-too-large',
      raw: post(['Content-Type: application/json', `Content-Length: ${body.length + int(r, 1, 1000)}`]),
      mayNotAnswer: true,
    }),
    () => ({
      kind: 'raw:two-content-lengths',
      raw: post(['Content-Type: application/json', `Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`]),
    }),
    () => ({
      kind: 'raw:content-length-and-chunked',
      raw: post(
        ['Content-Type: application/json', `Content-Length: ${body.length}`, 'Transfer-Encoding: chunked'],
        `${body.length.toString(16)}\r\n${body.toString()}\r\n0\r\n\r\n`,
      ),
    }),
    () => ({
      kind: 'raw:bad-chunk-size',
      raw: post(
        ['Content-Type: application/json', 'Transfer-Encoding: chunked'],
        `${pick(r, ['zz', '-1', 'FFFFFFFFFFFFFFFFFF', '1;ext="', ''])}\r\n${body.toString()}\r\n0\r\n\r\n`,
      ),
    }),
    () => ({
      kind: 'raw:transfer-encoding-not-chunked',
      raw: post(['Content-Type: application/json', `Transfer-Encoding: ${pick(r, ['gzip', 'chunked, gzip', 'identity', 'bogus'])}`]),
      mayNotAnswer: true,
    }),
    () => ({
      kind: 'raw:duplicate-content-type',
      raw: post([
        `Content-Type: ${pick(r, ['application/json', 'text/plain'])}`,
        `Content-Type: ${pick(r, ['text/csv', 'application/x-ndjson', 'application/json'])}`,
        `Content-Length: ${body.length}`,
      ]),
    }),
    () => ({
      kind: 'raw:bad-request-line',
      raw: Buffer.from(
        pick(r, [
          'GET / HTTP/9.9\r\n\r\n',
          'get /nope HTTP/1.1\r\nHost: x\r\n\r\n',
          'FOO /v1/models HTTP/1.1\r\nHost: x\r\n\r\n',
          'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n',
          'GET\r\n\r\n',
          'GET /nope HTTP/1.1 extra\r\nHost: x\r\n\r\n',
          ' GET / HTTP/1.1\r\n\r\n',
          'GET /nope HTTP/1.1\nHost: x\n\n\n',
          'QUERY /v1/models HTTP/1.1\r\nHost: x\r\n\r\n',
          'GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n',
        ]),
      ),
    }),
    () => ({ kind: 'raw:junk', raw: randomBytes(r, int(r, 1, 2000)), mayNotAnswer: true }),
    () => ({
      kind: 'raw:header-without-colon',
      raw: post(['Content-Type: application/json', `Content-Length: ${body.length}`, 'X-Broken header']),
    }),
    () => ({
      kind: 'raw:control-chars-in-header',
      raw: post([
        'Content-Type: application/json',
        `Content-Length: ${body.length}`,
        `X-Evil: a${pick(r, ['\u0000', '\u0001', '\u007f', '\r'])}b`,
      ]),
    }),
    () => ({ kind: 'raw:obs-fold', raw: post(['Content-Type: application/json', `Content-Length: ${body.length}`, 'X-Folded: a', ' b']) }),
    () => ({
      kind: 'raw:no-host',
      raw: Buffer.from(
        `POST /v1/batch-predict HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: ` +
          `close\r\n\r\n${body.toString()}`,
      ),
    }),
    () => ({
      kind: 'raw:header-too-large',
      raw: post(['Content-Type: application/json', `Content-Length: ${body.length}`, `X-Big: ${printable(r, int(r, 17_000, 40_000))}`]),
    }),
    () => ({
      kind: 'raw:expect',
      raw: post([
        'Content-Type: application/json',
        `Content-Length: ${body.length}`,
        `Expect: ${pick(r, ['foo', '100-continue-please', '200-ok'])}`,
      ]),
    }),
    () => ({
      kind: 'raw:path-traversal',
      raw: post(
        ['Content-Type: application/json', `Content-Length: ${body.length}`],
        body,
        pick(r, ['GET', 'POST']),
        pick(r, [
          '/../../etc/passwd',
          '/v1/../../../etc/passwd',
          '/v1/batch-result/../../../etc/passwd',
          '//etc/passwd',
          '/v1/models/..%2f..%2fetc%2fpasswd',
          '/%2e%2e/%2e%2e/etc/passwd',
          '/v1/batch-result/%c0%af',
          `/v1/batch-result/${'é'}`,
        ]),
      ),
    }),
    () => ({
      kind: 'raw:absolute-uri',
      raw: post(
        ['Content-Type: application/json', `Content-Length: ${body.length}`],
        body,
        'POST',
        pick(r, ['http://evil.example/v1/batch-predict', 'http://127.0.0.1/v1/batch-result/%ff', '*']),
      ),
    }),
  ];
  return pick(r, variants)();
}

const WEIGHTS: [string, number][] = [
  ['malformed-json', 150],
  ['wrong-types', 250],
  ['numbers', 80],
  ['deep', 10],
  ['huge-array', 4],
  ['mega-string', 6],
  ['content-type', 80],
  ['method', 80],
  ['weird-path', 120],
  ['headers', 60],
  ['ndjson', 80],
  ['csv', 60],
  ['raw', 20],
];
const TOTAL_WEIGHT = WEIGHTS.reduce((sum, [, w]) => sum + w, 0);

function generate(index: number): Case {
  const r = seededRandom((SEED ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  let roll = r() * TOTAL_WEIGHT;
  const kind = (WEIGHTS.find(([, w]) => (roll -= w) < 0) ?? WEIGHTS[0])?.[0] as string;
  return kind === 'raw' ? rawCase(r) : httpCase(r, kind);
}

// ---------------------------------------------------------------- sending and judging

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
/** Which case was answered last on each kept-alive connection, and when. */
const lastAnsweredOn = new WeakMap<net.Socket, { index: number; at: number }>();

function resetOn(socket: net.Socket, sentAt: number): Pick<Answer, 'resetAfter' | 'idleMs'> {
  const last = lastAnsweredOn.get(socket);
  return { resetAfter: last?.index ?? -1, idleMs: last ? sentAt - last.at : 0 };
}

function sendHttp(baseUrl: URL, c: HttpCase, index: number, keepAlive = true): Promise<Answer> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { ...c.headers };
    if (c.body && !c.chunked) headers['content-length'] = String(c.body.length);
    let req: http.ClientRequest;
    try {
      req = http.request({
        host: baseUrl.hostname,
        port: baseUrl.port,
        method: c.method,
        path: c.path,
        headers,
        agent: keepAlive ? agent : false,
      });
    } catch (error) {
      resolve({ status: -1, headers: {}, body: '', error: `client refused to send: ${(error as Error).message}` });
      return;
    }
    let socket: net.Socket | null = null;
    let sentAt = 0;
    req.on('socket', (s) => {
      socket = s;
      sentAt = Date.now();
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timed out')));
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        if (socket) lastAnsweredOn.set(socket, { index, at: Date.now() });
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers as Record<string, string>,
          body: Buffer.concat(parts).toString('utf8'),
        });
      });
      res.on('error', (error) => resolve({ status: 0, headers: {}, body: '', error: error.message }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      const reset = req.reusedSocket && socket !== null && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
      resolve({
        status: 0,
        headers: {},
        body: '',
        error: error.message,
        ...(reset && socket ? resetOn(socket, sentAt) : {}),
      });
    });
    if (c.body && c.chunked) {
      // A few writes, so the body really arrives in chunks.
      const step = Math.max(1, Math.ceil(c.body.length / 3));
      for (let at = 0; at < c.body.length; at += step) req.write(c.body.subarray(at, at + step));
      req.end();
    } else {
      req.end(c.body);
    }
  });
}

/** The payload of a chunked body (enough for the short answers Node writes itself). */
function unchunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = eol === -1 ? NaN : parseInt(rest.slice(0, eol), 16);
    if (!Number.isFinite(size) || size === 0) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

function sendRaw(baseUrl: URL, c: RawCase): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(baseUrl.port), baseUrl.hostname);
    const parts: Buffer[] = [];
    let settled = false;
    const finish = (error?: string): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      let text = Buffer.concat(parts).toString('latin1');
      // Interim answers (100 Continue) come before the real one.
      while (/^HTTP\/1\.[01] 1\d\d /.test(text) && text.includes('\r\n\r\n')) text = text.slice(text.indexOf('\r\n\r\n') + 4);
      const end = text.indexOf('\r\n\r\n');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      if (!status || end === -1) {
        resolve({ status: 0, headers: {}, body: '', error: error ?? `no answer (${JSON.stringify(text.slice(0, 80))})` });
        return;
      }
      const headers: Record<string, string> = {};
      for (const line of text.slice(0, end).split('\r\n').slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers['content-length'] ?? NaN);
      const raw = Buffer.from(text.slice(end + 4), 'latin1');
      let answerBody = (Number.isFinite(length) ? raw.subarray(0, length) : raw).toString('utf8');
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) answerBody = unchunk(answerBody);
      resolve({ status: Number(status[1]), headers, body: answerBody });
    };
    const complete = (): boolean => {
      let text = Buffer.concat(parts).toString('latin1');
      while (/^HTTP\/1\.[01] 1\d\d /.test(text) && text.includes('\r\n\r\n')) text = text.slice(text.indexOf('\r\n\r\n') + 4);
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return false;
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
      return length !== null && Buffer.byteLength(text.slice(end + 4), 'latin1') >= Number(length[1]);
    };
    socket.setTimeout(c.mayNotAnswer ? 3000 : 15_000, () => finish('timed out'));
    socket.on('connect', () => socket.write(c.raw));
    socket.on('data', (d: Buffer) => {
      parts.push(d);
      if (complete()) finish();
    });
    socket.on('error', (error) => finish(error.message));
    socket.on('close', () => finish());
  });
}

interface Verdict {
  outcome: 'problem' | 'bare-node-400' | 'no-answer-allowed' | 'violation';
  why?: string;
}

function judge(c: Case, answer: Answer): Verdict {
  const raw = 'raw' in c;
  if (answer.status <= 0) {
    if (raw && c.mayNotAnswer) return { outcome: 'no-answer-allowed' };
    return { outcome: 'violation', why: `no answer: ${answer.error ?? '?'}` };
  }
  if (answer.status >= 500) return { outcome: 'violation', why: `${answer.status} ${answer.body.slice(0, 300)}` };
  if (answer.status < 400) return { outcome: 'violation', why: `${answer.status} is not an error: ${answer.body.slice(0, 200)}` };
  const type = answer.headers['content-type'] ?? '';
  if (!type.startsWith('application/problem+json')) {
    // Node's HTTP parser answers a request it cannot parse with a bare 4xx before Express sees it.
    if (raw && answer.body === '') return { outcome: 'bare-node-400' };
    return { outcome: 'violation', why: `${answer.status} with content-type '${type}': ${answer.body.slice(0, 200)}` };
  }
  let problem: { status?: unknown; code?: unknown };
  try {
    problem = JSON.parse(answer.body) as { status?: unknown; code?: unknown };
  } catch {
    return { outcome: 'violation', why: `${answer.status} problem+json body is not JSON: ${answer.body.slice(0, 200)}` };
  }
  if (problem.status !== answer.status)
    return { outcome: 'violation', why: `body status ${String(problem.status)} ≠ HTTP ${answer.status}` };
  if (typeof problem.code !== 'string' || !/^OB_ERR_[A-Z_]+$/.test(problem.code))
    return { outcome: 'violation', why: `no code: ${answer.body.slice(0, 200)}` };
  return { outcome: 'problem' };
}

function describeCase(index: number, c: Case): string {
  if ('raw' in c) return `#${index} ${c.kind}: ${JSON.stringify(c.raw.toString('latin1').slice(0, 160))}`;
  const headers = Object.entries(c.headers)
    .map(([k, v]) => `${k}: ${v.slice(0, 60)}`)
    .slice(0, 4)
    .join('; ');
  return (
    `#${index} ${c.kind}: ${c.method} ${c.path.slice(0, 120)} [${headers}] ` +
    `${c.body ? JSON.stringify(c.body.subarray(0, 120).toString('latin1')) : ''}`
  );
}

interface Tally {
  sent: number;
  byOutcome: Record<string, number>;
  byKind: Record<string, number>;
  byStatus: Record<string, number>;
  violations: string[];
  violationsByKind: Record<string, number>;
}

async function run(baseUrl: URL, indexes: number[]): Promise<Tally> {
  const tally: Tally = { sent: 0, byOutcome: {}, byKind: {}, byStatus: {}, violations: [], violationsByKind: {} };
  const bump = (record: Record<string, number>, key: string): void => {
    record[key] = (record[key] ?? 0) + 1;
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < indexes.length) {
        const index = indexes[next++] as number;
        const c = generate(index);
        let answer = 'raw' in c ? await sendRaw(baseUrl, c) : await sendHttp(baseUrl, c, index);
        if (answer.resetAfter !== undefined && !('raw' in c)) {
          // The connection was closed under this request although the answer before it on the
          // same connection said keep-alive: that answer is at fault. This case is sent again.
          const previous = answer.resetAfter;
          const culprit = previous >= 0 ? generate(previous) : null;
          const why =
            `answered with Connection: keep-alive, then closed the connection (the next request on it, #${index} ${c.kind} ` +
            `${answer.idleMs ?? 0} ms later, was reset)`;
          bump(tally.violationsByKind, `${culprit?.kind ?? '?'} → ${why.slice(0, 40)}`);
          if (tally.violations.length < 25) tally.violations.push(`${culprit ? describeCase(previous, culprit) : '#?'}\n      → ${why}`);
          answer = await sendHttp(baseUrl, c, index, false);
        }
        const verdict = judge(c, answer);
        tally.sent++;
        bump(tally.byOutcome, verdict.outcome);
        bump(tally.byKind, c.kind.startsWith('raw:') ? 'raw' : c.kind);
        bump(tally.byStatus, String(answer.status));
        if (verdict.outcome === 'violation') {
          bump(tally.violationsByKind, `${c.kind} → ${verdict.why?.slice(0, 40) ?? ''}`);
          if (tally.violations.length < 25) tally.violations.push(`${describeCase(index, c)}\n      → ${verdict.why ?? ''}`);
        }
      }
    }),
  );
  return tally;
}

// ---------------------------------------------------------------- the test

/** The process's RSS once idle and after two full garbage collections (through GC_HOOK). */
async function idleRss(pid: number): Promise<number> {
  await sleep(1000);
  for (let i = 0; i < 2; i++) {
    process.kill(pid, 'SIGUSR2');
    await sleep(750);
  }
  return rssBytes(pid);
}

describe('reliability: fuzzing the API with bad requests', () => {
  let redis: PrivateRedis;
  let client: Redis;
  let env: TestEnv;
  let api: Spawned;
  let url: URL;
  const group = new ProcessGroup();

  beforeAll(async () => {
    redis = await startPrivateRedis();
    client = redis.client();
    env = testEnv({
      REDIS_URL: redis.url,
      RATE_LIMIT_PER_MINUTE: '0',
      MAX_BODY_BYTES: String(MAX_BODY_BYTES),
      MAX_ROWS_PER_JOB: String(MAX_ROWS_PER_JOB),
      CHUNK_SIZE: '500',
      MAX_ACTIVE_JOBS_PER_TENANT: '1000000',
      NODE_OPTIONS: GC_HOOK,
    });
    const started = await group.api(env);
    api = started.proc;
    url = new URL(started.url);
  }, 60_000);

  afterAll(async () => {
    agent.destroy();
    await group.stopAll();
    await redis?.destroy();
  });

  it(
    `when ${CASES} generated bad requests arrive ${CONCURRENCY} at a time, then every one is a 4xx problem+json, the process ` +
      `stays up and small, and nothing is queued`,
    async () => {
      // Warm-up: cases outside the measured range, with a burst of big bodies 16 at a time, so the
      // heap and the allocator reach the size the run itself needs before the baseline is taken.
      const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
      const heavy: number[] = [];
      for (let i = CASES + WARM_UP; heavy.length < WARM_UP_HEAVY; i++) if (HEAVY_KINDS.includes(generate(i).kind)) heavy.push(i);
      const warmUp = await run(url, [...range(CASES, CASES + WARM_UP), ...heavy]);
      const rssAfterWarmUp = await idleRss(api.pid);

      const started = Date.now();
      const tally = await run(url, range(0, CASES));
      const seconds = (Date.now() - started) / 1000;
      const rssAfterRun = await idleRss(api.pid);

      const livez = await fetch(`${url.origin}/livez`);
      const counts = await queueCounts(redis.url, env.REDIS_PREFIX);
      const keys = await jobKeys(client, env.REDIS_PREFIX);
      const events = [
        ...(await queueEvents(client, env.REDIS_PREFIX, QueueName.Chunks)),
        ...(await queueEvents(client, env.REDIS_PREFIX, QueueName.Batches)),
      ];
      const internalErrors = api.output.filter((line) => line.includes('"request failed"') || line.includes('"level":"error"'));

      const summary = {
        seconds: Math.round(seconds),
        sent: tally.sent + warmUp.sent,
        byOutcome: tally.byOutcome,
        byKind: tally.byKind,
        byStatus: tally.byStatus,
        violationsByKind: tally.violationsByKind,
        rssMB: { afterWarmUp: Math.round(rssAfterWarmUp / 2 ** 20), afterRun: Math.round(rssAfterRun / 2 ** 20) },
      };
      process.stdout.write(`fuzz summary: ${JSON.stringify(summary)}\n`);

      expect(tally.sent).toBe(CASES);
      // One expectation for everything, so a failure shows every broken property at once.
      const rssGrowthMB = Math.round((rssAfterRun - rssAfterWarmUp) / 2 ** 20);
      expect({
        violationsByKind: { ...warmUp.violationsByKind, ...tally.violationsByKind },
        firstViolations: [...tally.violations, ...warmUp.violations].slice(0, 25),
        internalErrorsLogged: internalErrors.slice(0, 5),
        livez: livez.status,
        exitCode: api.child.exitCode,
        queued: countOf(counts, 'active', 'wait', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'),
        queueEvents: events,
        jobKeys: keys,
        jobsQueuedLogged: api.output.filter((line) => line.includes('job queued')),
        rssGrowthWithinBound: rssAfterRun - rssAfterWarmUp < RSS_BOUND ? true : `grew ${rssGrowthMB} MB`,
      }).toEqual({
        violationsByKind: {},
        firstViolations: [],
        internalErrorsLogged: [],
        livez: 200,
        exitCode: null,
        queued: 0,
        queueEvents: [],
        jobKeys: [],
        jobsQueuedLogged: [],
        rssGrowthWithinBound: true,
      });
    },
    170_000,
  );
});
