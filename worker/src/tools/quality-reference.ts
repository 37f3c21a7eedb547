import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { QualityMetrics } from '@onnx-batch/contracts';
import {
  ChunkEncoder,
  decodeChunk,
  loadConfig,
  ModelRepository,
  qualityKindOf,
  qualityOfRows,
  resultChunkFromOutputs,
  writeAtomically,
} from '@onnx-batch/shared';
import { referenceRows } from './reference-rows';
import { onnxRuntimeReader } from '../onnx-runtime-reader';
import { createSession, runSession } from '../onnx-session';

const USAGE = `Usage: npm run reference -- --model NAME --version N [options]

Scores a model version on its evaluation set (the manifest's "evaluation": a labelled NDJSON file
beside it, each row the features plus "label" or "value") through the service's own validation,
chunk codec and model.onnx, and writes the figures into its model.json as metrics.reference: what
quality gauges, alerts and the confidence-based estimate are compared with.

  --models-dir DIR   the model repository (default: MODELS_DIR, i.e. models/ of the checkout)
  --out FILE         write the reference JSON here instead of into model.json ('-' = stdout)
`;

/** A usage mistake: answered with the usage text and exit code 2. */
class UsageError extends Error {}

type Reference = Record<string, unknown>;

/** The reference of a version: its figures on its evaluation set, as `metrics.reference` holds them. */
export async function computeReference(modelsDir: string, name: string, version: string): Promise<Reference> {
  const repository = await ModelRepository.open(modelsDir, onnxRuntimeReader);
  let model;
  try {
    model = repository.resolve(name, version);
  } finally {
    repository.close();
  }
  const { manifest, validator } = model;
  const kind = qualityKindOf(manifest);
  if (!kind) throw new UsageError(`${name} ${version} returns tensors or several targets: there is no quality to measure`);
  const evaluation = manifest.evaluation;
  if (!evaluation) throw new UsageError(`${name} ${version} has no evaluation set (the manifest's "evaluation")`);
  const file = path.join(path.dirname(model.manifestPath), evaluation.file);
  const labels = manifest.result.labels ?? [];
  const chunkSize = manifest.chunkSize ?? loadConfig().CHUNK_SIZE;
  const session = await createSession(model.modelPath, 1);
  const encoder = new ChunkEncoder(manifest, chunkSize);
  const values: number[] = [];
  const truths: number[] = [];
  let width = 0;
  const flush = async (): Promise<void> => {
    if (encoder.rows === 0) return;
    const chunk = decodeChunk(encoder.finish());
    const { outputs } = await runSession(session, manifest, [chunk]);
    const results = resultChunkFromOutputs(manifest, outputs, 0, chunk.rows, null);
    width = results.names.length;
    for (const v of results.values) values.push(v);
  };
  try {
    for await (const { line, row } of referenceRows(file, 'ndjson', manifest)) {
      const { label, value, ...features } = row as Record<string, unknown>;
      const truth = kind === 'classification' ? labels.indexOf(String(label)) : Number(value);
      if (kind === 'classification' ? truth < 0 : !Number.isFinite(truth)) {
        const why =
          kind === 'classification' ? `label '${String(label)}' is not one of ${labels.join(', ')}` : 'value must be a finite number';
        throw new Error(`${file} line ${line}: ${why}`);
      }
      const problem = validator.check(features) ?? encoder.add(features);
      if (problem) throw new Error(`${file} line ${line}${problem.field ? `: field '${problem.field}'` : ':'} ${problem.message}`);
      truths.push(truth);
      if (encoder.full) await flush();
    }
    await flush();
  } finally {
    await session.release();
  }
  if (truths.length === 0) throw new Error(`${file} holds no row`);
  return referenceOf(qualityOfRows(kind, Float32Array.from(values), truths.length, width, truths, labels), evaluation.file);
}

/** The figures a reference keeps (docs/model-manifest.md). */
function referenceOf(m: QualityMetrics, source: string): Reference {
  if (m.kind === 'regression') return { rows: m.labelledRows, source, mae: m.mae, rmse: m.rmse, r2: m.r2, bias: m.bias };
  return {
    rows: m.labelledRows,
    source,
    accuracy: m.accuracy,
    macroF1: m.macroF1,
    weightedF1: m.weightedF1,
    logLoss: m.logLoss,
    brier: m.brier,
    meanConfidence: m.meanConfidence,
    calibrationError: m.calibrationError,
    calibration: m.calibration,
  };
}

/** The command: 0 when written, 1 when the data or model failed, 2 on a usage mistake. */
export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        model: { type: 'string' },
        version: { type: 'string' },
        'models-dir': { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    for (const name of ['model', 'version'] as const) if (values[name] === undefined) throw new UsageError(`--${name} is required`);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const modelsDir = path.resolve(values['models-dir'] ?? loadConfig().MODELS_DIR);
  const model = values.model as string;
  const version = values.version as string;
  try {
    const reference = await computeReference(modelsDir, model, version);
    if (values.out === '-') {
      process.stdout.write(`${JSON.stringify(reference, null, 2)}\n`);
    } else if (values.out !== undefined) {
      await fs.writeFile(values.out, `${JSON.stringify(reference, null, 2)}\n`);
    } else {
      const manifestPath = path.join(modelsDir, model, version, 'model.json');
      const manifest = JSON.parse(await fs.readFile(manifestPath, 'utf8')) as { metrics?: Record<string, unknown> };
      manifest.metrics = { ...manifest.metrics, reference };
      // Whole or not at all: a service rescanning the repository never sees half of it.
      await writeAtomically(manifestPath, async (handle) => {
        await handle.writeFile(`${JSON.stringify(manifest, null, 2)}\n`);
      });
      process.stderr.write(`reference of ${model} ${version} (${String(reference.rows)} rows) written to ${manifestPath}\n`);
    }
    return 0;
  } catch (error) {
    process.stderr.write(`reference: ${(error as Error).message}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
