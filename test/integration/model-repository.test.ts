import { cpSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { createLogger, ModelRepository, ModelRepositoryError, onnxFileReader, type GraphReader } from '@onnx-batch/shared';
import { onnxRuntimeReader, startWorkerService, type WorkerService } from '@onnx-batch/worker';
import { MODELS_DIR, testConfig, testEnv } from '../helpers/env';
import { loadGolden } from '../helpers/golden';
import { goldenDeviations, sliceGolden } from '../helpers/golden-parity';
import {
  addVersionCopy,
  buildVersionCopy,
  copyModels,
  editManifest,
  manifestPath,
  readManifest,
  type ModelsCopy,
} from '../helpers/model-files';
import { ELEM, onnxModel, tensorType } from '../helpers/onnx-graphs';
import { spawnService } from '../helpers/processes';
import { startStack, type Stack } from '../helpers/stack';
import { problemOfDomainError } from '@onnx-batch/api';

/** A well-formed `metrics.reference` of a classifier (docs/model-manifest.md). */
const CLASSIFICATION_REFERENCE = {
  rows: 150,
  source: 'test',
  accuracy: 0.98,
  macroF1: 0.98,
  weightedF1: 0.98,
  logLoss: 0.07,
  brier: 0.03,
  meanConfidence: 0.95,
  calibrationError: 0.03,
  calibration: [{ from: 0.9, to: 1, rows: 150, confidence: 0.95, accuracy: 0.98 }],
};

/** The ModelRepositoryError open() rejects with (fails the test if it resolves or throws something else). */
async function openError(dir: string, reader?: GraphReader): Promise<ModelRepositoryError> {
  const outcome = await ModelRepository.open(dir, reader).then(
    (repository) => {
      repository.close();
      return new Error(`ModelRepository.open(${dir}) succeeded`);
    },
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(ModelRepositoryError);
  return outcome as ModelRepositoryError;
}

function versionsOf(repository: ModelRepository, name: string): { versions: string[]; defaultVersion: string } | undefined {
  const entry = repository.list().find((m) => m.name === name);
  return entry && { versions: entry.versions.map((v) => v.manifest.version), defaultVersion: entry.defaultVersion };
}

/** The problem code the API answers when resolving fails (the repository throws domain errors; the API maps them). */
function resolveError(repository: ModelRepository, name: string, version?: string): string {
  try {
    repository.resolve(name, version);
  } catch (error) {
    return problemOfDomainError(error)?.code ?? `not a domain error: ${String(error)}`;
  }
  return 'resolved';
}

async function exitOf(proc: ReturnType<typeof spawnService>, timeoutMs = 20_000): Promise<number | null> {
  if (proc.child.exitCode !== null) return proc.child.exitCode;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void proc.stop('SIGKILL');
      reject(new Error(`process did not exit within ${timeoutMs} ms; output:\n${proc.output.join('\n')}`));
    }, timeoutMs);
    proc.child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** The API and the scheduler read each graph from the file; the worker opens it with ONNX Runtime: both find the same problems. */
const GRAPH_READERS: [string, GraphReader][] = [
  ['the ONNX file reader (api, scheduler)', onnxFileReader],
  ['ONNX Runtime (worker)', onnxRuntimeReader],
];

describe('ModelRepository.open on a broken repository (temp copies of models/iris)', () => {
  let copy: ModelsCopy;
  let irisV1: string;

  beforeEach(() => {
    copy = copyModels(['iris/1', 'iris/2']);
    irisV1 = manifestPath(copy.dir, 'iris', '1');
  });

  afterEach(() => copy.remove());

  it('when the untouched copy is opened, then iris 1 and 2 load with default 2 and no problem', async () => {
    const repository = await ModelRepository.open(copy.dir);

    expect(versionsOf(repository, 'iris')).toEqual({ versions: ['1', '2'], defaultVersion: '2' });
    expect(repository.problems).toEqual([]);
    repository.close();
  });

  it('when a manifest is not valid JSON, then open rejects naming the file', async () => {
    writeFileSync(irisV1, '{"name": "iris", "version": "1",');

    const error = await openError(copy.dir);

    expect(error.message).toContain(irisV1);
    expect(error.problems).toEqual([{ file: irisV1, message: expect.stringMatching(/^is not valid JSON: /) }]);
  });

  it('when a manifest lacks task, then open rejects with one problem naming the file and task', async () => {
    editManifest(copy.dir, 'iris', '1', (m) => delete m.task);

    const error = await openError(copy.dir);

    expect(error.problems.map((p) => ({ file: p.file, namesTask: `${p.field ?? ''}: ${p.message}`.includes('task') }))).toEqual([
      { file: irisV1, namesTask: true },
    ]);
    expect(error.message).toContain(irisV1);
    expect(error.message).toContain('(task): is required');
  });

  it(
    'when a feature lacks its type, then open rejects with one problem naming that feature and type (not shape or ' + 'maxLength)',
    async () => {
      editManifest(copy.dir, 'iris', '1', (m) => delete (m.features as Record<string, unknown>[])[0]!.type);

      const error = await openError(copy.dir);

      expect(error.problems.map((p) => `${p.field ?? ''}: ${p.message}`)).toEqual(['features.0.type: is required']);
      expect(error.problems[0]?.file).toBe(irisV1);
    },
  );

  it.each([
    ['chunkSize is a string', (m: Record<string, unknown>) => (m.chunkSize = '64'), 'chunkSize', 'must be integer'],
    [
      'a feature minimum is a string',
      (m: Record<string, unknown>) => ((m.features as Record<string, unknown>[])[2]!.minimum = '0'),
      'features.2.minimum',
      'must be number',
    ],
    ['default is "yes"', (m: Record<string, unknown>) => (m.default = 'yes'), 'default', 'must be boolean'],
    ['inputs is an object', (m: Record<string, unknown>) => (m.inputs = { name: 'input' }), 'inputs', 'must be array'],
    [
      'the batch axis is 1',
      (m: Record<string, unknown>) => ((m.inputs as Record<string, unknown>[])[0]!.shape = [1, 4]),
      'inputs.0.shape.0',
      'must be equal to constant',
    ],
    [
      'the evaluation file has a path',
      (m: Record<string, unknown>) => (m.evaluation = { ...(m.evaluation as object), file: '../evaluation.ndjson' }),
      'evaluation.file',
      'must match pattern "^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$"',
    ],
    [
      'the evaluation set has 0 rows',
      (m: Record<string, unknown>) => (m.evaluation = { ...(m.evaluation as object), rows: 0 }),
      'evaluation.rows',
      'must be >= 1',
    ],
    [
      'the evaluation set has no description',
      (m: Record<string, unknown>) => delete (m.evaluation as Record<string, unknown>).description,
      'evaluation.description',
      'is required',
    ],
    [
      'a classification reference has a score the format does not know',
      (m: Record<string, unknown>) => (m.metrics = { reference: { ...CLASSIFICATION_REFERENCE, auc: 0.99 } }),
      'metrics.reference.auc',
      'is not a manifest field',
    ],
    [
      'a calibration bin of the reference has no rows',
      (m: Record<string, unknown>) =>
        (m.metrics = {
          reference: { ...CLASSIFICATION_REFERENCE, calibration: [{ from: 0.9, to: 1, rows: 0, confidence: 0.95, accuracy: 1 }] },
        }),
      'metrics.reference.calibration.0.rows',
      'must be >= 1',
    ],
    [
      'a regression reference lacks bias',
      (m: Record<string, unknown>) => (m.metrics = { reference: { rows: 89, source: 'test', mae: 46.2, rmse: 58.5, r2: 0.33 } }),
      'metrics.reference.bias',
      'is required',
    ],
  ])('when %s, then open rejects naming the file and the field', async (_what, edit, field, message) => {
    editManifest(copy.dir, 'iris', '1', edit);

    const error = await openError(copy.dir);

    expect(error.problems).toEqual([{ file: irisV1, field, message }]);
    expect(error.message).toContain(`${irisV1} (${field}): ${message}`);
  });

  it('when a manifest holds a well-formed classification reference and evaluation set, then iris 1 loads with no problem', async () => {
    editManifest(copy.dir, 'iris', '1', (m) => (m.metrics = { ...(m.metrics as object), reference: CLASSIFICATION_REFERENCE }));

    const repository = await ModelRepository.open(copy.dir);

    expect(repository.resolve('iris', '1').manifest.metrics?.reference).toEqual(CLASSIFICATION_REFERENCE);
    expect(repository.resolve('iris', '1').manifest.evaluation).toEqual(expect.objectContaining({ file: 'evaluation.ndjson', rows: 150 }));
    expect(repository.problems).toEqual([]);
    repository.close();
  });

  it('when a manifest has a field the format does not know, then open rejects naming it', async () => {
    editManifest(copy.dir, 'iris', '1', (m) => (m.labels = ['a']));

    const error = await openError(copy.dir);

    expect(error.problems).toEqual([{ file: irisV1, field: 'labels', message: 'is not a manifest field' }]);
  });

  it('when the manifest name differs from its directory, then open rejects naming name', async () => {
    editManifest(copy.dir, 'iris', '1', (m) => (m.name = 'irises'));

    const error = await openError(copy.dir);

    expect(error.problems).toEqual([{ file: irisV1, field: 'name', message: "is 'irises' but the directory is 'iris'" }]);
  });

  it('when the manifest version differs from its directory, then open rejects naming version', async () => {
    editManifest(copy.dir, 'iris', '1', (m) => (m.version = '7'));

    const error = await openError(copy.dir);

    expect(error.problems).toEqual([{ file: irisV1, field: 'version', message: "is '7' but the directory is '1'" }]);
  });

  it('when the labels do not match the output width, then open rejects naming result.labels', async () => {
    editManifest(copy.dir, 'iris', '1', (m) => ((m.result as Record<string, unknown>).labels = ['setosa', 'other']));

    const error = await openError(copy.dir);

    expect(error.problems).toEqual([
      { file: irisV1, field: 'result.labels', message: "lists 2 labels but output 'probabilities' has 3 columns" },
    ]);
  });

  it('when model.onnx is missing, then open rejects naming that file', async () => {
    const onnx = path.join(copy.dir, 'iris', '1', 'model.onnx');
    rmSync(onnx);

    const error = await openError(copy.dir);

    expect(error.problems).toEqual([{ file: onnx, message: 'is missing' }]);
  });

  it('when two versions are pinned as default, then open rejects naming default', async () => {
    editManifest(copy.dir, 'iris', '1', (m) => (m.default = true));

    const error = await openError(copy.dir);

    expect(error.problems).toEqual([
      {
        file: path.join(copy.dir, 'iris', '*', 'model.json'),
        field: 'default',
        message: "more than one version of 'iris' is pinned as default",
      },
    ]);
  });

  it('when the directory holds no model or does not exist, then open rejects naming the directory', async () => {
    const empty = path.join(copy.staging, 'empty');
    mkdirSync(empty);
    const missing = path.join(copy.staging, 'missing');

    const none = await openError(empty);
    const gone = await openError(missing);

    expect(none.problems).toEqual([{ file: empty, message: 'holds no model (expected <name>/<version>/model.json)' }]);
    expect(gone.problems).toEqual([{ file: missing, message: expect.stringMatching(/^cannot read the model repository: ENOENT/) }]);
  });

  const brokenStarts: ['api' | 'worker', string, (m: Record<string, unknown>) => void][] = [
    ['api', 'inputs.0.dtype', (m) => ((m.inputs as Record<string, unknown>[])[0]!.dtype = 'int64')],
    ['api', 'chunkSize', (m) => (m.chunkSize = 'big')],
    ['worker', 'name', (m) => (m.name = 'irises')],
  ];
  it.each(brokenStarts)(
    'when the real %s process starts on a repository with a bad %s, then it exits non-zero and stderr names the file and field',
    async (kind, field, edit) => {
      editManifest(copy.dir, 'iris', '1', edit);

      const proc = spawnService(kind, testEnv({ MODELS_DIR: copy.dir }));
      const code = await exitOf(proc);

      const output = proc.output.join('\n');
      expect(code).toBe(1);
      expect(output).toContain(`${irisV1} (${field})`);
    },
  );

  describe.each(GRAPH_READERS)('graphs read by %s', (_label, reader) => {
    it('when the untouched copy is opened, then both versions load with no problem', async () => {
      const repository = await ModelRepository.open(copy.dir, reader);
      repository.close();

      expect(versionsOf(repository, 'iris')).toEqual({ versions: ['1', '2'], defaultVersion: '2' });
      expect(repository.problems).toEqual([]);
    });

    it("when the manifest's input name is not in the graph, then open rejects naming inputs.0.name", async () => {
      editManifest(copy.dir, 'iris', '1', (m) => ((m.inputs as Record<string, unknown>[])[0]!.name = 'measurements'));

      const error = await openError(copy.dir, reader);

      expect(error.problems).toEqual([
        { file: irisV1, field: 'inputs.0.name', message: "graph has no input 'measurements' (graph inputs: input)" },
        { file: irisV1, field: 'inputs', message: "graph input 'input' is not described" },
      ]);
      expect(error.message).toContain(`${irisV1} (inputs.0.name)`);
    });

    it("when the manifest's input dtype differs from the graph's, then open rejects naming inputs.0.dtype", async () => {
      editManifest(copy.dir, 'iris', '1', (m) => ((m.inputs as Record<string, unknown>[])[0]!.dtype = 'float64'));

      const error = await openError(copy.dir, reader);

      expect(error.problems).toEqual([{ file: irisV1, field: 'inputs.0.dtype', message: 'is float64 but the graph input is float32' }]);
    });

    it("when the manifest's output name is not in the graph, then open rejects naming outputs.0.name", async () => {
      editManifest(copy.dir, 'iris', '1', (m) => {
        (m.outputs as Record<string, unknown>[])[0]!.name = 'probs';
        (m.result as Record<string, unknown>).output = 'probs';
      });

      const error = await openError(copy.dir, reader);

      expect(error.problems).toEqual([
        { file: irisV1, field: 'outputs.0.name', message: "graph has no output 'probs' (graph outputs: probabilities)" },
      ]);
    });

    it("when the manifest's input rank differs from the graph's, then open rejects naming inputs.0.shape", async () => {
      editManifest(copy.dir, 'iris', '1', (m) => ((m.inputs as Record<string, unknown>[])[0]!.shape = [-1, 2, 2]));

      const error = await openError(copy.dir, reader);

      expect(error.problems).toEqual([{ file: irisV1, field: 'inputs.0.shape', message: 'has rank 3 but the graph input has rank 2' }]);
    });

    it('when model.onnx is not an ONNX graph, then open rejects naming that file', async () => {
      const onnx = path.join(copy.dir, 'iris', '1', 'model.onnx');
      writeFileSync(onnx, 'not a graph');

      const error = await openError(copy.dir, reader);

      expect(error.problems).toEqual([{ file: onnx, message: expect.stringMatching(new RegExp(`^${reader.name} cannot load it: `)) }]);
    });
  });
});

describe('ModelRepository.refresh: hot reload on a temp copy of models/iris', () => {
  let copy: ModelsCopy;
  let repository: ModelRepository;

  async function openCopy(unpin: boolean): Promise<void> {
    if (unpin) editManifest(copy.dir, 'iris', '2', (m) => delete m.default);
    repository = await ModelRepository.open(copy.dir);
  }

  beforeEach(() => {
    copy = copyModels(['iris/1', 'iris/2']);
  });

  afterEach(() => {
    repository?.close();
    copy.remove();
  });

  it('when a new version directory appears and no version is pinned, then after refresh it resolves and becomes the default', async () => {
    await openCopy(true);
    addVersionCopy(copy, 'iris', '1', '3');
    const before = { resolved: resolveError(repository, 'iris', '3'), ...versionsOf(repository, 'iris') };

    await repository.refresh();

    expect(before).toEqual({ resolved: 'OB_ERR_VERSION_NOT_FOUND', versions: ['1', '2'], defaultVersion: '2' });
    expect(repository.resolve('iris', '3').manifest.version).toBe('3');
    expect(repository.resolve('iris').manifest.version).toBe('3');
    expect(versionsOf(repository, 'iris')).toEqual({ versions: ['1', '2', '3'], defaultVersion: '3' });
    expect(repository.problems).toEqual([]);
  });

  it('when version 10 appears beside 1 and 2, then versions compare as integers and 10 is the default', async () => {
    await openCopy(true);
    addVersionCopy(copy, 'iris', '1', '10');

    await repository.refresh();

    expect(versionsOf(repository, 'iris')).toEqual({ versions: ['1', '2', '10'], defaultVersion: '10' });
  });

  it('when a new version appears while version 2 is pinned, then it is served but the default stays 2', async () => {
    await openCopy(false);
    addVersionCopy(copy, 'iris', '1', '3');

    await repository.refresh();

    expect(versionsOf(repository, 'iris')).toEqual({ versions: ['1', '2', '3'], defaultVersion: '2' });
  });

  it('when a version directory is removed, then refresh drops it and the default falls back', async () => {
    await openCopy(true);
    const v3 = addVersionCopy(copy, 'iris', '1', '3');
    await repository.refresh();
    rmSync(v3, { recursive: true });

    await repository.refresh();

    expect(versionsOf(repository, 'iris')).toEqual({ versions: ['1', '2'], defaultVersion: '2' });
    expect(resolveError(repository, 'iris', '3')).toBe('OB_ERR_VERSION_NOT_FOUND');
    expect(repository.problems).toEqual([]);
  });

  it(
    'when a version directory is half written (model.onnx, no model.json yet), then refresh names the missing file and ' +
      'serves the rest',
    async () => {
      await openCopy(true);
      mkdirSync(path.join(copy.dir, 'iris', '3'));
      cpSync(path.join(copy.dir, 'iris', '1', 'model.onnx'), path.join(copy.dir, 'iris', '3', 'model.onnx'));

      await repository.refresh();

      expect(versionsOf(repository, 'iris')).toEqual({ versions: ['1', '2'], defaultVersion: '2' });
      expect(repository.problems).toEqual([{ file: manifestPath(copy.dir, 'iris', '3'), message: 'is missing' }]);
    },
  );

  it('when a whole model directory is removed, then refresh drops the model and resolving it is 404', async () => {
    cpSync(path.join(MODELS_DIR, 'spam'), path.join(copy.dir, 'spam'), { recursive: true });
    await openCopy(false);
    rmSync(path.join(copy.dir, 'spam'), { recursive: true });

    await repository.refresh();

    expect(repository.list().map((m) => m.name)).toEqual(['iris']);
    expect(resolveError(repository, 'spam')).toBe('OB_ERR_MODEL_NOT_FOUND');
    expect(repository.problems).toEqual([]);
  });

  it('when a new model directory appears, then refresh serves it beside the others', async () => {
    await openCopy(false);
    const built = path.join(copy.staging, 'flower');
    cpSync(path.join(copy.dir, 'iris', '1'), path.join(built, '1'), { recursive: true });
    editManifest(copy.staging, 'flower', '1', (m) => (m.name = 'flower'));
    cpSync(built, path.join(copy.dir, 'flower'), { recursive: true });

    await repository.refresh();

    expect(repository.list().map((m) => m.name)).toEqual(['flower', 'iris']);
    expect(versionsOf(repository, 'flower')).toEqual({ versions: ['1'], defaultVersion: '1' });
  });

  it(
    'when a broken version appears, then refresh does not throw, keeps serving the others and lists the problem; once fixed, ' +
      'it is served',
    async () => {
      await openCopy(true);
      const v3 = addVersionCopy(copy, 'iris', '1', '3', (m) => ((m.inputs as Record<string, unknown>[])[0]!.dtype = 'float64'));
      const v3Manifest = path.join(v3, 'model.json');

      await expect(repository.refresh()).resolves.toBeUndefined();

      expect(versionsOf(repository, 'iris')).toEqual({ versions: ['1', '2'], defaultVersion: '2' });
      expect(repository.resolve('iris').manifest.version).toBe('2');
      expect(repository.problems).toEqual([
        { file: v3Manifest, field: 'inputs.0.dtype', message: 'is float64 but the graph input is float32' },
      ]);

      editManifest(copy.dir, 'iris', '3', (m) => ((m.inputs as Record<string, unknown>[])[0]!.dtype = 'float32'));
      await repository.refresh();

      expect(versionsOf(repository, 'iris')).toEqual({ versions: ['1', '2', '3'], defaultVersion: '3' });
      expect(repository.problems).toEqual([]);
    },
  );

  it('when a new version holds invalid JSON, then refresh lists it as a problem and serves the rest', async () => {
    await openCopy(true);
    const v3 = addVersionCopy(copy, 'iris', '1', '3');
    writeFileSync(path.join(v3, 'model.json'), '{ "name": ');

    await repository.refresh();

    expect(versionsOf(repository, 'iris')).toEqual({ versions: ['1', '2'], defaultVersion: '2' });
    expect(repository.problems).toEqual([{ file: path.join(v3, 'model.json'), message: expect.stringMatching(/^is not valid JSON: /) }]);
  });

  it('when a version that was served breaks on disk, then refresh lists the problem and the other version keeps serving', async () => {
    await openCopy(true);
    writeFileSync(manifestPath(copy.dir, 'iris', '1'), '{');

    await repository.refresh();

    expect(repository.resolve('iris', '2').manifest.version).toBe('2');
    expect(repository.problems).toEqual([
      { file: manifestPath(copy.dir, 'iris', '1'), message: expect.stringMatching(/^is not valid JSON: /) },
    ]);
  });

  it('when refresh is called several times at once, then every call resolves to the same rescan', async () => {
    await openCopy(true);
    addVersionCopy(copy, 'iris', '1', '3');

    const calls = [repository.refresh(), repository.refresh(), repository.refresh()];

    expect(calls[1]).toBe(calls[0]);
    await Promise.all(calls);
    expect(versionsOf(repository, 'iris')?.versions).toEqual(['1', '2', '3']);
  });
});

describe('hot reload through the service (api and worker in process, MODEL_RELOAD_INTERVAL_MS=200)', () => {
  let copy: ModelsCopy;
  let stack: Stack;

  beforeAll(async () => {
    copy = copyModels(['iris/1', 'iris/2']);
    stack = await startStack({ MODELS_DIR: copy.dir, MODEL_RELOAD_INTERVAL_MS: '200' });
  });

  afterAll(async () => {
    await stack?.close();
    copy.remove();
  });

  /** Milliseconds until GET /v1/models/iris lists exactly `versions` (or throws after `limitMs` more). */
  async function msUntilListed(versions: string[], limitMs = 3000): Promise<number> {
    const started = Date.now();
    for (;;) {
      const response = await request(stack.url).get('/v1/models/iris');
      const listed = (response.body.versions as { version: string }[]).map((v) => v.version);
      if (JSON.stringify(listed) === JSON.stringify(versions)) return Date.now() - started;
      if (Date.now() - started > limitMs)
        throw new Error(`iris lists ${listed.join(', ')} after ${limitMs} ms, not ${versions.join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  it(
    'when a version directory is dropped in, then within a second it is listed and a batch on it completes ' + 'without a restart',
    async () => {
      const golden = sliceGolden(loadGolden('iris', '1'), 45, 60);
      addVersionCopy(copy, 'iris', '1', '3');

      const elapsed = await msUntilListed(['1', '2', '3']);
      const submitted = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', version: '3', inputs: golden.inputs });
      const job = await request(stack.url).get(`/v1/batch-result/${String(submitted.body.jobId)}?wait=20`);

      expect(elapsed).toBeLessThan(1000);
      expect(submitted.status).toBe(202);
      expect(job.body).toMatchObject({
        status: 'completed',
        model: { name: 'iris', version: '3' },
        progress: { done: 15, total: 15, failed: 0 },
      });
      expect(goldenDeviations(readManifest('iris', '1'), golden, job.body.results as unknown[])).toEqual([]);
      const models = await request(stack.url).get('/v1/models');
      expect(models.body.problems).toEqual([]);
      expect(models.body.models).toEqual([expect.objectContaining({ name: 'iris', defaultVersion: '2' })]);
    },
  );

  it(
    'when a version is replaced on disk by another graph, then within a second the api describes it and the worker runs ' + 'the new graph',
    async () => {
      const golden = sliceGolden(loadGolden('iris', '2'), 60, 75);
      const replacement = buildVersionCopy(copy, 'iris', '2', '3');
      const target = path.join(copy.dir, 'iris', '3');
      rmSync(target, { recursive: true });
      renameSync(replacement, target);

      const started = Date.now();
      let description = '';
      while (description !== readManifest('iris', '2').description && Date.now() - started < 3000) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        description = String((await request(stack.url).get('/v1/models/iris/versions/3')).body.description);
      }
      const elapsed = Date.now() - started;
      // The worker rescans on its own timer; give it two intervals to catch up with the api.
      await new Promise((resolve) => setTimeout(resolve, 400));
      const submitted = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', version: '3', inputs: golden.inputs });
      const job = await request(stack.url).get(`/v1/batch-result/${String(submitted.body.jobId)}?wait=20`);

      expect(elapsed).toBeLessThan(1000);
      expect(job.body).toMatchObject({ status: 'completed', model: { name: 'iris', version: '3' } });
      expect(goldenDeviations(readManifest('iris', '2'), golden, job.body.results as unknown[])).toEqual([]);
    },
  );

  it('when the version directory is removed again, then within a second it is gone and a batch naming it is 404', async () => {
    rmSync(path.join(copy.dir, 'iris', '3'), { recursive: true, force: true });

    const elapsed = await msUntilListed(['1', '2']);
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', version: '3', inputs: [[5.1, 3.5, 1.4, 0.2]] });

    expect(elapsed).toBeLessThan(1000);
    expect(submitted.status).toBe(404);
    expect(submitted.body.code).toBe('OB_ERR_VERSION_NOT_FOUND');
  });

  it('when a broken version is dropped in, then GET /v1/models reports the problem and the others keep serving', async () => {
    addVersionCopy(copy, 'iris', '1', '4', (m) => (m.name = 'irises'));
    const file = manifestPath(copy.dir, 'iris', '4');

    let problems: unknown[] = [];
    for (let i = 0; i < 40 && problems.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      problems = (await request(stack.url).get('/v1/models')).body.problems as unknown[];
    }
    const predicted = await request(stack.url)
      .post('/v1/models/iris/predict')
      .send({ inputs: [[5.1, 3.5, 1.4, 0.2]] });

    expect(problems).toEqual([{ file, field: 'name', message: "is 'irises' but the directory is 'iris'" }]);
    expect(predicted.status).toBe(200);
    expect(predicted.body).toMatchObject({ status: 'completed', model: { name: 'iris', version: '2' } });
  });

  it(
    'when a version only ONNX Runtime can refuse (an operator it lacks) is dropped in, then the api (file reader) lists it, the ' +
      'worker refuses it, and a job on it fails naming the version',
    async () => {
      const built = buildVersionCopy(copy, 'iris', '1', '5');
      const graph = onnxModel({
        node: { opType: 'NoSuchOp', input: ['input'], output: ['probabilities'] },
        inputs: [{ name: 'input', type: tensorType(ELEM.FLOAT, ['N', 4]) }],
        outputs: [{ name: 'probabilities', type: tensorType(ELEM.FLOAT, ['N', 3]) }],
      });
      writeFileSync(path.join(built, 'model.onnx'), graph);
      renameSync(built, path.join(copy.dir, 'iris', '5'));
      await stack.api.repository.refresh();
      await stack.worker?.repository.refresh();

      const listed = await request(stack.url).get('/v1/models/iris');
      const submitted = await request(stack.url)
        .post('/v1/batch-predict')
        .send({ model: 'iris', version: '5', inputs: [[5.1, 3.5, 1.4, 0.2]] });
      const job = await request(stack.url).get(`/v1/batch-result/${String(submitted.body.jobId)}?wait=20`);

      expect((listed.body.versions as { version: string }[]).map((v) => v.version)).toContain('5');
      expect(stack.worker?.repository.problems).toContainEqual({
        file: path.join(copy.dir, 'iris', '5', 'model.onnx'),
        message: expect.stringMatching(/^ONNX Runtime cannot load it: .*NoSuchOp/),
      });
      expect(submitted.status).toBe(202);
      expect(job.body).toMatchObject({
        status: 'failed',
        progress: { done: 1, total: 1, failed: 1 },
        error: { code: 'OB_ERR_INFERENCE_FAILED' },
      });
      expect(job.body.error.detail).toContain("model 'iris' has no version '5'");
    },
  );
});

describe('hot reload when only the api rescans (worker MODEL_RELOAD_INTERVAL_MS=0)', () => {
  let copy: ModelsCopy;
  let stack: Stack;
  let worker: WorkerService;

  beforeAll(async () => {
    copy = copyModels(['iris/1', 'iris/2']);
    stack = await startStack({ MODELS_DIR: copy.dir, MODEL_RELOAD_INTERVAL_MS: '100' }, false);
    const config = testConfig({ MODELS_DIR: copy.dir, MODEL_RELOAD_INTERVAL_MS: '0', REDIS_PREFIX: stack.config.REDIS_PREFIX });
    worker = await startWorkerService(config, createLogger('error', 'test'));
  });

  afterAll(async () => {
    await worker?.close();
    await stack?.close();
    copy.remove();
  });

  it('when a job names a version the worker has not seen yet, then the worker rescans on the miss and runs it', async () => {
    const golden = sliceGolden(loadGolden('iris', '1'), 0, 5);
    addVersionCopy(copy, 'iris', '1', '3');
    let listed: string[] = [];
    for (let i = 0; i < 40 && !listed.includes('3'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      listed = ((await request(stack.url).get('/v1/models/iris')).body.versions as { version: string }[]).map((v) => v.version);
    }
    const workerBefore = worker.repository.list()[0]?.versions.map((v) => v.manifest.version);

    const submitted = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', version: '3', inputs: golden.inputs });
    const job = await request(stack.url).get(`/v1/batch-result/${String(submitted.body.jobId)}?wait=20`);

    expect(listed).toEqual(['1', '2', '3']);
    expect(workerBefore).toEqual(['1', '2']);
    expect(job.body).toMatchObject({
      status: 'completed',
      model: { name: 'iris', version: '3' },
      progress: { done: 5, total: 5, failed: 0 },
    });
    expect(goldenDeviations(readManifest('iris', '1'), golden, job.body.results as unknown[])).toEqual([]);
  });
});
