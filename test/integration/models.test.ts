import { statSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { MODELS_DIR } from '../helpers/env';
import { loadGolden } from '../helpers/golden';
import { goldenDeviations, sliceGolden } from '../helpers/golden-parity';
import { readManifest, toBase64Bytes } from '../helpers/model-files';
import { startStack, type Stack } from '../helpers/stack';

const PROBLEM_JSON = /^application\/problem\+json/;
const JOB_ID = /^[0-9a-f-]{36}$/;
const IRIS_LABELS = ['setosa', 'versicolor', 'virginica'];
const FASHION_LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const SYNC_MAX_ROWS = 20;

interface Described {
  name: string;
  version: string;
  task: string;
  labels: string[];
  accuracy: number;
  inputSchema: { oneOf: Record<string, unknown>[] };
}

interface Classified {
  label: string;
  confidence: number;
  probabilities: Record<string, number>;
  error?: unknown;
}

/** A 28×28 image of one grey value. */
function image(fill: number, rows = 28, columns = 28): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: columns }, () => fill));
}

describe('models over HTTP: listing, version selection and the synchronous facade (api and worker in process)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ SYNC_MAX_ROWS: String(SYNC_MAX_ROWS) });
  });

  afterAll(async () => {
    await stack.close();
  });

  async function predict(path: string, inputs: unknown[]): Promise<request.Response> {
    return request(stack.url).post(path).send({ inputs });
  }

  describe('listing', () => {
    it(
      'when models are listed, then iris (1, 2 and 3, default 2), spam and fashion come with task, labels, accuracy and an input ' +
        'schema, diabetes as a regression model, and no problem',
      async () => {
        const response = await request(stack.url).get('/v1/models');

        expect(response.status).toBe(200);
        expect(response.headers['content-type']).toMatch(/^application\/json/);
        expect(response.body.problems).toEqual([]);
        const models = response.body.models as { name: string; defaultVersion: string; versions: Described[] }[];
        expect(models.map((m) => m.name)).toEqual(expect.arrayContaining(['fashion', 'iris', 'spam']));
        const byName = new Map(models.map((m) => [m.name, m]));
        expect(byName.get('iris')?.defaultVersion).toBe('2');
        expect(byName.get('iris')?.versions.map((v) => v.version)).toEqual(['1', '2', '3']);
        expect(byName.get('spam')?.versions.map((v) => v.version)).toEqual(['1']);
        expect(byName.get('fashion')?.versions.map((v) => v.version)).toEqual(['1']);
        const expected: [string, string[], number][] = [
          ['iris', IRIS_LABELS, 0.95],
          ['spam', ['ham', 'spam'], 0.97],
          ['fashion', FASHION_LABELS, 0.88],
        ];
        expect(byName.get('diabetes')?.versions).toEqual([
          expect.objectContaining({ name: 'diabetes', version: '1', task: 'regression', labels: null, accuracy: null }),
        ]);
        for (const [name, labels, accuracy] of expected) {
          for (const version of byName.get(name)?.versions ?? []) {
            expect(version).toMatchObject({ name, task: 'classification', labels });
            expect(version.accuracy).toBeGreaterThanOrEqual(accuracy);
            expect(version.accuracy).toBeLessThanOrEqual(1);
            expect(version.inputSchema.oneOf).toHaveLength(2);
            expect(version.inputSchema.oneOf[0]).toMatchObject({
              type: 'object',
              required: readManifest(name, version.version).features.map((f) => f.name),
            });
            expect(version.inputSchema.oneOf[1]).toMatchObject({ type: 'array' });
          }
        }
      },
    );

    it('when one model is asked for, then it answers its default version and every version, ascending', async () => {
      const response = await request(stack.url).get('/v1/models/iris');

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ name: 'iris', defaultVersion: '2' });
      expect((response.body.versions as Described[]).map((v) => v.version)).toEqual(['1', '2', '3']);
    });

    it('when one version is asked for, then it answers that version described from its manifest', async () => {
      const manifest = readManifest('iris', '1');

      const response = await request(stack.url).get('/v1/models/iris/versions/1');

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({
        name: 'iris',
        version: '1',
        task: 'classification',
        description: manifest.description,
        labels: IRIS_LABELS,
        accuracy: manifest.metrics?.accuracy,
        evaluation: manifest.metrics?.evaluation,
        features: manifest.features,
        chunkSize: null,
        reference: manifest.metrics?.reference,
        driftBaseline: true,
        createdAt: statSync(path.join(MODELS_DIR, 'iris', '1', 'model.onnx')).mtime.toISOString(),
      });
      expect(response.body.reference).toMatchObject({ accuracy: expect.any(Number), macroF1: expect.any(Number) });
      expect(response.body.inputSchema.oneOf[0].properties.petal_length).toEqual({
        type: 'number',
        minimum: 0,
        maximum: 10,
        description: 'petal length in cm',
      });
    });

    it.each([
      ['/v1/models/nope', 'OB_ERR_MODEL_NOT_FOUND', "'nope'"],
      ['/v1/models/Iris', 'OB_ERR_MODEL_NOT_FOUND', "'Iris'"],
      ['/v1/models/nope/versions/1', 'OB_ERR_MODEL_NOT_FOUND', "'nope'"],
      ['/v1/models/iris/versions/9', 'OB_ERR_VERSION_NOT_FOUND', 'versions: 1, 2'],
      ['/v1/models/iris/versions/latest', 'OB_ERR_VERSION_NOT_FOUND', "'latest'"],
    ])('when %s is asked for, then 404 problem+json %s', async (path, code, detail) => {
      const response = await request(stack.url).get(path);

      expect(response.status).toBe(404);
      expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(response.body).toMatchObject({ status: 404, code, instance: path });
      expect(response.body.detail).toContain(detail);
    });

    it('when a predict names an unknown model or version, then 404 problem+json and nothing runs', async () => {
      const model = await predict('/v1/models/nope/predict', [[5.1, 3.5, 1.4, 0.2]]);
      const version = await predict('/v1/models/iris/versions/7/predict', [[5.1, 3.5, 1.4, 0.2]]);

      expect(model.status).toBe(404);
      expect(model.body.code).toBe('OB_ERR_MODEL_NOT_FOUND');
      expect(version.status).toBe(404);
      expect(version.body.code).toBe('OB_ERR_VERSION_NOT_FOUND');
    });
  });

  describe('version selection and the synchronous predict', () => {
    const rows = 10;

    it('when a batch names no version, then the default version (2) runs it and its results are version 2’s', async () => {
      const golden = sliceGolden(loadGolden('iris', '2'), 0, rows);

      const submitted = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', inputs: golden.inputs });
      const job = await request(stack.url).get(`/v1/batch-result/${String(submitted.body.jobId)}?wait=20`);

      expect(submitted.status).toBe(202);
      expect(job.body).toMatchObject({
        status: 'completed',
        model: { name: 'iris', version: '2' },
        progress: { done: rows, total: rows, failed: 0 },
      });
      expect(goldenDeviations(readManifest('iris', '2'), golden, job.body.results as unknown[])).toEqual([]);
    });

    it('when a batch names the version as the integer 1, then version 1 runs it', async () => {
      const golden = sliceGolden(loadGolden('iris', '1'), 100, 100 + rows);

      const submitted = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', version: 1, inputs: golden.inputs });
      const job = await request(stack.url).get(`/v1/batch-result/${String(submitted.body.jobId)}?wait=20`);

      expect(submitted.status).toBe(202);
      expect(job.body).toMatchObject({ status: 'completed', model: { name: 'iris', version: '1' } });
      expect(goldenDeviations(readManifest('iris', '1'), golden, job.body.results as unknown[])).toEqual([]);
    });

    it('when /v1/models/iris/predict is called, then it answers 200 completed with the default version’s results inline', async () => {
      const golden = sliceGolden(loadGolden('iris', '2'), 40, 40 + rows);

      const response = await predict('/v1/models/iris/predict', golden.inputs);

      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.body).toMatchObject({
        jobId: expect.stringMatching(JOB_ID),
        status: 'completed',
        model: { name: 'iris', version: '2' },
        progress: { done: rows, total: rows, failed: 0 },
        error: null,
      });
      expect(goldenDeviations(readManifest('iris', '2'), golden, response.body.results as unknown[])).toEqual([]);
    });

    it('when /v1/models/iris/versions/1/predict is called, then version 1 runs and its results are version 1’s', async () => {
      const golden = sliceGolden(loadGolden('iris', '1'), 90, 90 + rows);

      const response = await predict('/v1/models/iris/versions/1/predict', golden.inputs);

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ status: 'completed', model: { name: 'iris', version: '1' } });
      expect(goldenDeviations(readManifest('iris', '1'), golden, response.body.results as unknown[])).toEqual([]);
    });

    it(
      'when a synchronous predict has exactly SYNC_MAX_ROWS rows, then it runs; one more, then 413 problem+json and ' + 'nothing is queued',
      async () => {
        const inputs = loadGolden('iris', '2').inputs.slice(0, SYNC_MAX_ROWS + 1);

        const atLimit = await predict('/v1/models/iris/predict', inputs.slice(0, SYNC_MAX_ROWS));
        const over = await predict('/v1/models/iris/predict', inputs);

        expect(atLimit.status).toBe(200);
        expect(atLimit.body.results).toHaveLength(SYNC_MAX_ROWS);
        expect(over.status).toBe(413);
        expect(over.headers['content-type']).toMatch(PROBLEM_JSON);
        expect(over.body).toMatchObject({ status: 413, code: 'OB_ERR_TOO_MANY_ROWS' });
        expect(over.body.detail).toContain(`at most ${SYNC_MAX_ROWS} rows`);
        expect(over.body.jobId).toBeUndefined();
      },
    );

    it('when a synchronous predict has a bad row, then 400 names the row and field exactly as the batch route does', async () => {
      const response = await predict('/v1/models/iris/predict', [
        [5.1, 3.5, 1.4, 0.2],
        { sepal_length: 5.1, sepal_width: 3.5, petal_length: -1, petal_width: 0.2 },
      ]);

      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({
        code: 'OB_ERR_INVALID_ROWS',
        errors: [{ row: 1, field: 'petal_length', message: 'must be >= 0' }],
      });
    });
  });

  describe('the text model (spam) on unusual text', () => {
    const sentence = 'Dear friend, you have won a free prize. Click here to claim your money now! ';
    const hundredKb = sentence.repeat(Math.ceil(100_000 / sentence.length)).slice(0, 100_000);
    const odd: [string, string][] = [
      ['an empty string', ''],
      ['emoji only', '😀🎉🔥💰 👍🏽 🇬🇧 👨‍👩‍👧'],
      ['100 000 characters (exactly maxLength)', hundredKb],
      ['Chinese', '您好，我们的产品今天特价，请点击链接免费领取奖品。'],
      ['Arabic', 'مرحبا، لقد ربحت جائزة مجانية. اضغط هنا للمطالبة بها الآن'],
      ['Cyrillic', 'Здравствуйте! Вы выиграли бесплатный приз, нажмите здесь.'],
      ['a NUL character', 'free money\u0000 click here now'],
      ['only NUL characters', '\u0000\u0000\u0000'],
      ['control characters and lone surrogates', '\t\r\n\u0007\uFEFF\uD800 text \uDC00'],
      ['100 000 emoji (maxLength counts characters, not UTF-16 units)', '💰'.repeat(100_000)],
    ];

    it(
      'when texts are empty, emoji, 100 kB, Chinese, Arabic, Cyrillic or hold NULs, then each row completes as ham or spam with ' +
        'probabilities summing to 1',
      async () => {
        const response = await predict(
          '/v1/models/spam/predict',
          odd.map(([, text]) => ({ text })),
        );

        expect(response.status).toBe(200);
        expect(response.body).toMatchObject({ status: 'completed', progress: { done: odd.length, total: odd.length, failed: 0 } });
        const results = response.body.results as Classified[];
        expect(results).toHaveLength(odd.length);
        results.forEach((result, row) => {
          const what = odd[row]?.[0];
          expect({ what, error: result.error, label: ['ham', 'spam'].includes(result.label) }).toEqual({
            what,
            error: undefined,
            label: true,
          });
          expect(Object.keys(result.probabilities)).toEqual(['ham', 'spam']);
          expect((result.probabilities.ham ?? 0) + (result.probabilities.spam ?? 0)).toBeCloseTo(1, 5);
          expect(result.confidence).toBe(result.probabilities[result.label]);
        });
      },
    );

    it('when a text holds a NUL, then it is classified like the same text with a space there', async () => {
      const response = await predict('/v1/models/spam/predict', [
        { text: 'free money\u0000click here now' },
        { text: 'free money click here now' },
      ]);

      const [withNul, withSpace] = response.body.results as Classified[];
      expect(withNul).toEqual(withSpace);
    });

    it('when a text has 100 001 characters (over maxLength 100000), then 400 names its row and the field text', async () => {
      const response = await predict('/v1/models/spam/predict', [{ text: 'hello' }, { text: 'x'.repeat(100_001) }]);

      expect(response.status).toBe(400);
      expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(response.body).toMatchObject({
        code: 'OB_ERR_INVALID_ROWS',
        errors: [{ row: 1, field: 'text', message: 'must NOT have more than 100000 characters' }],
      });
    });

    it.each([
      ['a number', 42],
      ['null', null],
      ['an array of strings', ['free', 'money']],
    ])('when text is %s instead of a string, then 400 names the row and the field text', async (_what, text) => {
      const response = await predict('/v1/models/spam/predict', [{ text }]);

      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ code: 'OB_ERR_INVALID_ROWS', errors: [{ row: 0, field: 'text', message: 'must be string' }] });
    });
  });

  describe('the image model (fashion)', () => {
    const golden = loadGolden('fashion', '1');
    const first = golden.inputs[0]?.image as number[][];

    it('when a 28×28 array is sent, then it is classified as golden.json says', async () => {
      const response = await predict('/v1/models/fashion/predict', [{ image: first }]);

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ status: 'completed', model: { name: 'fashion', version: '1' } });
      expect(goldenDeviations(readManifest('fashion', '1'), sliceGolden(golden, 0, 1), response.body.results as unknown[])).toEqual([]);
    });

    it(
      'when one image is sent as a nested array, as an array row and as base64 of its 784 bytes, then the three results ' + 'are identical',
      async () => {
        const response = await predict('/v1/models/fashion/predict', [
          { image: first },
          [first],
          { image: toBase64Bytes(first) },
          [toBase64Bytes(first)],
        ]);

        expect(response.status).toBe(200);
        const [asArray, asArrayRow, asBase64, asBase64Row] = response.body.results as Classified[];
        expect(asArray?.label).toBe(golden.labels?.[0]);
        expect(asArrayRow).toEqual(asArray);
        expect(asBase64).toEqual(asArray);
        expect(asBase64Row).toEqual(asArray);
      },
    );

    it.each([
      ['27 rows', { image: image(0, 27) }, { field: 'image', message: 'must NOT have fewer than 28 items' }],
      ['29 rows', { image: image(0, 29) }, { field: 'image', message: 'must NOT have more than 28 items' }],
      [
        'a row of 27 columns',
        { image: [...image(0, 27), new Array<number>(27).fill(0)] },
        { field: 'image[27]', message: 'must NOT have fewer than 28 items' },
      ],
      [
        'a flat array of 784 values',
        { image: new Array<number>(784).fill(0) },
        { field: 'image', message: 'must NOT have more than 28 items' },
      ],
      [
        'a value of 256',
        { image: image(0).map((r, i) => (i === 3 ? r.map((v, j) => (j === 4 ? 256 : v)) : r)) },
        { field: 'image[3][4]', message: 'must be <= 255' },
      ],
      [
        'a value of -1',
        { image: image(0).map((r, i) => (i === 0 ? r.map((v, j) => (j === 0 ? -1 : v)) : r)) },
        { field: 'image[0][0]', message: 'must be >= 0' },
      ],
      [
        'a value of 0.5',
        { image: image(0).map((r, i) => (i === 27 ? r.map((v, j) => (j === 27 ? 0.5 : v)) : r)) },
        { field: 'image[27][27]', message: 'must be integer' },
      ],
      [
        'base64 of 783 bytes',
        { image: Buffer.alloc(783).toString('base64') },
        { field: 'image', message: 'must NOT have fewer than 1048 characters' },
      ],
      [
        'base64 of 785 bytes (same base64 length as 784)',
        { image: Buffer.alloc(785).toString('base64') },
        { field: 'image', message: 'must decode to 784 bytes, not 785' },
      ],
      [
        'base64 of 786 bytes (same base64 length as 784, no padding)',
        { image: Buffer.alloc(786).toString('base64') },
        { field: 'image', message: 'must decode to 784 bytes, not 786' },
      ],
      [
        'base64 with characters outside the alphabet',
        { image: `${Buffer.alloc(784).toString('base64').slice(0, -3)}*==` },
        { field: 'image', message: 'must match pattern "^[A-Za-z0-9+/]*={0,2}$"' },
      ],
    ])('when an image has %s, then 400 names the row and the field', async (_what, row, error) => {
      const response = await predict('/v1/models/fashion/predict', [{ image: first }, row]);

      expect(response.status).toBe(400);
      expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(response.body.code).toBe('OB_ERR_INVALID_ROWS');
      expect(response.body.errors).toEqual([{ row: 1, ...error }]);
    });
  });
});

