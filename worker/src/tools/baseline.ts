import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ModelManifest } from '@onnx-batch/contracts';
import {
  BASELINE_FILE,
  buildBaseline,
  ChunkEncoder,
  decodeChunk,
  DEFAULT_TOKENIZER,
  formatBaseline,
  loadConfig,
  measureChunk,
  ModelRepository,
  predictionPlan,
  predictionValues,
  statisticsPlan,
  Vocabulary,
  type Baseline,
  writeAtomically,
  type VocabularyReference,
} from '@onnx-batch/shared';
import { formatOf, referenceRows, type ReferenceFormat } from './reference-rows';
import { onnxRuntimeReader } from '../onnx-runtime-reader';
import { createSession, runSession } from '../onnx-session';

const USAGE = `Usage: npm run baseline -- --model NAME --version N --input FILE [options]

Computes models/NAME/N/baseline.json (binned reference statistics of the features and the
predictions) from a reference file, through the service's own row validation, chunk codec and model.

  --input FILE          reference rows: CSV with a header, or NDJSON (one row a line)
  --format csv|ndjson   the input's format (default: from its extension)
  --description TEXT    what the reference data is (stored in the baseline)
  --out FILE            where to write (default: <models-dir>/NAME/N/baseline.json; '-' = stdout)
  --models-dir DIR      the model repository (default: MODELS_DIR, i.e. models/ of the checkout)
  --vocabulary FILE     vocabulary file in the version directory, one token per line
                        (default: vocabulary.txt when the version has one)
  --token-pattern RE    token regular expression (default: ${DEFAULT_TOKENIZER.tokenPattern})
  --token-min-length N  shortest token in characters (default: ${DEFAULT_TOKENIZER.minLength})
  --no-lowercase        tokens are not lowercased first (default: lowercased)
`;

export interface BaselineCommandOptions {
  model: string;
  version: string;
  input: string;
  format?: ReferenceFormat;
  description?: string;
  modelsDir: string;
  /** A file name in the version directory; undefined = vocabulary.txt when it exists. */
  vocabulary?: string;
  tokenPattern?: string;
  tokenMinLength?: number;
  lowercase?: boolean;
  /** Rows per chunk (default: the manifest's chunkSize, else CHUNK_SIZE). */
  chunkSize?: number;
}

/** A usage mistake: answered with the usage text and exit code 2. */
class UsageError extends Error {}

/** Grows a list of Float64Array pieces; joined once at the end. */
class Column {
  private readonly pieces: Float64Array[] = [];
  private length = 0;
  push(values: Float64Array): void {
    this.pieces.push(values);
    this.length += values.length;
  }
  join(): Float64Array {
    const out = new Float64Array(this.length);
    let offset = 0;
    for (const piece of this.pieces) {
      out.set(piece, offset);
      offset += piece.length;
    }
    return out;
  }
}

async function openVocabulary(
  manifest: ModelManifest,
  versionDir: string,
  options: BaselineCommandOptions,
): Promise<{ reference: VocabularyReference; vocabulary: Vocabulary } | null> {
  const file = options.vocabulary ?? (existsSync(path.join(versionDir, 'vocabulary.txt')) ? 'vocabulary.txt' : undefined);
  if (file === undefined) return null;
  if (path.basename(file) !== file) throw new UsageError(`--vocabulary must name a file in ${versionDir}, not a path`);
  if (!manifest.features.some((f) => f.type === 'string'))
    throw new UsageError(`${manifest.name} ${manifest.version} has no string feature: a vocabulary has nothing to measure`);
  const reference: VocabularyReference = {
    file,
    tokenPattern: options.tokenPattern ?? DEFAULT_TOKENIZER.tokenPattern,
    minLength: options.tokenMinLength ?? DEFAULT_TOKENIZER.minLength,
    lowercase: options.lowercase ?? DEFAULT_TOKENIZER.lowercase,
  };
  const vocabulary = Vocabulary.parse(await fs.readFile(path.join(versionDir, file), 'utf8'), reference);
  if (vocabulary.tokens.size === 0) throw new Error(`${path.join(versionDir, file)} holds no token`);
  return { reference, vocabulary };
}

/**
 * The baseline of a model version from a reference file: every row validated and encoded as the
 * API stores it, decoded and measured as a worker will measure live chunks, and run through the
 * version's model.onnx chunk by chunk for its predictions.
 */
