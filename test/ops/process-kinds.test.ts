import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { CONSUMER_OF, JobName, jobNamesFor, QueueName } from '@onnx-batch/shared';
import { ROOT } from '../helpers/env';

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
});
