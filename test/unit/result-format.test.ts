import { fetchedOutputs, formatResults, formatRowError } from '@onnx-batch/shared';
import type { ModelManifest } from '@onnx-batch/contracts';
import type { OutputData } from '@onnx-batch/shared';
import { int64Manifest, realManifest } from './fixtures';

const iris = realManifest('iris', '1');

function parse(lines: string[]): unknown[] {
  return lines.map((line) => JSON.parse(line) as unknown);
}

function regression(names?: string[], width = 1): ModelManifest {
  return {
    name: 'reg',
    version: '1',
    task: 'regression',
    features: [{ name: 'x', type: 'number' }],
    inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 1], features: ['x'] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: width === 1 ? [-1] : [-1, width] }],
    result: { kind: 'regression', output: 'y', ...(names ? { names } : {}) },
  };
}

function tensorModel(resultOutputs?: string[]): ModelManifest {
  return {
    name: 'tens',
    version: '1',
    task: 'tensor',
    features: [{ name: 'x', type: 'number' }],
    inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 1], features: ['x'] }],
    outputs: [
      { name: 'grid', dtype: 'float32', shape: [-1, 2, 3] },
      { name: 'index', dtype: 'int64', shape: [-1, 2] },
    ],
    result: { kind: 'tensor', ...(resultOutputs ? { outputs: resultOutputs } : {}) },
  };
}

describe('formatResults for classification', () => {
  const probabilities: OutputData = {
    data: Float32Array.from([0.5, 0.25, 0.25, 0.125, 0.125, 0.75, 0.25, 0.5, 0.25]),
    dims: [3, 3],
  };
  const outputs = new Map([['probabilities', probabilities]]);

  it('when a row is formatted, then label is the argmax, confidence its probability and probabilities are keyed by label', () => {
    // Act
    const results = parse(formatResults(iris, outputs, 0, 3, null));

    // Assert
    expect(results).toEqual([
      { label: 'setosa', confidence: 0.5, probabilities: { setosa: 0.5, versicolor: 0.25, virginica: 0.25 } },
      { label: 'virginica', confidence: 0.75, probabilities: { setosa: 0.125, versicolor: 0.125, virginica: 0.75 } },
      { label: 'versicolor', confidence: 0.5, probabilities: { setosa: 0.25, versicolor: 0.5, virginica: 0.25 } },
    ]);
  });

  it('when a row has an id, then the id is echoed as the first key', () => {
    // Act
    const [line] = formatResults(iris, outputs, 0, 1, ['flower-1']);

    // Assert
    expect(line).toBe(
      '{"id":"flower-1","label":"setosa","confidence":0.5,"probabilities":{"setosa":0.5,"versicolor":0.25,"virginica":0.25}}',
    );
  });

  it('when ids are null for some rows, then those rows have no id key and the others keep theirs', () => {
    // Act
    const results = parse(formatResults(iris, outputs, 0, 3, [7, null, 'c']));

    // Assert
    expect(results.map((r) => Object.keys(r as object)[0])).toEqual(['id', 'label', 'id']);
    expect((results[0] as { id: unknown }).id).toBe(7);
    expect(results[1]).not.toHaveProperty('id');
    expect((results[2] as { id: unknown }).id).toBe('c');
  });

  it('when first selects rows of a batched output, then ids are indexed from the chunk start', () => {
    // Act: rows 1..2 of the batch belong to a chunk whose ids are ['b', 'c'].
    const results = parse(formatResults(iris, outputs, 1, 2, ['b', 'c']));

    // Assert
    expect(results).toEqual([
      { id: 'b', label: 'virginica', confidence: 0.75, probabilities: { setosa: 0.125, versicolor: 0.125, virginica: 0.75 } },
      { id: 'c', label: 'versicolor', confidence: 0.5, probabilities: { setosa: 0.25, versicolor: 0.5, virginica: 0.25 } },
    ]);
  });

  it('when probabilities tie, then the first label wins', () => {
    // Arrange
    const tied = new Map([['probabilities', { data: [0.25, 0.375, 0.375], dims: [1, 3] }]]);

    // Act
    const [result] = parse(formatResults(iris, tied, 0, 1, null));

    // Assert
    expect(result).toEqual({
      label: 'versicolor',
      confidence: 0.375,
      probabilities: { setosa: 0.25, versicolor: 0.375, virginica: 0.375 },
    });
  });

  it('when the output the result reads is missing, then formatResults names it', () => {
    expect(() => formatResults(iris, new Map(), 0, 1, null)).toThrow('model produced no output named probabilities');
  });
});

