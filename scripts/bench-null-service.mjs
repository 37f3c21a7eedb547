// The null service of `npm run bench`: the contract the bench client speaks, answered instantly
// from memory — the ceiling any service can show through the same client on the same machine.
// One process, node:http, loopback, PORT from the environment. It parses each submit as a
// real service must (a JSON body's `inputs`, or NDJSON lines) to know the row count, and every
// job is finished the moment it is accepted. Answers are shaped like onnx-batch's:
//   POST /v1/batch-predict            → 202 {jobId, status, resultUrl} (+ Location)
//   GET  /v1/batch-result/:id         → 200 the finished status document, results inline up to
//                                       INLINE_RESULTS_LIMIT (10 000) rows, else "results": null
//   GET  /v1/batch-result/:id/results → 200 NDJSON, one result line per row
//   GET  /readyz, /livez              → 200
import { randomUUID } from 'node:crypto';
import http from 'node:http';

const PORT = Number(process.env.PORT || 0);
const INLINE_RESULTS_LIMIT = 10_000;
/** Jobs kept in memory (oldest forgotten first): far more than a workload keeps in flight. */
const MAX_JOBS = 100_000;
/** One iris result as onnx-batch renders it. */
const RESULT = '{"label":"setosa","confidence":1,"probabilities":{"setosa":1,"versicolor":0,"virginica":0}}';

const jobs = new Map();

function rowsOf(body, contentType) {
  if (contentType.startsWith('application/x-ndjson')) {
    let lines = 0;
    for (let i = body.indexOf(10); i !== -1; i = body.indexOf(10, i + 1)) lines++;
    return lines + (body.length > 0 && body[body.length - 1] !== 10 ? 1 : 0);
  }
  const parsed = JSON.parse(body.toString('utf8'));
  const inputs = Array.isArray(parsed) ? parsed : parsed.inputs;
  if (!Array.isArray(inputs)) throw new Error('no inputs');
  return inputs.length;
}

function statusDocument(job) {
  const url = `/v1/batch-result/${job.id}`;
  const head =
    `{"jobId":"${job.id}","status":"completed","model":{"name":"iris","version":"2"},` +
    `"progress":{"done":${job.rows},"total":${job.rows},"failed":0},"createdAt":"${job.at}","startedAt":"${job.at}",` +
    `"finishedAt":"${job.at}","resultsUrl":"${url}/results","error":null,"results":`;
  if (job.rows > INLINE_RESULTS_LIMIT) return `${head}null}`;
  return `${head}[${Array(job.rows).fill(RESULT).join(',')}]}`;
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (req.method === 'POST' && url.startsWith('/v1/batch-predict')) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let rows;
      try {
        rows = rowsOf(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), req.headers['content-type'] ?? '');
      } catch (error) {
        send(res, 400, JSON.stringify({ status: 400, detail: String(error) }));
        return;
      }
      const id = randomUUID();
      jobs.set(id, { id, rows, at: new Date().toISOString() });
      if (jobs.size > MAX_JOBS) jobs.delete(jobs.keys().next().value);
      const resultUrl = `/v1/batch-result/${id}`;
      send(res, 202, `{"jobId":"${id}","status":"queued","resultUrl":"${resultUrl}"}`, { location: resultUrl });
    });
    return;
  }
  if (req.method === 'GET' && url.startsWith('/v1/batch-result/')) {
    const [pathname] = url.split('?');
    const [, , , id, tail] = pathname.split('/');
    const job = jobs.get(id);
    if (!job) {
      send(res, 404, '{"status":404,"detail":"no such job"}');
      return;
    }
    if (tail === 'results') {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      const line = `${RESULT}\n`;
      // Written in pieces of at most 4096 lines, as a stream would be.
      for (let done = 0; done < job.rows; done += 4096) res.write(line.repeat(Math.min(4096, job.rows - done)));
      res.end();
      return;
    }
    send(res, 200, statusDocument(job));
    return;
  }
  if (req.method === 'GET' && (url === '/readyz' || url === '/livez')) {
    send(res, 200, '{"status":"ok"}');
    return;
  }
  send(res, 404, '{"status":404}');
});

server.keepAliveTimeout = 65_000;
server.listen(PORT, '127.0.0.1', () => process.stdout.write(`null service listening on 127.0.0.1:${server.address().port}\n`));
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
