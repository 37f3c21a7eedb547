import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CONSUMER_OF, JobName, jobNamesFor, QueueName } from '@onnx-batch/shared';
import { dropPrefixAndQuit, ROOT, testEnv } from '../helpers/env';
import { postJson, waitForJob } from '../helpers/http';
import { spawnApi, spawnWorker } from '../helpers/processes';

/** The files of the modules a fresh Node process has loaded after requiring `file`. */
function modulesLoadedBy(file: string): string[] {
  const script = `require(${JSON.stringify(file)}); process.stdout.write(JSON.stringify(Object.keys(require.cache)));`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' })) as string[];
}

describe('process kinds', () => {
  it('when the contracts are read, then scheduler processes consume the schedules queue and API processes consume none', () => {
    expect(CONSUMER_OF[QueueName.Schedules]).toBe('scheduler');
    expect(jobNamesFor('scheduler')).toEqual([JobName.RunSchedule]);
    expect(jobNamesFor('api')).toEqual([]);
  });

  it('when every kind that consumes a queue is looked up, then it has a built entry point', () => {
    const kinds = [...new Set(Object.values(CONSUMER_OF))];

    expect(kinds.sort()).toEqual(['scheduler', 'worker']);
    for (const kind of kinds) expect(existsSync(path.join(ROOT, kind, 'dist', 'main.js'))).toBe(true);
  });

  it("when the scheduler's package is loaded, then neither Express nor any module of the api package is", () => {
    const loaded = modulesLoadedBy(path.join(ROOT, 'scheduler', 'dist', 'index.js'));
    const express = `${path.sep}node_modules${path.sep}express${path.sep}`;
    const api = path.join(ROOT, 'api') + path.sep;

    expect(loaded.some((m) => m.startsWith(path.join(ROOT, 'scheduler', 'dist')))).toBe(true);
    expect(loaded.filter((m) => m.includes(express) || m.startsWith(api))).toEqual([]);
  });

  it.each(['api', 'scheduler'])(
    "when the %s's package is loaded, then no module of ONNX Runtime is (it reads graphs from the files)",
    (kind) => {
      const loaded = modulesLoadedBy(path.join(ROOT, kind, 'dist', 'index.js'));
      const onnxruntime = `${path.sep}node_modules${path.sep}onnxruntime-`;

      expect(loaded.some((m) => m.startsWith(path.join(ROOT, kind, 'dist')))).toBe(true);
      expect(loaded.filter((m) => m.includes(onnxruntime))).toEqual([]);
    },
  );
});

/** Whether a process has ONNX Runtime's native library mapped (Linux: /proc/<pid>/maps). */
function mapsOnnxRuntime(pid: number): boolean {
  return readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libonnxruntime');
}

describe('process kinds: what a running API process has loaded', () => {
  it('when an API process has started and a batch has run, then it has no ONNX Runtime library mapped (a worker has)', async () => {
    const env = testEnv();
    const { proc: api, url } = await spawnApi(env);
    try {
      const worker = await spawnWorker(env);
      try {
        const submitted = await postJson(`${url}/v1/batch-predict`, { model: 'iris', inputs: [[5.1, 3.5, 1.4, 0.2]] });
        const job = await waitForJob(url, String(submitted.body.jobId));

        expect(job.status).toBe('completed');
        expect(mapsOnnxRuntime(worker.pid)).toBe(true);
        expect(mapsOnnxRuntime(api.pid)).toBe(false);
      } finally {
        await worker.stop();
      }
    } finally {
      await api.stop();
      await dropPrefixAndQuit(env.REDIS_PREFIX);
    }
  });
});