describe('formatResults for regression', () => {
  it('when there is one target, then each row is {value}', () => {
    // Arrange
    const outputs = new Map([['y', { data: Float32Array.from([1.5, -2.25]), dims: [2] }]]);

    // Act
    const results = parse(formatResults(regression(), outputs, 0, 2, [null, 'r2']));

    // Assert
    expect(results).toEqual([{ value: 1.5 }, { id: 'r2', value: -2.25 }]);
  });

  it('when one target is named, then each row is still {value}', () => {
    // Arrange
    const outputs = new Map([['y', { data: [4], dims: [1, 1] }]]);

    // Act
    const results = parse(formatResults(regression(['price']), outputs, 0, 1, null));

    // Assert
    expect(results).toEqual([{ value: 4 }]);
  });

  it('when there are several named targets, then each row is {values: {name: v}}', () => {
    // Arrange
    const manifest = int64Manifest();
    const outputs = new Map([['y', { data: Float32Array.from([1, 2, 3.5, 4.5]), dims: [2, 2] }]]);

    // Act
    const results = parse(formatResults(manifest, outputs, 0, 2, null));

    // Assert
    expect(results).toEqual([{ values: { low: 1, high: 2 } }, { values: { low: 3.5, high: 4.5 } }]);
  });

  it('when a value is not finite, then it is written as a string so the line stays valid JSON', () => {
    // Arrange
    const outputs = new Map([['y', { data: [Number.NaN, Number.POSITIVE_INFINITY], dims: [2] }]]);

    // Act
    const lines = formatResults(regression(), outputs, 0, 2, null);

    // Assert
    expect(lines).toEqual(['{"value":"NaN"}', '{"value":"Infinity"}']);
  });
});

describe('formatResults for tensor results', () => {
  const outputs = new Map<string, OutputData>([
    ['grid', { data: Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), dims: [2, 2, 3] }],
    ['index', { data: BigInt64Array.from([1n, 2n, 3n, 4n]), dims: [2, 2] }],
  ]);

  it('when outputs are listed by the manifest, then each row nests every output to its per-row shape', () => {
    // Act
    const results = parse(formatResults(tensorModel(), outputs, 0, 2, ['a', null]));

    // Assert
    expect(results).toEqual([
      {
        id: 'a',
        outputs: {
          grid: [
            [0, 1, 2],
            [3, 4, 5],
          ],
          index: [1, 2],
        },
      },
      {
        outputs: {
          grid: [
            [6, 7, 8],
            [9, 10, 11],
          ],
          index: [3, 4],
        },
      },
    ]);
  });

  it('when result.outputs selects one output, then only that output is written', () => {
    // Act
    const results = parse(formatResults(tensorModel(['index']), outputs, 1, 1, null));

    // Assert
    expect(results).toEqual([{ outputs: { index: [3, 4] } }]);
  });

  it('when int64 values arrive as BigInt, then they are written as JSON numbers', () => {
    // Act
    const [line] = formatResults(tensorModel(['index']), outputs, 0, 1, null);

    // Assert
    expect(line).toBe('{"outputs":{"index":[1,2]}}');
  });

  it('when a BigInt is beyond 2^53, then it is written as a decimal string', () => {
    // Arrange
    const huge = new Map<string, OutputData>([['index', { data: BigInt64Array.from([2n ** 60n, -5n]), dims: [1, 2] }]]);

    // Act
    const [line] = formatResults(tensorModel(['index']), huge, 0, 1, null);

    // Assert
    expect(line).toBe('{"outputs":{"index":["1152921504606846976",-5]}}');
  });

  it('when an output is three-dimensional per row, then it nests to that depth', () => {
    // Arrange
    const deep = new Map<string, OutputData>([['grid', { data: Array.from({ length: 8 }, (_, i) => i), dims: [1, 2, 2, 2] }]]);

    // Act
    const [result] = parse(formatResults(tensorModel(['grid']), deep, 0, 1, null));

    // Assert
    expect(result).toEqual({
      outputs: {
        grid: [
          [
            [0, 1],
            [2, 3],
          ],
          [
            [4, 5],
            [6, 7],
          ],
        ],
      },
    });
  });
});

describe('formatRowError', () => {
  it('when the row has an id, then the line carries the id first and the error', () => {
    expect(formatRowError({ code: 'OB_ERR_INFERENCE_FAILED', message: 'boom' }, 'r1')).toBe(
      '{"id":"r1","error":{"code":"OB_ERR_INFERENCE_FAILED","message":"boom"}}',
    );
  });

  it('when the row has a numeric id, then the id is echoed as a number', () => {
    expect(formatRowError({ code: 'OB_ERR_INFERENCE_FAILED', message: 'boom' }, 0)).toBe(
      '{"id":0,"error":{"code":"OB_ERR_INFERENCE_FAILED","message":"boom"}}',
    );
  });

  it('when the row has no id, then the line holds only the error', () => {
    expect(formatRowError({ code: 'OB_ERR_INFERENCE_FAILED', message: 'boom' }, undefined)).toBe(
      '{"error":{"code":"OB_ERR_INFERENCE_FAILED","message":"boom"}}',
    );
  });
});

describe('fetchedOutputs', () => {
  it('when the result is a classification, then only its output is fetched', () => {
    expect(fetchedOutputs(realManifest('iris', '2'))).toEqual(['probabilities']);
  });

  it('when the result is a regression, then only its output is fetched', () => {
    expect(fetchedOutputs(regression())).toEqual(['y']);
  });

  it('when a tensor result lists outputs, then exactly those are fetched', () => {
    expect(fetchedOutputs(tensorModel(['index']))).toEqual(['index']);
  });

  it('when a tensor result lists none, then every manifest output is fetched in order', () => {
    expect(fetchedOutputs(tensorModel())).toEqual(['grid', 'index']);
  });
});
