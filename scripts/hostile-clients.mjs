#!/usr/bin/env node
// Hostile and slow clients against the real API (and a worker) on a private redis-server:
// each attack, what the API answered, how soon, whether other clients were still served,
// and the API's memory. `npm run hostile` prints a table (docs/operations.md quotes one);
// `--json` prints the figures as JSON (test/reliability/hostile-clients.test.ts runs it so).
// Targets 127.0.0.1 only; every connection and process it opens is closed at the end.
import { mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { freePort, killAllNow, rssBytes, startNode, startRedis, stopAll, unexpectedExits } from './bench-procs.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const JSON_OUT = process.argv.includes('--json');
const SLOW_CONNECTIONS = 300;
const IDLE_CONNECTIONS = 500;
/** The API's HTTP_REQUEST_TIMEOUT_MS here: slow clients are cut off after it (the default is 5 minutes). */
const REQUEST_TIMEOUT_MS = 6000;
const MAX_STREAM_BYTES = 512 * 1024 * 1024;
const ROW = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };
const say = (text) => {
  if (!JSON_OUT) process.stderr.write(`${text}\n`);
};

/** The peak RSS of a process so far (VmHWM), bytes; 0 once it is gone. */
function peakRss(pid) {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/**
 * One raw HTTP exchange on its own connection: writes `head` (and `body` pieces, each after
 * `pauseMs`), collects what comes back until the server closes or `timeoutMs` passes. Answers
 * { status, headers, body, ms (to the first byte of the answer), closed, error }. With
 * `readAfterWriting` nothing is read before the whole body is written, as simple clients do.
 */
function exchange(port, head, { body = [], pauseMs = 0, timeoutMs = 30_000, endAfterAnswer = true, readAfterWriting = false } = {}) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const socket = net.connect({ port, host: '127.0.0.1' });
    const parts = [];
    let firstByteMs = null;
    let done = false;
    const finish = (extra = {}) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(parts).toString('latin1');
      const [rawHead = '', ...rest] = text.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(rawHead)?.[1] ?? 0);
      const headers = Object.fromEntries(
        rawHead
          .split('\r\n')
          .slice(1)
          .map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
      );
      resolve({ status, headers, body: rest.join('\r\n\r\n'), ms: firstByteMs, ...extra });
    };
    const timer = setTimeout(() => finish({ closed: false, error: 'timeout' }), timeoutMs);
    socket.on('data', (data) => {
      firstByteMs ??= Number(process.hrtime.bigint() - started) / 1e6;
      parts.push(data);
      // A complete answer with a Content-Length: no need to wait for the close.
      const text = Buffer.concat(parts).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(text.slice(0, split))?.[1] ?? NaN);
      if (endAfterAnswer && split !== -1 && Buffer.byteLength(text.slice(split + 4), 'latin1') >= length) finish({ closed: false });
    });
    socket.on('close', () => finish({ closed: true }));
    socket.on('error', (error) => finish({ closed: true, error: error.code ?? error.message }));
    if (readAfterWriting) socket.pause();
    socket.on('connect', async () => {
      socket.write(head);
      for (const piece of body) {
        if (done) return;
        if (pauseMs > 0) await sleep(pauseMs);
        if (!socket.writable) return;
        if (!socket.write(piece)) await new Promise((r) => socket.once('drain', r).once('close', r));
      }
      socket.resume();
    });
  });
}

