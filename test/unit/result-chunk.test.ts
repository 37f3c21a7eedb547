import type { ModelManifest } from '@onnx-batch/contracts';
import {
  decodeResultChunk,
  encodeResultChunk,
  failedResultChunk,
  formatFloat,
  joinResultChunks,
  renderResultCsvRows,
  renderResultLines,
  resultChunkFromOutputs,
  resultCsvRow,
  type OutputData,
} from '@onnx-batch/shared';
import { floatTensorManifest, realManifest } from './fixtures';

const iris = realManifest('iris', '2');
const regression: ModelManifest = {
  name: 'reg',
  version: '1',
  task: 'regression',
  features: [{ name: 'x', type: 'number' }],
  inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 1], features: ['x'] }],
  outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2] }],
  result: { kind: 'regression', output: 'y', names: ['low', 'high'] },
};
const roundTrip = <T extends Parameters<typeof encodeResultChunk>[0]>(chunk: T) => decodeResultChunk(encodeResultChunk(chunk));

describe('results stored compactly, rendered when read', () => {
  it('when float32 values print, then at 6 significant digits: the README example reads 1, 0.96, 0.04', () => {
    expect(formatFloat(Math.fround(1.0000001192092896))).toBe('1');
    expect(formatFloat(0.9600001573562622)).toBe('0.96');
    expect(formatFloat(0.03999999910593033)).toBe('0.04');
    expect(formatFloat(Math.fround(1e-7))).toBe('1e-7');
    expect(formatFloat(Math.fround(123.456789))).toBe('123.457');
    expect(formatFloat(0)).toBe('0');
  });

  it(
    'when classification outputs of a batched run are stored and read, then each row renders label, confidence and ' +
      'probabilities, with its id',
    () => {
      const outputs = new Map<string, OutputData>([
        [
          'probabilities',
          { data: Float32Array.from([0.1, 0.2, 0.7, 1.0000001192092896, 0, 0, 0, 0.9600001573562622, 0.03999999910593033]), dims: [3, 3] },
        ],
      ]);

      const chunk = roundTrip(resultChunkFromOutputs(iris, outputs, 1, 2, ['a', null]));

      expect(renderResultLines(chunk)).toEqual([
        '{"id":"a","label":"setosa","confidence":1,"probabilities":{"setosa":1,"versicolor":0,"virginica":0}}',
        '{"label":"versicolor","confidence":0.96,"probabilities":{"setosa":0,"versicolor":0.96,"virginica":0.04}}',
      ]);
      expect(renderResultCsvRows(chunk, (r) => resultCsvRow(iris, r))).toEqual([
        ['a', 'setosa', '1', '1', '0', '0', null],
        [null, 'versicolor', '0.96', '0', '0.96', '0.04', null],
      ]);
    },
  );

  it('when some rows failed, then they render as errors with their ids, and the others as results', () => {
    const ok = resultChunkFromOutputs(
      iris,
      new Map([['probabilities', { data: Float32Array.from([0.2, 0.3, 0.5]), dims: [1, 3] }]]),
      0,
      1,
      null,
    );
    const bad = failedResultChunk(iris, 1, { code: 'OB_ERR_INFERENCE_FAILED', message: 'the model could not run this row: boom' });

    const chunk = roundTrip(joinResultChunks([bad, ok], [7, 'b']));

    expect(renderResultLines(chunk).map((l) => JSON.parse(l) as unknown)).toEqual([
      { id: 7, error: { code: 'OB_ERR_INFERENCE_FAILED', message: 'the model could not run this row: boom' } },
      { id: 'b', label: 'virginica', confidence: 0.5, probabilities: { setosa: 0.2, versicolor: 0.3, virginica: 0.5 } },
    ]);
    expect(renderResultCsvRows(chunk, (r) => resultCsvRow(iris, r))[0]).toEqual([
      7,
      null,
      null,
      null,
      null,
      null,
      'OB_ERR_INFERENCE_FAILED: the model could not run this row: boom',
    ]);
  });

  it('when a tensor model retried row by row has a failed row between two good ones, then every row keeps its own line and id', () => {
    const tensor = floatTensorManifest();
    const row = (value: number, id: string) =>
      resultChunkFromOutputs(tensor, new Map([['out', { data: Float32Array.from([value, value]), dims: [1, 2] }]]), 0, 1, [id]);
    const bad = failedResultChunk(tensor, 1, { code: 'OB_ERR_INFERENCE_FAILED', message: 'the model could not run this row: boom' });

    const chunk = roundTrip(joinResultChunks([row(1, 'a'), bad, row(3, 'c')], ['a', 'b', 'c']));

    expect(renderResultLines(chunk).map((l) => JSON.parse(l) as unknown)).toEqual([
      { id: 'a', outputs: { out: [1, 1] } },
      { id: 'b', error: { code: 'OB_ERR_INFERENCE_FAILED', message: 'the model could not run this row: boom' } },
      { id: 'c', outputs: { out: [3, 3] } },
    ]);
  });

  it('when a whole chunk failed, then its one error is stored once and every row renders it', () => {
    const failed = failedResultChunk(iris, 4000, {
      code: 'OB_ERR_INFERENCE_FAILED',
      message: 'the chunk holding this row could not be run: lost',
    });

    const encoded = encodeResultChunk(failed);
    const lines = renderResultLines(decodeResultChunk(encoded));

    expect(encoded.length).toBeLessThan(4000 * 3 * 4 + 300);
    expect(lines).toHaveLength(4000);
    expect(new Set(lines)).toEqual(
      new Set(['{"error":{"code":"OB_ERR_INFERENCE_FAILED","message":"the chunk holding this row could not be run: lost"}}']),
    );
  });

  it('when regression has several named targets, then rows render {values}; one target renders {value}', () => {
    const outputs = new Map<string, OutputData>([['y', { data: Float32Array.from([1.5, 2.25]), dims: [1, 2] }]]);
    const single: ModelManifest = {
      ...regression,
      outputs: [{ name: 'y', dtype: 'float32', shape: [-1] }],
      result: { kind: 'regression', output: 'y' },
    };

    expect(renderResultLines(roundTrip(resultChunkFromOutputs(regression, outputs, 0, 1, null)))).toEqual([
      '{"values":{"low":1.5,"high":2.25}}',
    ]);
    expect(
      renderResultLines(
        roundTrip(resultChunkFromOutputs(single, new Map([['y', { data: Float32Array.from([3.1415927]), dims: [1] }]]), 0, 1, null)),
      ),
    ).toEqual(['{"value":3.14159}']);
  });

  it('when something else is read as a result chunk, then it is refused', () => {
    expect(() => decodeResultChunk(Buffer.from('{"label":"bogus"}'))).toThrow('not an onnx-batch result chunk');
  });
});
