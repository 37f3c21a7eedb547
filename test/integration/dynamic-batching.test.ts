import { ChunkEncoder, createLogger, ModelRepository } from '@onnx-batch/shared';
import { InferencePool } from '@onnx-batch/worker';
import { MODELS_DIR } from '../helpers/env';
import { compareWithGolden, loadGolden, type ClassificationResult } from '../helpers/golden';

describe('dynamic batching in the inference pool (real ONNX Runtime threads)', () => {
  let repository: ModelRepository;
  let pool: InferencePool;
  const batches: number[] = [];

  beforeAll(async () => {
    repository = await ModelRepository.open(MODELS_DIR);
    pool = new InferencePool(
      { threads: 1, intraOpThreads: 1, maxBatchRows: 64, onBatch: (_model, outcomes) => batches.push(outcomes.length) },
      createLogger('error', 'test'),
    );
  });

  afterAll(async () => {
    await pool.close();
    repository.close();
  });

  it('when one chunk arrives alone, then it runs at once in a batch of its own', async () => {
    batches.length = 0;
    const model = repository.resolve('iris', '1');
    const encoder = new ChunkEncoder(model.manifest, 1);
    encoder.add([5.1, 3.5, 1.4, 0.2]);

    const outcome = await pool.run(model, encoder.finish());

    expect(outcome.batchRows).toBe(1);
    expect(batches).toEqual([1]);
  });

  it('when many 1-row chunks arrive together, then they share run() calls and each still gets its own golden result', async () => {
    batches.length = 0;
    const model = repository.resolve('iris', '1');
    const golden = loadGolden('iris', '1');
    const inputs = golden.inputs.map((row) => {
      const encoder = new ChunkEncoder(model.manifest, 1);
      encoder.add(row);
      return encoder.finish();
    });

    const outcomes = await Promise.all(inputs.map((input) => pool.run(model, input)));

    // The first chunk finds the thread idle; those arriving meanwhile are joined, at most 64 rows a call.
    expect(batches.length).toBeLessThan(inputs.length / 10);
    expect(Math.max(...outcomes.map((o) => o.batchRows))).toBe(64);
    const results = outcomes.map((o) => JSON.parse(o.lines) as ClassificationResult);
    const { maxDiff, labelMismatches } = compareWithGolden(results, golden, ['setosa', 'versicolor', 'virginica']);
    expect(labelMismatches).toEqual([]);
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
  });

  it('when chunks of two model versions wait, then each batch holds one version only', async () => {
    batches.length = 0;
    const v1 = repository.resolve('iris', '1');
    const v2 = repository.resolve('iris', '2');
    const chunk = (model: typeof v1) => {
      const encoder = new ChunkEncoder(model.manifest, 1);
      encoder.add([6.7, 3.0, 5.2, 2.3]);
      return encoder.finish();
    };

    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? pool.run(v1, chunk(v1)) : pool.run(v2, chunk(v2)))));

    expect(outcomes.every((o) => (JSON.parse(o.lines) as ClassificationResult).label === 'virginica')).toBe(true);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(20);
  });
});