const request = (method, target, headers = {}, length = null) =>
  `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries({
    ...headers,
    ...(length === null ? {} : { 'content-length': length }),
  })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;

/** The answer as a problem (its code), or what it was instead. */
function problemCode(answer) {
  if (!/^application\/problem\+json/.test(answer.headers?.['content-type'] ?? '')) return null;
  try {
    return JSON.parse(answer.body).code ?? null;
  } catch {
    return null;
  }
}

function summary(answer) {
  return {
    status: answer.status,
    code: problemCode(answer),
    ms: answer.ms === null ? null : Math.round(answer.ms),
    connection: answer.headers?.connection ?? null,
  };
}

async function post(port, target, contentType, body, extraHeaders = {}) {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return exchange(port, request('POST', target, { 'content-type': contentType, ...extraHeaders }, bytes.length), { body: [bytes] });
}

/** Latency of a GET /livez and of a 1-row submit, each on a fresh connection. */
async function probe(port) {
  const livez = await exchange(port, request('GET', '/livez'));
  const submit = await post(port, '/v1/batch-predict', 'application/json', JSON.stringify({ model: 'iris', inputs: [ROW] }));
  return { livezMs: livez.ms, livezStatus: livez.status, submitMs: submit.ms, submitStatus: submit.status };
}

async function main() {
  const redisPort = await freePort();
  await startRedis(redisPort);
  const port = await freePort();
  const prefix = `hostile-${process.pid}`;
  const env = {
    ...process.env,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    REDIS_PREFIX: prefix,
    PORT: String(port),
    HOST: '127.0.0.1',
    API_PROCESSES: '1',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
    HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    MAX_STREAM_BYTES: String(MAX_STREAM_BYTES),
    METRICS_PORT: '0',
    WORKERS: '1',
  };
  const logDir = path.join(os.tmpdir(), `onnx-batch-hostile-${process.pid}`);
  mkdirSync(logDir, { recursive: true });
  const api = startNode('api', path.join(ROOT, 'api/dist/main.js'), env, path.join(logDir, 'api.log'));
  const worker = startNode('worker', path.join(ROOT, 'worker/dist/main.js'), env, path.join(logDir, 'worker.log'));
  const redis = new Redis(env.REDIS_URL, { maxRetriesPerRequest: 1 });
  const results = [];
  let accepted = 0;
  try {
    for (let i = 0; ; i++) {
      const ready = await exchange(port, request('GET', '/readyz'), { timeoutMs: 2000 }).catch(() => ({ status: 0 }));
      if (ready.status === 200) break;
      if (i > 100 || api.exited) throw new Error(`the API did not become ready (logs in ${logDir})`);
      await sleep(100);
    }
    // Warm up, so the baseline is the API's settled size.
    for (let i = 0; i < 200; i++) if ((await probe(port)).submitStatus === 202) accepted++;
    const baselineRss = rssBytes(api.child.pid);
    const record = (attack, detail) => {
      results.push({ attack, ...detail, apiAlive: !api.exited, rssMb: Math.round(rssBytes(api.child.pid) / 1048576) });
      say(`hostile: ${attack}: ${JSON.stringify(detail)}`);
    };

    // 1. Slow bodies: SLOW_CONNECTIONS uploads sending one byte a second, while others are served.
    const slowHead = request('POST', '/v1/batch-predict?model=iris', { 'content-type': 'application/x-ndjson' }, 100_000);
    const slowBody = Array.from({ length: 60 }, () => Buffer.from(' '));
    const slow = Array.from({ length: SLOW_CONNECTIONS }, () =>
      exchange(port, slowHead, { body: slowBody, pauseMs: 1000, timeoutMs: REQUEST_TIMEOUT_MS * 3 }),
    );
    await sleep(1500);
    const probes = [];
    for (let i = 0; i < 6; i++) {
      probes.push(await probe(port));
      await sleep(500);
    }
    accepted += probes.filter((p) => p.submitStatus === 202).length;
    const slowAnswers = await Promise.all(slow);
    record('slow-bodies', {
      connections: SLOW_CONNECTIONS,
      othersLivezMaxMs: Math.round(Math.max(...probes.map((p) => p.livezMs))),
      othersSubmitMaxMs: Math.round(Math.max(...probes.map((p) => p.submitMs))),
      othersAllAnswered: probes.every((p) => p.livezStatus === 200 && p.submitStatus === 202),
      slowEnded: Object.entries(
        slowAnswers.reduce(
          (by, a) => ({ ...by, [a.status || (a.closed ? 'closed' : 'open')]: (by[a.status || (a.closed ? 'closed' : 'open')] ?? 0) + 1 }),
          {},
        ),
      ).map(([how, count]) => `${count}× ${how}`),
      slowStillOpen: slowAnswers.filter((a) => a.error === 'timeout').length,
      peakRssMb: Math.round(peakRss(api.child.pid) / 1048576),
    });

    // 2. Idle keep-alive connections: each asks once and stays; the server closes them when idle.
    const idle = await Promise.all(
      Array.from({ length: IDLE_CONNECTIONS }, () =>
        exchange(port, request('GET', '/livez', { connection: 'keep-alive' }), { endAfterAnswer: false, timeoutMs: 15_000 }),
      ),
    ).catch((error) => [{ error: String(error) }]);
    const whileIdle = await probe(port);
    if (whileIdle.submitStatus === 202) accepted++;
    record('idle-keep-alive', {
      connections: IDLE_CONNECTIONS,
      answered: idle.filter((a) => a.status === 200).length,
      closedByServer: idle.filter((a) => a.closed).length,
      othersLivezMs: Math.round(whileIdle.livezMs),
    });

    // 3. Bodies built to hurt a parser.
    const deep = `{"model":"iris","inputs":[${'['.repeat(100_000)}${']'.repeat(100_000)}]}`;
    record('json-nested-100000', summary(await post(port, '/v1/batch-predict', 'application/json', deep)));
    record(
      'json-nested-100000-bare',
      summary(await post(port, '/batch-predict', 'application/json', `${'['.repeat(100_000)}${']'.repeat(100_000)}`)),
    );
    record(
      'ndjson-nested-100000',
      summary(await post(port, '/v1/batch-predict?model=iris', 'application/x-ndjson', `${'['.repeat(100_000)}${']'.repeat(100_000)}\n`)),
    );
    record(
      'number-1e400',
      summary(await post(port, '/v1/batch-predict', 'application/json', '{"model":"iris","inputs":[[1e400,3.5,1.4,0.2]]}')),
    );
    const minusZero = await post(
      port,
      '/v1/batch-predict',
      'application/json',
      '{"model":"iris","inputs":[[-0,3.5,1.4,0.2],[0,3.5,1.4,0.2]]}',
    );
    if (minusZero.status === 202) accepted++;
    record('number-minus-0', { ...summary(minusZero), jobId: minusZero.status === 202 ? JSON.parse(minusZero.body).jobId : null });
    record(
      'proto-key-in-body',
      summary(
        await post(
          port,
          '/v1/batch-predict',
          'application/json',
          `{"__proto__":{"admin":true},"model":"iris","inputs":[${JSON.stringify(ROW)}]}`,
        ),
      ),
    );
    record(
      'constructor-key-in-body',
      summary(
        await post(
          port,
          '/v1/batch-predict',
          'application/json',
          `{"constructor":{"prototype":{"admin":true}},"model":"iris","inputs":[${JSON.stringify(ROW)}]}`,
        ),
      ),
    );
    record(
      'proto-key-in-row',
      summary(
        await post(
          port,
          '/v1/batch-predict',
          'application/json',
          `{"model":"iris","inputs":[{"__proto__":{"x":1},${JSON.stringify(ROW).slice(1)}]}`,
        ),
      ),
    );
    record(
      'constructor-key-in-ndjson-row',
      summary(
        await post(
          port,
          '/v1/batch-predict?model=iris',
          'application/x-ndjson',
          `{"constructor":{"prototype":{"x":1}},${JSON.stringify(ROW).slice(1)}\n`,
        ),
      ),
    );
    const wide = Array.from({ length: 1_000_000 }, (_, i) => `c${i}`).join(',');
    record('csv-header-1000000-columns', summary(await post(port, '/v1/batch-predict?model=iris', 'text/csv', `${wide}\n`)));
    const line = Buffer.alloc(50 * 1024 * 1024, ' ');
    line.write('{"sepal_length":5.1,', 0);
    line.write('"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}\n', line.length - 58);
    record('ndjson-line-50mb', summary(await post(port, '/v1/batch-predict?model=iris', 'application/x-ndjson', line)));

    // 4. Ids no job has: long, and with the characters of Redis' glob patterns.
    const ids = ['a'.repeat(10 * 1024), '*', '%3F', '[', 'a*b?c[d]', '%2A'];
    const idAnswers = [];
    for (const id of ids) {
      idAnswers.push(summary(await exchange(port, request('GET', `/v1/batch-result/${id.replace('[', '%5B')}`))));
      idAnswers.push(summary(await exchange(port, request('DELETE', `/v1/batch-result/${id.replace('[', '%5B')}`))));
      idAnswers.push(summary(await exchange(port, request('POST', `/v1/batch-result/${id.replace('[', '%5B')}/cancel`, {}, 0))));
    }
    record('odd-job-ids', {
      answers: [...new Set(idAnswers.map((a) => `${a.status} ${a.code}`))],
      maxMs: Math.max(...idAnswers.map((a) => a.ms)),
    });

    // 5. Bodies that lie about themselves.
    record(
      'invalid-gzip-ndjson',
      summary(
        await post(port, '/v1/batch-predict?model=iris', 'application/x-ndjson', Buffer.from('not gzip at all'), {
          'content-encoding': 'gzip',
        }),
      ),
    );
    record(
      'invalid-gzip-json',
      summary(
        await post(port, '/v1/batch-predict', 'application/json', gzipSync('{"model":"iris"').subarray(0, 12), {
          'content-encoding': 'gzip',
        }),
      ),
    );
    const gigabyte = 1024 * 1024 * 1024;
    const slowPieces = Array.from({ length: 5 }, () => Buffer.from('['));
    record(
      'json-declared-1gb-slow',
      summary(
        await exchange(port, request('POST', '/v1/batch-predict', { 'content-type': 'application/json' }, gigabyte), {
          body: slowPieces,
          pauseMs: 1000,
          timeoutMs: 20_000,
        }),
      ),
    );
    record(
      'ndjson-declared-1gb-slow',
      summary(
        await exchange(port, request('POST', '/v1/batch-predict?model=iris', { 'content-type': 'application/x-ndjson' }, gigabyte), {
          body: slowPieces,
          pauseMs: 1000,
          timeoutMs: 20_000,
        }),
      ),
    );

    // A client that writes its whole (too large) body before reading, as simple HTTP clients do:
    // the early 413 must still reach it, not a connection reset.
    const megabyte = Buffer.alloc(1024 * 1024, 0x20);
    const overLimit = Array.from({ length: 80 }, () => megabyte);
    const overLimitHead = request('POST', '/v1/batch-predict', { 'content-type': 'application/json' }, overLimit.length * megabyte.length);
    const writers = [];
    for (let i = 0; i < 5; i++) {
      writers.push(
        await exchange(port, overLimitHead, {
          body: overLimit,
          readAfterWriting: true,
        }),
      );
    }
    record('json-over-limit-written-before-reading', {
      ...summary(writers[0]),
      tries: writers.length,
      answered413: writers.filter((a) => a.status === 413 && problemCode(a) === 'OB_ERR_PAYLOAD_TOO_LARGE').length,
      resets: writers.filter((a) => a.status === 0).map((a) => a.error ?? 'closed'),
    });

    // -0 is a number like any other: its row's result is the result of 0.
    const minusZeroId = JSON.parse(minusZero.body).jobId;
    let minusZeroResults = null;
    for (let i = 0; i < 100 && !minusZeroResults; i++) {
      const job = JSON.parse((await exchange(port, request('GET', `/v1/batch-result/${minusZeroId}?wait=2`))).body);
      if (job.status === 'completed') minusZeroResults = job.results;
    }
    record('number-minus-0-result', { sameAsZero: JSON.stringify(minusZeroResults?.[0]) === JSON.stringify(minusZeroResults?.[1]) });

    // Afterwards: the API still answers, and only the good submits made jobs.
    const after = await probe(port);
    if (after.submitStatus === 202) accepted++;
    let jobs = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:job:*`, 'COUNT', 1000);
      cursor = next;
      jobs += keys.filter((k) => !/:(in|out):\d+$/.test(k)).length;
    } while (cursor !== '0');
    const out = {
      apiAlive: !api.exited && after.livezStatus === 200,
      workerAlive: !worker.exited,
      unexpectedExits: unexpectedExits(),
      acceptedSubmits: accepted,
      jobRecords: jobs,
      baselineRssMb: Math.round(baselineRss / 1048576),
      peakRssMb: Math.round(peakRss(api.child.pid) / 1048576),
      finalRssMb: Math.round(rssBytes(api.child.pid) / 1048576),
      port,
      attacks: results,
    };
    if (JSON_OUT) process.stdout.write(`${JSON.stringify(out)}\n`);
    else printTable(out);
  } finally {
    redis.disconnect();
    await stopAll();
  }
}

function printTable(out) {
  const rows = out.attacks.map((r) => {
    const { attack, apiAlive: _alive, rssMb, ...detail } = r;
    return `| ${attack} | ${Object.entries(detail)
      .map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(', ') : v}`)
      .join('; ')} | ${rssMb} MB |`;
  });
  process.stdout.write(
    [
      '| attack | what the API did | API RSS after |',
      '|---|---|---|',
      ...rows,
      '',
      `API RSS: ${out.baselineRssMb} MB warm, peak ${out.peakRssMb} MB, ${out.finalRssMb} MB after; alive: ${out.apiAlive}; ` +
        `job records ${out.jobRecords} for ${out.acceptedSubmits} accepted submits`,
      '',
    ].join('\n'),
  );
}

process.once('exit', killAllNow);
main().catch(async (error) => {
  process.stderr.write(`hostile: ${error instanceof Error ? error.stack : String(error)}\n`);
  await stopAll();
  process.exit(1);
});
