import { mkdirSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import {
  ChunkEncoder,
  createLogger,
  ModelRepository,
  onnxFileReader,
  type GraphReader,
  type ModelVersion,
  type RepositoryChange,
} from '@onnx-batch/shared';
import { onnxRuntimeReader, startWorkerService, type InferencePool, type WorkerService } from '@onnx-batch/worker';
import { dropPrefix, newRedis, testConfig } from '../helpers/env';
import { addVersionCopy, buildVersionCopy, copyModels, editManifest, manifestPath, type ModelsCopy } from '../helpers/model-files';
import { startStack, type Stack } from '../helpers/stack';
import { outcomeLines } from '../helpers/results';

/**
 * A rescan that fails, wholly or for one version, keeps serving what was loaded; only a version
 * whose directory is gone is dropped, and then every inference thread releases its session.
 *
 * Tests run as root, for whom `chmod 000` does not make a directory unreadable: an unreadable
 * directory is simulated by a dangling symlink (readdir fails with ENOENT) or a file (ENOTDIR).
 */

const KEPT = ' (the copy loaded before is still served)';

function versionsOf(repository: ModelRepository, name: string): string[] | undefined {
  return repository
    .list()
    .find((m) => m.name === name)
    ?.versions.map((v) => v.manifest.version);
}

function fingerprints(change: RepositoryChange): { added: string[]; removed: string[] } {
  return { added: change.added.map((v) => v.fingerprint), removed: change.removed.map((v) => v.fingerprint) };
}

describe('ModelRepository.refresh when the disk misbehaves (temp copy of models/iris)', () => {
  let copy: ModelsCopy;
  let repository: ModelRepository;
  let changes: RepositoryChange[];
  let v1: ModelVersion;
  let v2: ModelVersion;

  beforeEach(async () => {
    copy = copyModels(['iris/1', 'iris/2']);
    repository = await ModelRepository.open(copy.dir);
    changes = [];
    repository.onChange((change) => changes.push(change));
    v1 = repository.resolve('iris', '1');
    v2 = repository.resolve('iris', '2');
  });

  afterEach(() => {
    repository.close();
    copy.remove();
  });

  it(
    "when a served version's model.onnx is removed while model.json stays, then refresh keeps serving the copy loaded before " +
      'and reports the file; once it is back, the problem clears',
    async () => {
      const onnx = path.join(copy.dir, 'iris', '1', 'model.onnx');
      const saved = path.join(copy.staging, 'model.onnx');
      renameSync(onnx, saved);

      await repository.refresh();

      expect(repository.resolve('iris', '1')).toBe(v1);
      expect(versionsOf(repository, 'iris')).toEqual(['1', '2']);
      expect(repository.problems).toEqual([{ file: onnx, message: `is missing${KEPT}` }]);
      expect(changes).toEqual([]);

      renameSync(saved, onnx); // the same file again: the same fingerprint, nothing to reload
      await repository.refresh();

      expect(repository.resolve('iris', '1')).toBe(v1);
      expect(repository.problems).toEqual([]);
      expect(changes).toEqual([]);
    },
  );

  // The API and the scheduler read graphs from the file, the worker with ONNX Runtime: both must refuse half a file.
  it.each([onnxFileReader, onnxRuntimeReader].map((reader): [string, GraphReader] => [reader.name, reader]))(
    "when a served version's model.onnx is truncated (half copied), then refresh keeps serving the copy loaded before and " +
      'reports that %s cannot load it',
    async (name, reader) => {
      repository.close();
      repository = await ModelRepository.open(copy.dir, reader);
      repository.onChange((change) => changes.push(change));
      v2 = repository.resolve('iris', '2');
      const onnx = path.join(copy.dir, 'iris', '2', 'model.onnx');
      truncateSync(onnx, 100);

      await repository.refresh();

      expect(repository.resolve('iris', '2')).toBe(v2);
      expect(repository.resolve('iris').manifest.version).toBe('2');
      expect(repository.problems).toEqual([
        {
          file: onnx,
          message: expect.stringMatching(new RegExp(`^${name} cannot load it: .* \\(the copy loaded before is still served\\)$`, 's')),
        },
      ]);
      expect(changes).toEqual([]);
    },
  );

  it("when a served version's manifest is briefly invalid, then refresh keeps serving it and reports the file", async () => {
    const file = manifestPath(copy.dir, 'iris', '1');
    editManifest(copy.dir, 'iris', '1', (m) => delete m.task);

    await repository.refresh();

    expect(repository.resolve('iris', '1')).toBe(v1);
    expect(repository.problems).toEqual([{ file, field: 'task', message: `is required${KEPT}` }]);
  });

  it(
    'when the model directory cannot be read (a dangling symlink in its place), then refresh keeps every version and reports ' +
      'the directory',
    async () => {
      const modelDir = path.join(copy.dir, 'iris');
      renameSync(modelDir, path.join(copy.staging, 'iris'));
      symlinkSync(path.join(copy.staging, 'nowhere'), modelDir);

      await repository.refresh();

      expect(versionsOf(repository, 'iris')).toEqual(['1', '2']);
      expect(repository.resolve('iris')).toBe(v2);
      expect(repository.problems).toEqual([
        { file: modelDir, message: expect.stringMatching(/^cannot be read: ENOENT.* \(the copy loaded before is still served\)$/) },
      ]);
      expect(changes).toEqual([]);
    },
  );

  it('when a served version directory is replaced by a file, then refresh keeps serving it and reports its files missing', async () => {
    const versionDir = path.join(copy.dir, 'iris', '1');
    rmSync(versionDir, { recursive: true });
    writeFileSync(versionDir, 'not a directory');

    await repository.refresh();

    expect(repository.resolve('iris', '1')).toBe(v1);
    expect(repository.problems).toEqual([{ file: path.join(versionDir, 'model.json'), message: `is missing${KEPT}` }]);
  });

  it(
    'when the repository directory itself cannot be read (moved away), then refresh keeps every model and reports ' + 'the directory',
    async () => {
      renameSync(copy.dir, path.join(copy.staging, 'moved'));

      await repository.refresh();

      expect(repository.list().map((m) => m.name)).toEqual(['iris']);
      expect(repository.resolve('iris', '1')).toBe(v1);
      expect(repository.problems).toEqual([
        { file: copy.dir, message: expect.stringMatching(/^cannot read the model repository: ENOENT/) },
      ]);
      expect(changes).toEqual([]);
    },
  );

  it('when a version directory is removed, then refresh drops it and tells listeners its fingerprint was removed', async () => {
    rmSync(path.join(copy.dir, 'iris', '1'), { recursive: true });

    await repository.refresh();

    expect(versionsOf(repository, 'iris')).toEqual(['2']);
    expect(repository.problems).toEqual([]);
    expect(changes.map(fingerprints)).toEqual([{ added: [], removed: [v1.fingerprint] }]);
  });

  it('when a model directory is a symlink to a directory, then its versions are served', async () => {
    const built = buildVersionCopy(copy, 'iris', '1', '1', (m) => (m.name = 'flower'));
    const flower = path.join(copy.staging, 'flower');
    mkdirSync(flower);
    renameSync(built, path.join(flower, '1'));
    symlinkSync(flower, path.join(copy.dir, 'flower'));

    await repository.refresh();

    expect(versionsOf(repository, 'flower')).toEqual(['1']);
    expect(repository.problems).toEqual([]);
  });

  it('when a listener unsubscribes, then it hears no more changes', async () => {
    const heard: RepositoryChange[] = [];
    const unsubscribe = repository.onChange((change) => heard.push(change));
    unsubscribe();
    addVersionCopy(copy, 'iris', '1', '3');

    await repository.refresh();

    expect(heard).toEqual([]);
    expect(changes).toHaveLength(1);
  });
});

describe('inference threads release the sessions of removed versions (worker service, INFERENCE_THREADS=2)', () => {
  let copy: ModelsCopy;
  let worker: WorkerService;
  let prefix: string;

  beforeAll(async () => {
    copy = copyModels(['iris/1', 'iris/2']);
    const config = testConfig({ MODELS_DIR: copy.dir, MODEL_RELOAD_INTERVAL_MS: '0', INFERENCE_THREADS: '2' });
    prefix = config.REDIS_PREFIX;
    worker = await startWorkerService(config, createLogger('error', 'test'));
  });

  afterAll(async () => {
    await worker?.close();
    const redis = newRedis();
    await dropPrefix(redis, prefix);
    await redis.quit();
    copy.remove();
  });

  function chunk(model: ModelVersion): Buffer {
    const encoder = new ChunkEncoder(model.manifest, 1);
    encoder.add([6.7, 3.0, 5.2, 2.3]);
    return encoder.finish();
  }

  /** Runs one chunk in each thread: two chunks sent at once go to the two idle threads. */
  async function runInBothThreads(pool: InferencePool, model: ModelVersion): Promise<void> {
    await Promise.all([pool.run(model, chunk(model)), pool.run(model, chunk(model))]);
  }

  it('when a version directory is removed, then after a rescan no thread holds a session of it', async () => {
    const v3 = addVersionCopy(copy, 'iris', '1', '3');
    await worker.repository.refresh();
    const model = worker.repository.resolve('iris', '3');
    await runInBothThreads(worker.pool, model);
    const before = await worker.pool.sessions();
    rmSync(v3, { recursive: true });

    await worker.repository.refresh();

    expect(before).toEqual([[model.fingerprint], [model.fingerprint]]);
    expect(await worker.pool.sessions()).toEqual([[], []]);
  });

  it("when a version's files change, then every thread releases the old session, not only the one that runs the new files", async () => {
    const target = path.join(copy.dir, 'iris', '4');
    renameSync(buildVersionCopy(copy, 'iris', '1', '4'), target);
    await worker.repository.refresh();
    const old = worker.repository.resolve('iris', '4');
    await runInBothThreads(worker.pool, old);
    rmSync(target, { recursive: true });
    renameSync(buildVersionCopy(copy, 'iris', '2', '4'), target);

    await worker.repository.refresh();
    const replaced = worker.repository.resolve('iris', '4');
    const outcome = await worker.pool.run(replaced, chunk(replaced));
    const sessions = await worker.pool.sessions();

    expect(replaced.fingerprint).not.toBe(old.fingerprint);
    expect(JSON.parse(outcomeLines(outcome))).toMatchObject({ label: 'virginica' });
    expect(sessions.flat()).not.toContain(old.fingerprint);
    expect(sessions.flat()).toEqual([replaced.fingerprint]);
  });
});

describe('the api while a served version is broken on disk (api in process, MODEL_RELOAD_INTERVAL_MS=0)', () => {
  let copy: ModelsCopy;
  let stack: Stack;

  beforeAll(async () => {
    copy = copyModels(['iris/1', 'iris/2']);
    stack = await startStack({ MODELS_DIR: copy.dir, MODEL_RELOAD_INTERVAL_MS: '0' }, false);
  });

  afterAll(async () => {
    await stack?.close();
    copy.remove();
  });

  it(
    "when a served version's model.onnx goes missing, then GET /v1/models still lists it, reports the problem, and a batch " +
      'naming it is accepted',
    async () => {
      const onnx = path.join(copy.dir, 'iris', '1', 'model.onnx');
      rmSync(onnx);

      await stack.api.repository.refresh();
      const models = await request(stack.url).get('/v1/models');
      const submitted = await request(stack.url)
        .post('/v1/batch-predict')
        .send({ model: 'iris', version: '1', inputs: [[5.1, 3.5, 1.4, 0.2]] });

      expect(models.body.problems).toEqual([{ file: onnx, message: `is missing${KEPT}` }]);
      expect(models.body.models).toEqual([expect.objectContaining({ name: 'iris', defaultVersion: '2' })]);
      expect((models.body.models[0].versions as { version: string }[]).map((v) => v.version)).toEqual(['1', '2']);
      expect(submitted.status).toBe(202);
    },
  );
});
