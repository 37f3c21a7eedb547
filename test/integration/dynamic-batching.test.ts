import { ChunkEncoder, createLogger, ModelRepository } from '@onnx-batch/shared';
import { InferencePool } from '@onnx-batch/worker';
import { MODELS_DIR } from '../helpers/env';
import { compareWithGolden, loadGolden, type ClassificationResult } from '../helpers/golden';
import { outcomeLines } from '../helpers/results';

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
    const results = outcomes.map((o) => JSON.parse(outcomeLines(o)) as ClassificationResult);
    const { maxDiff, labelMismatches } = compareWithGolden(results, golden, ['setosa', 'versicolor', 'virginica']);
    expect(labelMismatches).toEqual([]);
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
  });

  it(
    'when chunks of two model versions wait, then each batch holds one version only: every chunk gets its own ' + "version's answers",
    async () => {
      // Arrange: rows the two versions label differently (found by running both over a grid of
      // 11 375 rows; they disagree on 749), so a chunk run by the other version cannot pass.
      const v1 = repository.resolve('iris', '1');
      const v2 = repository.resolve('iris', '2');
      const rows = [
        [5.0, 3.5, 2.75, 0.9],
        [5.0, 2.0, 4.75, 1.5],
        [6.0, 4.0, 5.0, 1.9],
        [5.0, 2.0, 1.0, 0.7],
      ];
      const expectedLabels = {
        '1': ['setosa', 'virginica', 'versicolor', 'versicolor'], // MLP
        '2': ['versicolor', 'versicolor', 'virginica', 'setosa'], // random forest
      };
      const chunk = (model: typeof v1): Buffer => {
        const encoder = new ChunkEncoder(model.manifest, rows.length);
        for (const row of rows) encoder.add(row);
        return encoder.finish();
      };
      const results = (lines: string): ClassificationResult[] => lines.split('\n').map((line) => JSON.parse(line) as ClassificationResult);
      // Each version alone (a lone chunk runs in a batch of its own): the answers mixing would break.
      const alone = {
        '1': results(outcomeLines(await pool.run(v1, chunk(v1)))),
        '2': results(outcomeLines(await pool.run(v2, chunk(v2)))),
      };
      expect(alone['1'].map((r) => r.label)).toEqual(expectedLabels['1']);
      expect(alone['2'].map((r) => r.label)).toEqual(expectedLabels['2']);
      batches.length = 0;

      // Act: 20 chunks at once, alternating versions; all but the first wait and are joined.
      const versions = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? v1 : v2));
      const outcomes = await Promise.all(versions.map((model) => pool.run(model, chunk(model))));

      // Assert
      const wrong = outcomes.flatMap((outcome, i) => {
        const version = (versions[i] as typeof v1).manifest.version as '1' | '2';
        return results(outcomeLines(outcome)).flatMap((result, row) => {
          const expected = alone[version][row] as ClassificationResult;
          const close = Object.entries(expected.probabilities).every(
            ([label, p]) => Math.abs((result.probabilities[label] ?? Number.NaN) - p) <= 1e-6,
          );
          return result.label === expected.label && close
            ? []
            : [`chunk ${i} (v${version}) row ${row}: ${result.label}, expected ${expected.label}`];
        });
      });
      expect(wrong).toEqual([]);
      expect(batches.reduce((a, b) => a + b, 0)).toBe(20);
      expect(batches.length).toBeLessThan(20); // chunks were joined, so a mixed batch was possible
    },
  );

  it(
    "when image chunks wait, then a batch never exceeds the model's own maxBatchRows (fashion: 256, where a run is fastest per " +
      'image), and bytes go in as bytes',
    async () => {
      const model = repository.resolve('fashion', '1');
      const golden = loadGolden('fashion', '1');
      const rowsPerChunk = 64;
      const chunk = (): Buffer => {
        const encoder = new ChunkEncoder(model.manifest, rowsPerChunk);
        for (let i = 0; i < rowsPerChunk; i++) encoder.add(golden.inputs[i % golden.inputs.length]);
        return encoder.finish();
      };
      const wide = new InferencePool({ threads: 1, intraOpThreads: 1, maxBatchRows: 8192 }, createLogger('error', 'test'));
      try {
        const outcomes = await Promise.all(Array.from({ length: 12 }, () => wide.run(model, chunk())));

        expect(model.manifest.inputs[0]?.dtype).toBe('uint8');
        expect(model.manifest.maxBatchRows).toBe(256);
        expect(Math.max(...outcomes.map((o) => o.batchRows))).toBe(256); // joined, but never past the cap
        const results = outcomes.flatMap((o) =>
          outcomeLines(o)
            .split('\n')
            .map((line) => JSON.parse(line) as ClassificationResult),
        );
        const expected = Array.from({ length: 12 * rowsPerChunk }, (_, i) => golden.labels?.[(i % rowsPerChunk) % golden.inputs.length]);
        expect(results.map((r) => r.label)).toEqual(expected);
      } finally {
        await wide.close();
      }
    },
  );
});
