import { once } from 'node:events';
import type { Request, Response } from 'express';
import { stringify } from 'csv-stringify/sync';
import { resultCsvHeader, resultCsvRow, type JobRecord, type JobStore, type ModelManifest, type ModelRepository } from '@onnx-batch/shared';

export interface ResultStreamRequest {
  record: JobRecord;
  store: JobStore;
  repository: ModelRepository;
  format: string;
  page: { offset: number; limit: number } | null;
  basePath: string;
  req: Request;
  res: Response;
}

/**
 * Writes a finished job's results in input order: reading chunk by chunk (one chunk in memory
 * at a time) and waiting for the socket to drain, so a million-row job streams in bounded memory.
 */
export async function streamResults(r: ResultStreamRequest): Promise<void> {
  const { record, store, res } = r;
  if (r.page) {
    await sendPage(r, r.page);
    return;
  }
  const manifest = manifestOf(r);
  const csv = r.format === 'text/csv';
  res.status(200).type(csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
  res.setHeader('Content-Disposition', `attachment; filename="${record.id}.${csv ? 'csv' : 'ndjson'}"`);
  if (csv) await write(res, stringify([resultCsvHeader(manifest)]));
  let aborted = false;
  r.req.on('close', () => {
    aborted = !res.writableFinished;
  });
  let next = store.readResults(record.id, 0, Math.min(1, record.chunks));
  for (let chunk = 0; chunk < record.chunks && !aborted; chunk++) {
    const [text] = await next;
    if (chunk + 1 < record.chunks) next = store.readResults(record.id, chunk + 1, chunk + 2); // prefetch
    if (text === null || text === undefined) continue;
    const out = csv ? stringify(text.split('\n').map((line) => resultCsvRow(manifest, JSON.parse(line) as Record<string, unknown>))) : `${text}\n`;
    await write(res, out);
  }
  res.end();
}

async function write(res: Response, text: string): Promise<void> {
  if (!res.write(text)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
}

async function sendPage(r: ResultStreamRequest, page: { offset: number; limit: number }): Promise<void> {
  const { record, store, res } = r;
  const size = record.chunkSize;
  const end = Math.min(record.total, page.offset + page.limit);
  const results: string[] = [];
  if (page.offset < end) {
    const first = Math.floor(page.offset / size);
    const last = Math.floor((end - 1) / size);
    const texts = await store.readResults(record.id, first, last + 1);
    texts.forEach((text, i) => {
      const chunk = first + i;
      const lines = text ? text.split('\n') : [];
      const from = Math.max(0, page.offset - chunk * size);
      const to = Math.min(lines.length, end - chunk * size);
      for (let k = from; k < to; k++) results.push(lines[k] as string);
    });
  }
  const next = end < record.total ? `${r.basePath}/batch-result/${record.id}/results?offset=${end}&limit=${page.limit}` : null;
  const head = JSON.stringify({ jobId: record.id, offset: page.offset, limit: page.limit, total: record.total, next });
  res.status(200).type('application/json').send(`${head.slice(0, -1)},"results":[${results.join(',')}]}`);
}

function manifestOf(r: ResultStreamRequest): ModelManifest {
  return r.repository.resolve(r.record.model, r.record.version).manifest;
}
