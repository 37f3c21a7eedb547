import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ModelManifest } from '@onnx-batch/contracts';
import { checkGraph, onnxFileReader, type GraphSignature } from '@onnx-batch/shared';
import { onnxRuntimeReader } from '@onnx-batch/worker';
import { MODELS_DIR } from '../helpers/env';
import { discoverModelVersions } from '../helpers/model-files';
import { ELEM, onnxModel, tensorType, type GraphSpec } from '../helpers/onnx-graphs';

/** A one-node graph Y = Identity(X) of float [N, 2]. */
function identity(overrides: Partial<GraphSpec> = {}): GraphSpec {
  return {
    node: { opType: 'Identity', input: ['X'], output: ['Y'] },
    inputs: [{ name: 'X', type: tensorType(ELEM.FLOAT, ['N', 2]) }],
    outputs: [{ name: 'Y', type: tensorType(ELEM.FLOAT, ['N', 2]) }],
    ...overrides,
  };
}

describe('graph readers: the ONNX file reader (api, scheduler) and ONNX Runtime (worker) on the same files', () => {
  let dir: string;
  let count = 0;

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'graph-readers-'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function write(bytes: Uint8Array | string): string {
    const file = path.join(dir, `model-${count++}.onnx`);
    writeFileSync(file, bytes);
    return file;
  }

  async function readBoth(file: string): Promise<{ file: GraphSignature; ort: GraphSignature }> {
    return { file: await onnxFileReader.read(file), ort: await onnxRuntimeReader.read(file) };
  }

  it.each(discoverModelVersions().map((v) => [v.name, v.version]))(
    'when %s version %s of models/ is read by both, then they give the same inputs and outputs',
    async (name, version) => {
      const read = await readBoth(path.join(MODELS_DIR, name, version, 'model.onnx'));

      expect(read.file).toEqual(read.ort);
      expect(read.file.inputs.length).toBeGreaterThan(0);
    },
  );

  it('when initializers are also listed among the graph inputs (as IR 3 requires), then both leave them out of the inputs', async () => {
    const spec = identity({
      irVersion: 3,
      node: { opType: 'Add', input: ['X', 'W'], output: ['Y'] },
      inputs: [
        { name: 'X', type: tensorType(ELEM.FLOAT, ['N', 1]) },
        { name: 'W', type: tensorType(ELEM.FLOAT, [1]) },
      ],
      outputs: [{ name: 'Y', type: tensorType(ELEM.FLOAT, ['N', 1]) }],
      initializers: [{ name: 'W', value: 2 }],
    });

    const read = await readBoth(write(onnxModel(spec)));

    expect(read.file).toEqual(read.ort);
    expect(read.file.inputs).toEqual([{ name: 'X', isTensor: true, type: 'float32', rank: 2 }]);
  });

  it(
    'when a graph output is a sequence and an input has no shape, then both say the output is no tensor and the rank is ' + 'unknown (0)',
    async () => {
      const spec = identity({
        node: { opType: 'SequenceConstruct', input: ['X'], output: ['Y'] },
        inputs: [{ name: 'X', type: tensorType(ELEM.INT64) }],
        outputs: [{ name: 'Y', type: { sequenceType: { elemType: tensorType(ELEM.INT64) } } }],
      });

      const read = await readBoth(write(onnxModel(spec)));

      expect(read.file).toEqual(read.ort);
      expect(read.file).toEqual({
        inputs: [{ name: 'X', isTensor: true, type: 'int64', rank: 0 }],
        outputs: [{ name: 'Y', isTensor: false }],
      });
    },
  );

  const refused: [string, Uint8Array, string][] = [
    ['no IR version', onnxModel(identity({ irVersion: 0 })), 'Missing model IR version'],
    ['no graph', onnxModel(identity(), { graph: false }), 'ModelProto does not have a graph'],
    ['an input without a type', onnxModel(identity({ inputs: [{ name: 'X' }] })), 'Model input (X) does not have type information'],
    [
      'a bfloat16 input',
      onnxModel(
        identity({
          inputs: [{ name: 'X', type: tensorType(ELEM.BFLOAT16, [2]) }],
          outputs: [{ name: 'Y', type: tensorType(ELEM.BFLOAT16, [2]) }],
        }),
      ),
      'Unsupported data type: 16',
    ],
  ];
  it.each(refused)('when a model has %s, then both refuse it for the same reason', async (_what, bytes, reason) => {
    const file = write(bytes);

    await expect(onnxFileReader.read(file)).rejects.toThrow(reason);
    await expect(onnxRuntimeReader.read(file)).rejects.toThrow(reason);
  });

  it('when the file is not a protobuf at all, then both refuse it', async () => {
    const file = write('not a graph');

    await expect(onnxFileReader.read(file)).rejects.toThrow('Protobuf parsing failed');
    await expect(onnxRuntimeReader.read(file)).rejects.toThrow();
  });

  it(
    'when an output leaves its type to inference, then ONNX Runtime infers it, the file reader says null and the manifest check ' +
      "leaves it to the worker's",
    async () => {
      const manifest = {
        inputs: [{ name: 'X', dtype: 'float32', shape: [-1, 2], features: [] }],
        outputs: [{ name: 'Y', dtype: 'int64' }],
      } as unknown as ModelManifest;

      const read = await readBoth(write(onnxModel(identity({ outputs: [{ name: 'Y' }] }))));

      expect(read.file.outputs).toEqual([{ name: 'Y', isTensor: true, type: null, rank: 0 }]);
      expect(read.ort.outputs).toEqual([{ name: 'Y', isTensor: true, type: 'float32', rank: 2 }]);
      expect(checkGraph(manifest, read.file)).toEqual([]);
      expect(checkGraph(manifest, read.ort)).toEqual([{ field: 'outputs.0.dtype', message: 'is int64 but the graph output is float32' }]);
    },
  );
});
