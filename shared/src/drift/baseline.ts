import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import type { ModelManifest } from '@onnx-batch/contracts';
import { schemaProblems } from '../manifest-schema';
import { BASELINE_SCHEMA } from './baseline-schema';
import { binEdges, decileEdges, binProportions, roundProportion } from './bins';
import type { Measure, PredictionPlan, StatisticPlan } from './statistics';
import { measuresOf, predictionPlan, statisticName, statisticsPlan } from './statistics';
import { Vocabulary, type TokenizerSpec } from './vocabulary';

/**
 * `models/<name>/<version>/baseline.json`: binned reference statistics of a model version's
 * features and predictions, never raw data (docs/model-manifest.md).
 */
export const BASELINE_FILE = 'baseline.json';

export interface BaselineStatistic {
  name: string;
  feature: string;
  measure: Measure;
  /** ≤ 9 strictly increasing edges: the reference deciles, duplicates removed. */
  edges: number[];
  /** edges.length + 1 shares of the reference rows, one per bin. */
  proportions: number[];
}

export type PredictionBaseline =
  { kind: 'label'; labels: string[]; proportions: number[] } | { kind: 'value'; edges: number[]; proportions: number[] };

export interface VocabularyReference extends TokenizerSpec {
  /** A file in the version's directory: one token per line. */
  file: string;
}

export interface Baseline {
  format: 1;
  model: string;
  version: string;
  reference: { rows: number; description?: string };
  statistics: BaselineStatistic[];
  vocabulary?: VocabularyReference;
  /** Absent for models whose result is raw tensors. */
  prediction?: PredictionBaseline;
}

/** A baseline checked against its manifest, ready for counting rows into its bins. */
export interface LoadedBaseline {
  readonly file: string;
  readonly baseline: Baseline;
  /** What measureChunk measures, one entry per baseline statistic, in the same order. */
  readonly plan: readonly StatisticPlan[];
  /** Per statistic, its edges as measured values compare with them (binIndex(bins[i], x)). */
  readonly bins: readonly Float64Array[];
  /** The prediction statistic; `bins` (float32 edges) only for kind 'value'. */
  readonly prediction: { readonly plan: PredictionPlan; readonly bins: Float64Array | null } | null;
  readonly vocabulary: Vocabulary | null;
  /**
   * 16 hex digits of the SHA-256 of baseline.json and its vocabulary file: production counts
   * are kept per digest, so counts binned by one baseline are never read against another.
   */
  readonly digest: string;
}

/**
 * A loaded baseline as plain data, for another thread (structured clone): restoreBaseline
 * rebuilds it there without reading or checking the files again.
 */
export interface BaselineTransfer {
  file: string;
  baseline: Baseline;
  vocabularyTokens: ReadonlySet<string> | null;
  digest: string;
}

export interface BaselineProblem {
  file: string;
  field?: string;
  message: string;
}

/** What is wrong with a baseline file, naming the file and field (the shape of a RepositoryProblem). */
export class BaselineError extends Error {
  override name = 'BaselineError';
  constructor(readonly problems: BaselineProblem[]) {
    super(problems.map((p) => `${p.file}${p.field ? ` (${p.field})` : ''}: ${p.message}`).join('\n'));
  }
}

const validateSchema = new Ajv2020({ allErrors: true, strict: true, strictRequired: false }).compile(BASELINE_SCHEMA);

/** Most a rounded proportion may be off: 6 decimals, half a unit each. */
function sumTolerance(count: number): number {
  return 5e-7 * count + 1e-9;
}

function checkBins(
  edges: readonly number[] | undefined,
  proportions: readonly number[],
  field: string,
  problem: (field: string, message: string) => void,
): void {
  if (edges) {
    for (let i = 1; i < edges.length; i++) {
      if (!((edges[i] as number) > (edges[i - 1] as number))) {
        problem(`${field}.edges`, `must be strictly increasing (${edges[i - 1]} then ${edges[i]})`);
        break;
      }
    }
  }
  const sum = proportions.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > sumTolerance(proportions.length)) problem(`${field}.proportions`, `must sum to 1 (they sum to ${sum})`);
}

/**
 * Reads `<versionDir>/baseline.json` and its vocabulary file. Null when the version has no
 * baseline; throws BaselineError naming the file and field when it is invalid or disagrees with
 * the manifest (unknown feature, a measure the feature cannot have, other labels…).
 */