export async function computeBaseline(options: BaselineCommandOptions): Promise<Baseline> {
  const format = options.format ?? formatOf(options.input);
  if (!format) throw new UsageError(`cannot tell the format of ${options.input} from its extension: use --format csv or --format ndjson`);
  const repository = await ModelRepository.open(options.modelsDir, onnxRuntimeReader);
  let model;
  try {
    model = repository.resolve(options.model, options.version);
  } finally {
    repository.close();
  }
  const { manifest, validator } = model;
  const versionDir = path.dirname(model.manifestPath);
  const vocabulary = await openVocabulary(manifest, versionDir, options);
  const plan = statisticsPlan(manifest, vocabulary?.vocabulary);
  const predicts = predictionPlan(manifest) !== null;
  const chunkSize = options.chunkSize ?? manifest.chunkSize ?? loadConfig().CHUNK_SIZE;
  // The options of the worker's inference threads, one intra-op thread: predictions as served.
  const session = await createSession(model.modelPath, 1);
  const columns = plan.map(() => new Column());
  const predictions = new Column();
  const encoder = new ChunkEncoder(manifest, chunkSize);

  const flush = async (): Promise<void> => {
    if (encoder.rows === 0) return;
    const chunk = decodeChunk(encoder.finish());
    measureChunk(plan, chunk).forEach((values, i) => columns[i]?.push(values));
    if (!predicts) return;
    const { outputs } = await runSession(session, manifest, [chunk]);
    predictions.push(predictionValues(manifest, outputs, 0, chunk.rows));
  };

  try {
    for await (const { line, row } of referenceRows(options.input, format, manifest)) {
      const problem = validator.check(row) ?? encoder.add(row);
      if (problem) {
        const field = problem.field ? `: field '${problem.field}'` : ':';
        throw new Error(`${options.input} line ${line}${field} ${problem.message}`);
      }
      if (encoder.full) await flush();
    }
    await flush();
  } finally {
    await session.release();
  }
  const values = columns.map((c) => c.join());
  if ((values[0]?.length ?? 0) === 0) throw new Error(`${options.input} holds no row`);
  return buildBaseline({
    manifest,
    plan,
    values,
    predictions: predicts ? predictions.join() : null,
    ...(options.description !== undefined ? { description: options.description } : {}),
    ...(vocabulary ? { vocabulary: vocabulary.reference } : {}),
  });
}

function parseCommandLine(argv: string[]): (BaselineCommandOptions & { out?: string }) | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowNegative: true,
    options: {
      model: { type: 'string' },
      version: { type: 'string' },
      input: { type: 'string' },
      format: { type: 'string' },
      description: { type: 'string' },
      out: { type: 'string' },
      'models-dir': { type: 'string' },
      vocabulary: { type: 'string' },
      'token-pattern': { type: 'string' },
      'token-min-length': { type: 'string' },
      lowercase: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  for (const name of ['model', 'version', 'input'] as const) if (values[name] === undefined) throw new UsageError(`--${name} is required`);
  if (values.format !== undefined && values.format !== 'csv' && values.format !== 'ndjson')
    throw new UsageError(`--format must be csv or ndjson, not '${values.format}'`);
  const minLength = values['token-min-length'] === undefined ? undefined : Number(values['token-min-length']);
  if (minLength !== undefined && !(Number.isInteger(minLength) && minLength >= 1))
    throw new UsageError('--token-min-length must be a positive integer');
  return {
    model: values.model as string,
    version: values.version as string,
    input: values.input as string,
    modelsDir: path.resolve(values['models-dir'] ?? loadConfig().MODELS_DIR),
    ...(values.format !== undefined ? { format: values.format } : {}),
    ...(values.description !== undefined ? { description: values.description } : {}),
    ...(values.out !== undefined ? { out: values.out } : {}),
    ...(values.vocabulary !== undefined ? { vocabulary: values.vocabulary } : {}),
    ...(values['token-pattern'] !== undefined ? { tokenPattern: values['token-pattern'] } : {}),
    ...(minLength !== undefined ? { tokenMinLength: minLength } : {}),
    ...(values.lowercase !== undefined ? { lowercase: values.lowercase } : {}),
  };
}

/** The command: 0 when the baseline was written, 1 when the data or model failed, 2 on a usage mistake. */
export async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseCommandLine(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    const baseline = await computeBaseline(options);
    const text = formatBaseline(baseline);
    const out = options.out ?? path.join(options.modelsDir, options.model, options.version, BASELINE_FILE);
    if (out === '-') {
      process.stdout.write(text);
    } else {
      // Whole or not at all: a service rescanning the repository never sees half of it.
      await writeAtomically(out, async (handle) => {
        await handle.writeFile(text);
      });
      process.stderr.write(`baseline of ${options.model} ${options.version} from ${baseline.reference.rows} rows written to ${out}\n`);
    }
    return 0;
  } catch (error) {
    process.stderr.write(`baseline: ${(error as Error).message}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
