import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildVersionCopy, type ModelsCopy } from './model-files';
import { ATTRIBUTE, ELEM, decodeOnnxModel, encodeOnnxModel, type OnnxModelObject } from './onnx-graphs';

/**
 * A model that fails only some rows, for per-row failures through the real pipeline: iris 3 (the
 * logistic regression) with a fragile step added before its softmax. The graph Gathers from a
 * 9-element table of zeros at index Cast(Floor(sepal_length)) to int64 and adds what it finds to
 * the logits (broadcast over the three classes), so a row with sepal_length < 9 gets exactly iris
 * 3's probabilities (its golden.json still holds), and ONNX Runtime refuses a row with sepal_length
 * ≥ 9 ("indices element out of data bounds"). The worker retries a failed chunk row by row
 * (worker/src/inference-thread.ts runAlone), so only those rows fail, with OB_ERR_INFERENCE_FAILED.
 *
 * Seeding (an integration or browser test):
 *
 *   const models = copyModels(['iris/3']);
 *   const fragile = addFragileModel(models);                 // models/fragile-iris/1
 *   const stack = await startStack({ MODELS_DIR: models.dir });
 *   await request(stack.url).post('/v1/batch-predict')
 *     .send({ model: fragile.name, inputs: fragileRows(30, [7, 19]) });  // 30 rows, rows 7 and 19 fail
 *   …
 *   models.remove();
 */

/** The model the helper adds, unless told another name. */
export const FRAGILE_MODEL = 'fragile-iris';
/** The first sepal_length the graph cannot run (the table has 9 entries: indexes 0–8). */
export const FRAGILE_FROM = 9;
/** The sepal_length fragileRows gives a bad row (inside the manifest's 0–10, so validation lets it through). */
export const FRAGILE_BAD_SEPAL_LENGTH = 9.5;

const TABLE_SIZE = FRAGILE_FROM;

/** iris 3's graph (`bytes`: its model.onnx) with the fragile step between its logits and its softmax. */
export function fragileIrisGraph(bytes: Uint8Array): Uint8Array {
  const model = decodeOnnxModel(bytes);
  const graph = model.graph ?? {};
  const nodes = graph.node ?? [];
  const softmax = nodes.find((n) => n.opType === 'Softmax');
  const logits = softmax?.input?.[0];
  if (!softmax || !logits) throw new Error('fragileIrisGraph: expected a graph ending in Softmax(logits)');
  const input = graph.input?.[0]?.name ?? 'input';
  const int64 = (name: string, dims: number[], values: number[]) => ({ name, dims, dataType: ELEM.INT64, int64Data: values });
  const fragile: NonNullable<OnnxModelObject['graph']>['node'] = [
    // sepal_length, the first column: [N]
    { name: 'fragile_column', opType: 'Gather', input: [input, 'fragile_zero'], output: ['fragile_sepal'], attribute: [axis(1)] },
    { name: 'fragile_floor', opType: 'Floor', input: ['fragile_sepal'], output: ['fragile_floored'] },
    {
      name: 'fragile_cast',
      opType: 'Cast',
      input: ['fragile_floored'],
      output: ['fragile_index'],
      attribute: [{ name: 'to', i: ELEM.INT64, type: ATTRIBUTE.INT }],
    },
    // Out of the table's bounds for sepal_length ≥ 9: the only step that can fail.
    {
      name: 'fragile_lookup',
      opType: 'Gather',
      input: ['fragile_table', 'fragile_index'],
      output: ['fragile_offset'],
      attribute: [axis(0)],
    },
    { name: 'fragile_column_of', opType: 'Unsqueeze', input: ['fragile_offset', 'fragile_axes'], output: ['fragile_offsets'] },
    { name: 'fragile_add', opType: 'Add', input: [logits, 'fragile_offsets'], output: ['fragile_logits'] },
  ];
  softmax.input = ['fragile_logits', ...(softmax.input ?? []).slice(1)];
  const at = nodes.indexOf(softmax);
  graph.node = [...nodes.slice(0, at), ...fragile, ...nodes.slice(at)];
  graph.initializer = [
    ...(graph.initializer ?? []),
    int64('fragile_zero', [], [0]),
    int64('fragile_axes', [1], [1]),
    { name: 'fragile_table', dims: [TABLE_SIZE], dataType: ELEM.FLOAT, floatData: new Array<number>(TABLE_SIZE).fill(0) },
  ];
  model.graph = graph;
  // Unsqueeze takes its axes as an input from opset 13 on; iris 3 is opset 17.
  if (!model.opsetImport?.some((o) => (o.domain ?? '') === '' && (o.version ?? 0) >= 13))
    throw new Error('fragileIrisGraph: expected ONNX opset 13 or later');
  return encodeOnnxModel(model);
}

function axis(value: number): { name: string; i: number; type: number } {
  return { name: 'axis', i: value, type: ATTRIBUTE.INT };
}

/**
 * Adds the fragile model to a copy of the repository that holds iris 3 (`copyModels(['iris/3'])`
 * or `copyModels(['iris'])`): `<copy.dir>/<name>/<version>/`, iris 3's files with its manifest
 * renamed and the fragile graph. Built in the staging directory and renamed in, so a running
 * service's rescan never sees half of it. Answers its name, version and directory.
 */
export function addFragileModel(
  copy: ModelsCopy,
  options: { name?: string; version?: string } = {},
): { name: string; version: string; dir: string } {
  const name = options.name ?? FRAGILE_MODEL;
  const version = options.version ?? '1';
  const built = buildVersionCopy(copy, 'iris', '3', version, (manifest) => {
    manifest.name = name;
    manifest.description = `iris 3 that cannot run a row with sepal_length >= ${FRAGILE_FROM} (test/helpers/fragile-model.ts)`;
  });
  const file = path.join(built, 'model.onnx');
  writeFileSync(file, fragileIrisGraph(readFileSync(file)));
  const dir = path.join(copy.dir, name, version);
  mkdirSync(path.dirname(dir), { recursive: true });
  renameSync(built, dir);
  return { name, version, dir };
}

/**
 * `count` iris rows with ids `row-<index>` (real iris measurements, all < 9 cm), the rows at the
 * indexes of `bad` with sepal_length FRAGILE_BAD_SEPAL_LENGTH, which the fragile model fails.
 */
export function fragileRows(count: number, bad: readonly number[]): Record<string, string | number>[] {
  const measurements = [
    [5.1, 3.5, 1.4, 0.2],
    [7.0, 3.2, 4.7, 1.4],
    [6.3, 3.3, 6.0, 2.5],
  ] as const;
  return Array.from({ length: count }, (_, i) => {
    const [sepalLength, sepalWidth, petalLength, petalWidth] = measurements[i % measurements.length] as readonly number[];
    return {
      id: `row-${i}`,
      sepal_length: bad.includes(i) ? FRAGILE_BAD_SEPAL_LENGTH : (sepalLength as number),
      sepal_width: sepalWidth as number,
      petal_length: petalLength as number,
      petal_width: petalWidth as number,
    };
  });
}