export async function loadBaseline(versionDir: string, manifest: ModelManifest): Promise<LoadedBaseline | null> {
  const file = path.join(versionDir, BASELINE_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new BaselineError([{ file, message: `cannot be read: ${(error as Error).message}` }]);
  }
  let baseline: Baseline;
  try {
    baseline = JSON.parse(text) as Baseline;
  } catch (error) {
    throw new BaselineError([{ file, message: `is not valid JSON: ${(error as Error).message}` }]);
  }
  const problems: BaselineProblem[] = [];
  const problem = (field: string, message: string): void => {
    problems.push({ file, field, message });
  };
  if (!validateSchema(baseline)) {
    for (const p of schemaProblems(validateSchema.errors, 'is not allowed here')) problem(p.field, p.message);
    throw new BaselineError(problems);
  }

  if (baseline.model !== manifest.name) problem('model', `is '${baseline.model}' but the manifest's name is '${manifest.name}'`);
  if (baseline.version !== manifest.version)
    problem('version', `is '${baseline.version}' but the manifest's version is '${manifest.version}'`);

  const digest = createHash('sha256').update(text);
  let vocabulary: Vocabulary | null = null;
  if (baseline.vocabulary) {
    const spec = baseline.vocabulary;
    if (!manifest.features.some((f) => f.type === 'string')) problem('vocabulary', 'is given but the model has no string feature');
    const vocabularyFile = path.join(versionDir, spec.file);
    try {
      const tokens = await fs.readFile(vocabularyFile, 'utf8');
      digest.update('\0').update(tokens);
      vocabulary = Vocabulary.parse(tokens, { tokenPattern: spec.tokenPattern, minLength: spec.minLength, lowercase: spec.lowercase });
      if (vocabulary.tokens.size === 0) problem('vocabulary.file', `${vocabularyFile} holds no token`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problem(
        code ? 'vocabulary.file' : 'vocabulary.tokenPattern',
        code ? `cannot read ${vocabularyFile}: ${(error as Error).message}` : (error as Error).message,
      );
    }
  }

  const features = new Map(manifest.features.map((f) => [f.name, f]));
  const available = new Map(statisticsPlan(manifest, vocabulary ?? undefined).map((p) => [p.name, p]));
  const plan: StatisticPlan[] = [];
  const seen = new Set<string>();
  baseline.statistics.forEach((statistic, i) => {
    const field = `statistics.${i}`;
    const feature = features.get(statistic.feature);
    if (!feature) {
      problem(`${field}.feature`, `names unknown feature '${statistic.feature}' (features: ${[...features.keys()].join(', ')})`);
    } else if (!measuresOf(feature.type, true).includes(statistic.measure)) {
      problem(
        `${field}.measure`,
        `'${statistic.measure}' is not a measure of ${feature.type} feature '${feature.name}' (measures: ` +
          `${measuresOf(feature.type, true).join(', ')})`,
      );
    } else if (statistic.measure === 'oov' && !vocabulary) {
      problem(`${field}.measure`, "'oov' needs the baseline's 'vocabulary'");
    } else if (statistic.name !== statisticName(statistic.feature, statistic.measure)) {
      problem(`${field}.name`, `must be '${statisticName(statistic.feature, statistic.measure)}'`);
    } else if (seen.has(statistic.name)) {
      problem(`${field}.name`, `'${statistic.name}' appears twice`);
    } else {
      seen.add(statistic.name);
      const entry = available.get(statistic.name);
      if (entry) plan.push(entry);
    }
    checkBins(statistic.edges, statistic.proportions, field, problem);
  });

  const expected = predictionPlan(manifest);
  const prediction = baseline.prediction;
  if (!expected && prediction) problem('prediction', `is not allowed: a ${manifest.result.kind} model has no prediction statistic`);
  if (expected && !prediction) problem('prediction', `is required for a ${manifest.result.kind} model`);
  if (expected && prediction) {
    if (prediction.kind !== expected.kind) {
      problem('prediction.kind', `must be '${expected.kind}' for a ${manifest.result.kind} model`);
    } else if (prediction.kind === 'label') {
      const labels = expected.labels ?? [];
      if (prediction.labels.length !== labels.length || prediction.labels.some((l, i) => l !== labels[i])) {
        problem('prediction.labels', `must be the manifest's labels in order (${labels.join(', ')})`);
      } else if (prediction.proportions.length !== labels.length) {
        problem('prediction.proportions', `must hold one share per label (${labels.length})`);
      }
    }
    checkBins(prediction.kind === 'value' ? prediction.edges : undefined, prediction.proportions, 'prediction', problem);
  }
  if (problems.length > 0) throw new BaselineError(problems);
  return assemble(file, baseline, manifest, plan, vocabulary, digest.digest('hex').slice(0, 16));
}

function assemble(
  file: string,
  baseline: Baseline,
  manifest: ModelManifest,
  plan: StatisticPlan[],
  vocabulary: Vocabulary | null,
  digest: string,
): LoadedBaseline {
  const expected = predictionPlan(manifest);
  const prediction = baseline.prediction;
  return Object.freeze({
    file,
    baseline,
    plan,
    bins: baseline.statistics.map((s, i) => binEdges(s.edges, plan[i]?.float32 ?? false)),
    // Row outputs travel as float32 (drift-counts.ts): they are compared with float32 edges whatever the output's dtype.
    prediction:
      expected && prediction ? { plan: expected, bins: prediction.kind === 'value' ? binEdges(prediction.edges, true) : null } : null,
    vocabulary,
    digest,
  });
}

/** A loaded baseline as plain data (see BaselineTransfer). */
export function transferBaseline(loaded: LoadedBaseline): BaselineTransfer {
  return { file: loaded.file, baseline: loaded.baseline, vocabularyTokens: loaded.vocabulary?.tokens ?? null, digest: loaded.digest };
}

/** Rebuilds a baseline loadBaseline checked (in another thread) from its plain data. */
export function restoreBaseline(manifest: ModelManifest, transfer: BaselineTransfer): LoadedBaseline {
  const { baseline } = transfer;
  const spec = baseline.vocabulary;
  const vocabulary =
    spec && transfer.vocabularyTokens
      ? new Vocabulary(transfer.vocabularyTokens, { tokenPattern: spec.tokenPattern, minLength: spec.minLength, lowercase: spec.lowercase })
      : null;
  const available = new Map(statisticsPlan(manifest, vocabulary ?? undefined).map((p) => [p.name, p]));
  const plan = baseline.statistics.map((s) => {
    const entry = available.get(s.name);
    if (!entry) throw new Error(`${transfer.file}: statistic ${s.name} does not fit the manifest`);
    return entry;
  });
  return assemble(transfer.file, baseline, manifest, plan, vocabulary, transfer.digest);
}

export interface BaselineData {
  manifest: ModelManifest;
  /** The statistics measured, and per statistic its value for every reference row (measureChunk). */
  plan: readonly StatisticPlan[];
  values: readonly ArrayLike<number>[];
  /** predictionValues of every reference row; null for tensor models. */
  predictions: ArrayLike<number> | null;
  description?: string;
  vocabulary?: VocabularyReference;
}

/** A baseline from the measured values of the reference rows: deciles, then shares per bin. */
export function buildBaseline(data: BaselineData): Baseline {
  const { manifest, plan } = data;
  const rows = data.values[0]?.length ?? data.predictions?.length ?? 0;
  if (rows === 0) throw new RangeError('a baseline needs at least one reference row');
  const statistics = plan.map((entry, i): BaselineStatistic => {
    const values = data.values[i];
    if (!values || values.length !== rows) throw new RangeError(`statistic ${entry.name}: expected ${rows} values`);
    const edges = decileEdges(values);
    return {
      name: entry.name,
      feature: entry.feature,
      measure: entry.measure,
      edges,
      proportions: binProportions(binEdges(edges, entry.float32), values),
    };
  });
  const baseline: Baseline = {
    format: 1,
    model: manifest.name,
    version: manifest.version,
    reference: data.description === undefined ? { rows } : { rows, description: data.description },
    statistics,
  };
  if (data.vocabulary) {
    const { file, tokenPattern, minLength, lowercase } = data.vocabulary;
    baseline.vocabulary = { file, tokenPattern, minLength, lowercase };
  }
  const expected = predictionPlan(manifest);
  if (expected) {
    const predictions = data.predictions;
    if (!predictions || predictions.length !== rows) throw new RangeError(`expected ${rows} predictions`);
    if (expected.kind === 'label') {
      const labels = [...(expected.labels ?? [])];
      const counts = new Array<number>(labels.length).fill(0);
      for (let i = 0; i < rows; i++) counts[predictions[i] as number] = (counts[predictions[i] as number] ?? 0) + 1;
      baseline.prediction = { kind: 'label', labels, proportions: counts.map((c) => roundProportion(c / rows)) };
    } else {
      const edges = decileEdges(predictions);
      baseline.prediction = { kind: 'value', edges, proportions: binProportions(binEdges(edges, expected.float32), predictions) };
    }
  }
  return baseline;
}

/** baseline.json's text: two-space indents, arrays of numbers or strings on one line, a final newline. */
export function formatBaseline(baseline: Baseline): string {
  return `${format(baseline, '')}\n`;
}

function format(value: unknown, indent: string): string {
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object')) return `[${value.map((v) => JSON.stringify(v)).join(', ')}]`;
    const inner = `${indent}  `;
    return `[\n${value.map((v) => inner + format(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const inner = `${indent}  `;
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${format(v, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}
