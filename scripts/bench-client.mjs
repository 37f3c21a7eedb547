// The load generator of `npm run bench`: node:http with a keep-alive agent (no per-request
// connection set-up), request bodies built once and reused, result streams counted by scanning
// for newlines without joining them. A job waits either with long polls (`?wait=30`) or as the
// integration guide's client does: poll without `?wait=` every few milliseconds. The same client
// runs against onnx-batch and against the null service (bench-null-service.mjs).
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { unexpectedExits } from './bench-procs.mjs';

export class BenchError extends Error {
  name = 'BenchError';
}

const FINISHED = new Set(['completed', 'failed', 'cancelled']);

export class Client {
  constructor(baseUrl, maxSockets = 64) {
    const url = new URL(baseUrl);
    this.host = url.hostname;
    this.port = Number(url.port);
    this.agent = new http.Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 1000, scheduling: 'lifo' });
  }

  close() {
    this.agent.destroy();
  }

  /**
   * One request; answers { status, body } (body a Buffer), or with `countLines` and a 200 answer
   * { status, lines, bytes } without keeping the body.
   */
  request(method, path, { headers = {}, body, countLines = false } = {}) {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: this.host, port: this.port, method, path, agent: this.agent, headers }, (res) => {
        const status = res.statusCode;
        res.on('error', reject);
        if (countLines && status === 200) {
          let lines = 0;
          let bytes = 0;
          let last = 10;
          res.on('data', (chunk) => {
            bytes += chunk.length;
            for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
            last = chunk[chunk.length - 1];
          });
          res.on('end', () => resolve({ status, lines: lines + (bytes > 0 && last !== 10 ? 1 : 0), bytes }));
          return;
        }
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  async json(method, path, options) {
    const answer = await this.request(method, path, options);
    return { status: answer.status, body: answer.body.length > 0 ? JSON.parse(answer.body.toString('utf8')) : null, text: answer.body };
  }
}

/** A prepared submit: its request (path, headers, body Buffer) and how many rows it carries. */
export function jsonSubmit(payload, rows) {
  const body = Buffer.from(JSON.stringify(payload));
  return { path: '/v1/batch-predict', headers: { 'content-type': 'application/json', 'content-length': String(body.length) }, body, rows };
}

export function ndjsonSubmit(model, version, lines, rows) {
  const body = Buffer.from(lines);
  const query = `model=${encodeURIComponent(model)}&version=${encodeURIComponent(version)}`;
  return {
    path: `/v1/batch-predict?${query}`,
    headers: { 'content-type': 'application/x-ndjson', 'content-length': String(body.length) },
    body,
    rows,
  };
}

/**
 * A columnar submit (Arrow IPC stream or Parquet file body) whose results are downloaded in
 * `resultsType` and counted by `countRows(body)` (the body's own row count, read by the format's library).
 */
export function binarySubmit(model, version, contentType, body, rows, results) {
  const query = `model=${encodeURIComponent(model)}&version=${encodeURIComponent(version)}`;
  return {
    path: `/v1/batch-predict?${query}`,
    headers: { 'content-type': contentType, 'content-length': String(body.length) },
    body,
    rows,
    results,
  };
}

/**
 * One job end to end: submit, wait until it finishes, fetch its results (inline, else streamed as
 * NDJSON) and check that there is exactly one result per row and no row failed.
 *
 * `pollMs` says how the client waits: `null` (default) long-polls with `?wait=30`; a number is the
 * integration guide's style of client — `GET /v1/batch-result/:id` without `?wait=`, and while the
 * job is unfinished, sleep `pollMs` and ask again. Answers { ms, jobId, inline, polls }; throws a
 * BenchError otherwise.
 */