describe('the synchronous predict without a worker', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ SYNC_TIMEOUT_MS: '300' }, false);
  });

  afterAll(async () => {
    await stack.close();
  });

  it(
    'when no worker runs the job within SYNC_TIMEOUT_MS, then 504 problem+json carries the job id to poll, and the job ' + 'stays queued',
    async () => {
      const started = Date.now();

      const response = await request(stack.url)
        .post('/v1/models/iris/predict')
        .send({ inputs: [[5.1, 3.5, 1.4, 0.2]] });
      const elapsed = Date.now() - started;

      expect(response.status).toBe(504);
      expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
      const jobId = String(response.body.jobId);
      expect(response.body).toMatchObject({
        status: 504,
        code: 'OB_ERR_TIMEOUT',
        jobId: expect.stringMatching(JOB_ID),
        resultUrl: `/v1/batch-result/${jobId}`,
        instance: '/v1/models/iris/predict',
      });
      expect(elapsed).toBeGreaterThanOrEqual(300);
      expect(elapsed).toBeLessThan(5000);
      const job = await request(stack.url).get(`/v1/batch-result/${jobId}`);
      expect(job.status).toBe(200);
      expect(job.body).toMatchObject({
        status: 'queued',
        model: { name: 'iris', version: '2' },
        progress: { done: 0, total: 1, failed: 0 },
      });
    },
  );
});