export async function runJob(client, submit, { pollMs = null, deadlineMs = 120_000 } = {}) {
  const started = performance.now();
  const answer = await client.request('POST', submit.path, { headers: submit.headers, body: submit.body });
  if (answer.status !== 202) throw new BenchError(`submit answered ${answer.status}: ${answer.body.toString('utf8').slice(0, 400)}`);
  const jobId = JSON.parse(answer.body.toString('utf8')).jobId;
  const pollPath = pollMs === null ? `/v1/batch-result/${jobId}?wait=30` : `/v1/batch-result/${jobId}`;
  let job;
  let polls = 0;
  for (;;) {
    const poll = await client.request('GET', pollPath);
    polls++;
    if (poll.status !== 200)
      throw new BenchError(`job ${jobId}: poll answered ${poll.status}: ${poll.body.toString('utf8').slice(0, 400)}`);
    job = JSON.parse(poll.body.toString('utf8'));
    if (FINISHED.has(job.status)) break;
    if (performance.now() - started > deadlineMs)
      throw new BenchError(
        `job ${jobId} not finished after ${deadlineMs} ms (status ${job.status}, ${job.progress?.done}/${job.progress?.total} rows)`,
      );
    if (pollMs !== null) await sleep(pollMs);
  }
  const progress = job.progress ?? {};
  if (job.status !== 'completed' || progress.failed !== 0 || progress.total !== submit.rows) {
    throw new BenchError(
      `job ${jobId} ended ${job.status} with ${progress.done}/${progress.total} rows done, ${progress.failed} failed ` +
        `(submitted ${submit.rows})${job.error ? `: ${JSON.stringify(job.error)}` : ''}`,
    );
  }
  let count;
  const inline = !submit.results && Array.isArray(job.results);
  if (submit.results) {
    // Columnar results are always downloaded, inline or not: that download is half of what is measured.
    const results = await client.request('GET', `/v1/batch-result/${jobId}/results`, { headers: { accept: submit.results.type } });
    if (results.status !== 200)
      throw new BenchError(`job ${jobId}: results answered ${results.status}: ${results.body.toString('utf8').slice(0, 400)}`);
    count = submit.results.countRows(results.body);
  } else if (inline) {
    count = job.results.length;
  } else {
    const results = await client.request('GET', `/v1/batch-result/${jobId}/results`, {
      headers: { accept: 'application/x-ndjson' },
      countLines: true,
    });
    if (results.status !== 200)
      throw new BenchError(`job ${jobId}: results answered ${results.status}: ${results.body.toString('utf8').slice(0, 400)}`);
    count = results.lines;
  }
  if (count !== submit.rows) throw new BenchError(`job ${jobId}: ${count} results for ${submit.rows} rows submitted`);
  return { ms: performance.now() - started, jobId, inline, polls };
}

/**
 * Waits until `client`'s server answers `GET /readyz` with 200; throws when a started process
 * exits meanwhile or after `timeoutMs`, pointing at `logs` (the log files to read).
 */
export async function waitReady(client, what, { logs, timeoutMs = 20_000 }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const exits = unexpectedExits();
    if (exits.length > 0) throw new BenchError(`${exits.join(', ')} exited during start-up; see ${logs}`);
    try {
      if ((await client.request('GET', '/readyz')).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new BenchError(`${what} not ready after ${timeoutMs} ms; see ${logs}`);
    await sleep(100);
  }
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** p50, p95, p99, min and max of sorted latencies. */
export function latencySummary(sorted) {
  return {
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    min: sorted[0],
    max: sorted[sorted.length - 1],
  };
}

/**
 * Runs `jobs` jobs with at most `inFlight` at once (`submitFor(i)` gives job i's submit; `pollMs`
 * as for runJob) and answers throughput, latency and polls per job.
 */
export async function runJobs(client, { jobs, inFlight, submitFor, pollMs = null }) {
  const latencies = new Float64Array(jobs);
  let next = 0;
  let rows = 0;
  let streamed = 0;
  let polls = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < jobs) {
      const i = next++;
      const submit = submitFor(i);
      const job = await runJob(client, submit, { pollMs });
      latencies[i] = job.ms;
      rows += submit.rows;
      polls += job.polls;
      if (!job.inline) streamed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, jobs) }, lane));
  const seconds = (performance.now() - started) / 1000;
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  return {
    jobs,
    inFlight,
    pollMs,
    rows,
    seconds,
    rowsPerSecond: rows / seconds,
    jobsPerSecond: jobs / seconds,
    latencyMs: { ...latencySummary(sorted), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length },
    pollsPerJob: polls / jobs,
    resultsStreamed: streamed,
  };
}

/** `count` identical requests, `inFlight` at once, each expected to answer `expect`; answers requests/s. */
export async function runRequests(client, { count, inFlight, method = 'GET', path, headers = {}, body, expect = 200 }) {
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < count) {
      next++;
      const answer = await client.request(method, path, { headers, body });
      if (answer.status !== expect)
        throw new BenchError(`${method} ${path} answered ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
  const seconds = (performance.now() - started) / 1000;
  return { count, inFlight, seconds, requestsPerSecond: count / seconds };
}
