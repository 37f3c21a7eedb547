import { promises as fs } from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { RowValidator } from './codec/row-validator';
import { ColumnValidator } from './columnar/column-batch';
import { ModelNotFoundError, VersionNotFoundError } from './domain-errors';
import { BASELINE_FILE, BaselineError, loadBaseline, type LoadedBaseline } from './drift/baseline';
import { type ModelManifest, featureSize, rowElements } from '@onnx-batch/contracts';
import { checkGraph, type GraphReader, type GraphSignature } from './graph-reader';
import { MANIFEST_SCHEMA, schemaProblems } from './manifest-schema';
import { onnxFileReader } from './onnx-file-reader';

export const MODEL_NAME_PATTERN = /^[a-z][a-z0-9-]{0,63}$/;
export const VERSION_PATTERN = /^[0-9]{1,9}$/;

/** One servable model version. */
export interface ModelVersion {
  readonly manifest: ModelManifest;
  readonly modelPath: string;
  readonly manifestPath: string;
  /** Changes whenever model.onnx, model.json or baseline.json changes on disk; sessions are cached by it. */
  readonly fingerprint: string;
  readonly validator: RowValidator;
  /** The same checks over typed columns (Arrow, Parquet). */
  readonly columnValidator: ColumnValidator;
  /** The version's drift reference (`baseline.json`), null when it has none. */
  readonly baseline: LoadedBaseline | null;
  /** When model.onnx was written into the repository (its modification time, ISO 8601). */
  readonly createdAt: string;
}

export interface ModelEntry {
  readonly name: string;
  readonly defaultVersion: string;
  /** Ascending by version number. */
  readonly versions: readonly ModelVersion[];
}

/** Something wrong with one file of the repository, naming the field when there is one. */
export interface RepositoryProblem {
  file: string;
  field?: string;
  message: string;
}

export class ModelRepositoryError extends Error {
  override name = 'ModelRepositoryError';
  constructor(readonly problems: RepositoryProblem[]) {
    super(`model repository is invalid:\n${problems.map((p) => `  ${p.file}${p.field ? ` (${p.field})` : ''}: ${p.message}`).join('\n')}`);
  }
}

const manifestValidator = new Ajv2020({ allErrors: true, strict: false }).compile(MANIFEST_SCHEMA);

/**
 * What a rescan changed. `removed` lists versions no longer served: their directory is gone, or
 * their files changed (the new files come as a new version in `added`). Whatever was held for
 * a removed version (ONNX Runtime sessions) should be released.
 */
export interface RepositoryChange {
  readonly added: readonly ModelVersion[];
  readonly removed: readonly ModelVersion[];
}

export type RepositoryChangeListener = (change: RepositoryChange) => void;

/**
 * The model repository on disk: `<dir>/<name>/<version>/{model.onnx,model.json}` (a symlink to
 * a directory counts as one), with an optional `baseline.json`. Every manifest is checked against
 * the manifest schema and against the graph itself, every baseline against its schema and the
 * manifest (a broken baseline is a problem like a broken manifest). At start-up a problem is fatal; afterwards the repository is rescanned:
 * a new
 * version is served and one whose directory is gone is dropped. A rescan that fails, wholly or
 * for one version (a half-copied directory, a manifest briefly invalid, a directory that cannot be
 * read), keeps serving the copy loaded before and reports the problem in `problems`.
 */
export class ModelRepository {
  private models = new Map<string, ModelEntry>();
  private byFingerprint = new Map<string, ModelVersion>();
  private currentProblems: RepositoryProblem[] = [];
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private readonly listeners = new Set<RepositoryChangeListener>();

  private constructor(
    readonly dir: string,
    private readonly graphs: GraphReader,
  ) {}

  /**
   * Loads the repository; throws ModelRepositoryError listing every problem found. `graphs` reads
   * each graph's inputs and outputs to check them against its manifest: the file reader by default
   * (no ONNX Runtime in the process); the worker passes ONNX Runtime's, which also proves each graph loads.
   */
  static async open(dir: string, graphs: GraphReader = onnxFileReader): Promise<ModelRepository> {
    const repository = new ModelRepository(dir, graphs);
    await repository.scan();
    if (repository.currentProblems.length > 0) throw new ModelRepositoryError(repository.currentProblems);
    if (repository.models.size === 0) {
      throw new ModelRepositoryError([{ file: dir, message: 'holds no model (expected <name>/<version>/model.json)' }]);
    }
    return repository;
  }

  get problems(): readonly RepositoryProblem[] {
    return this.currentProblems;
  }

  list(): ModelEntry[] {
    return [...this.models.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The model version a request names (default version when none); a ModelNotFoundError or VersionNotFoundError otherwise. */
  /** A model and all its versions; throws ModelNotFoundError. */
  entry(name: string): ModelEntry {
    const entry = MODEL_NAME_PATTERN.test(name) ? this.models.get(name) : undefined;
    if (!entry)
      throw new ModelNotFoundError(
        name,
        this.list().map((m) => m.name),
      );
    return entry;
  }

  /** A version as `resolve` finds it, or null when it is not (or no longer) served. */
  find(name: string, version?: string): ModelVersion | null {
    try {
      return this.resolve(name, version);
    } catch {
      return null;
    }
  }

  resolve(name: string, version?: string): ModelVersion {
    const entry = this.entry(name);
    const wanted = version ?? entry.defaultVersion;
    const found = entry.versions.find((v) => v.manifest.version === wanted);
    if (!found)
      throw new VersionNotFoundError(
        name,
        wanted,
        entry.versions.map((v) => v.manifest.version),
      );
    return found;
  }

  /**
   * Calls `listener` after every rescan that changed the versions served; answers a function
   * that unsubscribes it. A listener that throws does not stop the others; the rescan then
   * rejects with its error (the repository itself is already updated).
   */
  onChange(listener: RepositoryChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Rescans the directory now (coalesced with a scan already under way). */
  refresh(): Promise<void> {
    this.refreshing ??= this.scan().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /** Rescans every `intervalMs` in the background (0 = never). */
  watch(intervalMs: number, onError: (error: unknown) => void): void {
    if (intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      this.refresh().catch(onError);
    }, intervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async scan(): Promise<void> {
    const problems: RepositoryProblem[] = [];
    const models = new Map<string, ModelEntry>();
    const names = await candidates(this.dir, new Set(this.models.keys()), MODEL_NAME_PATTERN).catch((error: unknown) => {
      problems.push({ file: this.dir, message: `cannot read the model repository: ${messageOf(error)}` });
      return null;
    });
    if (names === null) {
      // A mount that vanishes for a moment must not empty the service: everything loaded stays.
      this.currentProblems = problems;
      return;
    }
    for (const name of [...names].sort()) {
      const modelDir = path.join(this.dir, name);
      const served = this.models.get(name);
      const versionNames = await candidates(modelDir, new Set(served?.versions.map((v) => v.manifest.version)), VERSION_PATTERN).catch(
        (error: unknown) => {
          problems.push({ file: modelDir, message: `cannot be read: ${messageOf(error)}${served ? KEPT : ''}` });
          return null;
        },
      );
      if (versionNames === null) {
        if (served) models.set(name, served);
        continue;
      }
      const versions: ModelVersion[] = [];
      for (const version of [...versionNames].sort((a, b) => Number(a) - Number(b))) {
        const found: RepositoryProblem[] = [];
        const loaded = await this.loadVersion(path.join(modelDir, version), name, version, found);
        const kept = loaded ?? served?.versions.find((v) => v.manifest.version === version);
        problems.push(...(kept && !loaded ? found.map((p) => ({ ...p, message: `${p.message}${KEPT}` })) : found));
        if (kept) versions.push(kept);
      }
      if (versions.length === 0) continue;
      const pinned = versions.filter((v) => v.manifest.default === true);
      if (pinned.length > 1) {
        problems.push({
          file: path.join(modelDir, '*', 'model.json'),
          field: 'default',
          message: `more than one version of '${name}' is pinned as default`,
        });
      }
      const defaultVersion = (pinned.at(-1) ?? versions.at(-1))?.manifest.version ?? '';
      models.set(name, { name, defaultVersion, versions });
    }
    const byFingerprint = new Map<string, ModelVersion>();
    for (const entry of models.values()) for (const v of entry.versions) byFingerprint.set(v.fingerprint, v);
    const added = [...byFingerprint.values()].filter((v) => !this.byFingerprint.has(v.fingerprint));
    const removed = [...this.byFingerprint.values()].filter((v) => !byFingerprint.has(v.fingerprint));
    this.models = models;
    this.byFingerprint = byFingerprint;
    this.currentProblems = problems;
    if (added.length > 0 || removed.length > 0) this.notify({ added, removed });
  }

  private notify(change: RepositoryChange): void {
    const errors: unknown[] = [];
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw errors[0];
  }

  private async loadVersion(dir: string, name: string, version: string, problems: RepositoryProblem[]): Promise<ModelVersion | null> {
    const manifestPath = path.join(dir, 'model.json');
    const modelPath = path.join(dir, 'model.onnx');
    const [m, o, baselineStat] = await Promise.allSettled([
      fs.stat(manifestPath),
      fs.stat(modelPath),
      fs.stat(path.join(dir, BASELINE_FILE)),
    ]);
    if (m.status === 'rejected' || o.status === 'rejected') {
      // Both may be missing: name the manifest first, whichever stat failed first.
      problems.push({ file: m.status === 'rejected' ? manifestPath : modelPath, message: 'is missing' });
      return null;
    }
    // A baseline edited in place (or added, or removed) is a new fingerprint too: it is loaded again.
    const b = baselineStat.status === 'fulfilled' ? baselineStat.value : null;
    const fingerprint = `${dir}|${m.value.mtimeMs}|${m.value.size}|${o.value.mtimeMs}|${o.value.size}${b ? `|${b.mtimeMs}|${b.size}` : ''}`;
    const known = this.byFingerprint.get(fingerprint);
    if (known) return known;

    let manifest: ModelManifest;
    try {
      manifest = JSON.parse(await fs.readFile(manifestPath, 'utf8')) as ModelManifest;
    } catch (error) {
      problems.push({ file: manifestPath, message: `is not valid JSON: ${(error as Error).message}` });
      return null;
    }
    if (!manifestValidator(manifest)) {
      for (const p of schemaProblems(manifestValidator.errors, 'is not a manifest field')) problems.push({ file: manifestPath, ...p });
      return null;
    }
    const semantic = checkManifest(manifest, name, version);
    if (semantic.length === 0) semantic.push(...(await this.checkGraph(manifest, modelPath)));
    if (semantic.length > 0) {
      for (const p of semantic)
        problems.push({ file: p.file === 'graph' ? modelPath : manifestPath, ...(p.field ? { field: p.field } : {}), message: p.message });
      return null;
    }
    let baseline: LoadedBaseline | null;
    try {
      baseline = await loadBaseline(dir, manifest);
    } catch (error) {
      if (!(error instanceof BaselineError)) throw error;
      problems.push(...error.problems);
      return null;
    }
    return Object.freeze({
      manifest,
      modelPath,
      manifestPath,
      fingerprint,
      validator: new RowValidator(manifest),
      columnValidator: new ColumnValidator(manifest),
      baseline,
      createdAt: o.value.mtime.toISOString(),
    });
  }

  /** Reads the graph's inputs and outputs and checks them against the manifest. */
  private async checkGraph(manifest: ModelManifest, modelPath: string): Promise<Finding[]> {
    let graph: GraphSignature;
    try {
      graph = await this.graphs.read(modelPath);
    } catch (error) {
      return [{ file: 'graph', message: `${this.graphs.name} cannot load it: ${messageOf(error)}` }];
    }
    return checkGraph(manifest, graph);
  }
}

interface Finding {
  file?: 'graph';
  field?: string;
  message: string;
}

/** What JSON Schema cannot say: names agree with directories, inputs add up, outputs exist. */
export function checkManifest(manifest: ModelManifest, name: string, version: string): Finding[] {
  const findings: Finding[] = [];
  if (manifest.name !== name) findings.push({ field: 'name', message: `is '${manifest.name}' but the directory is '${name}'` });
  if (manifest.version !== version)
    findings.push({ field: 'version', message: `is '${manifest.version}' but the directory is '${version}'` });
  const features = new Map(manifest.features.map((f) => [f.name, f]));
  if (features.size !== manifest.features.length) findings.push({ field: 'features', message: 'feature names must be unique' });
  const used = new Set<string>();
  manifest.inputs.forEach((input, i) => {
    let elements = 0;
    for (const featureName of input.features) {
      const feature = features.get(featureName);
      if (!feature) {
        findings.push({ field: `inputs.${i}.features`, message: `names unknown feature '${featureName}'` });
        continue;
      }
      used.add(featureName);
      elements += featureSize(feature);
      if ((input.dtype === 'string') !== (feature.type === 'string')) {
        findings.push({
          field: `inputs.${i}.features`,
          message: `feature '${featureName}' (${feature.type}) cannot feed a ${input.dtype} input`,
        });
      }
    }
    if (input.shape.slice(1).some((d) => d < 1))
      findings.push({ field: `inputs.${i}.shape`, message: 'only the first (batch) dimension may be dynamic' });
    else if (elements !== rowElements(input.shape)) {
      findings.push({
        field: `inputs.${i}.shape`,
        message: `holds ${rowElements(input.shape)} values per row but its features give ${elements}`,
      });
    }
  });
  for (const feature of manifest.features) {
    if (!used.has(feature.name)) findings.push({ field: 'features', message: `feature '${feature.name}' feeds no input` });
  }
  const outputs = new Set(manifest.outputs.map((o) => o.name));
  const result = manifest.result;
  if (result.kind !== manifest.task) findings.push({ field: 'result.kind', message: `is '${result.kind}' but task is '${manifest.task}'` });
  if (result.output !== undefined && !outputs.has(result.output))
    findings.push({ field: 'result.output', message: `names no output in 'outputs' ('${result.output}')` });
  for (const o of result.outputs ?? [])
    if (!outputs.has(o)) findings.push({ field: 'result.outputs', message: `names no output in 'outputs' ('${o}')` });
  if (result.kind === 'regression') {
    const output = manifest.outputs.find((o) => o.name === result.output);
    const width = output?.shape && output.shape.length > 1 ? output.shape[1] : 1;
    const targets = result.names?.length ?? 1;
    if (width !== undefined && width > 0 && width !== targets) {
      findings.push({ field: 'result.names', message: `names ${targets} target(s) but output '${result.output}' has ${width} columns` });
    }
  }
  if (result.kind === 'embedding') {
    const output = manifest.outputs.find((o) => o.name === result.output);
    if (output && output.dtype !== 'float32')
      findings.push({ field: 'result.output', message: `an embedding must be float32, output '${result.output}' is ${output.dtype}` });
    const width = output?.shape?.[1];
    if (output && (output.shape?.length !== 2 || width !== result.dimensions)) {
      findings.push({
        field: 'result.dimensions',
        message: `is ${result.dimensions ?? 0} but output '${result.output}' has shape ${JSON.stringify(output.shape ?? null)}`,
      });
    }
  }
  if (result.kind === 'classification') {
    const output = manifest.outputs.find((o) => o.name === result.output);
    const width = output?.shape?.[1];
    if (width !== undefined && width > 0 && width !== result.labels?.length) {
      findings.push({
        field: 'result.labels',
        message: `lists ${result.labels?.length ?? 0} labels but output '${result.output}' has ${width} columns`,
      });
    }
  }
  const reference = manifest.metrics?.reference;
  if (reference) {
    const kind = 'mae' in reference ? 'regression' : 'classification';
    if (kind !== manifest.task) {
      findings.push({ field: 'metrics.reference', message: `holds ${kind} scores but task is '${manifest.task}'` });
    }
  }
  return findings;
}

/** Appended to the problems of a version that keeps being served from the copy loaded before. */
const KEPT = ' (the copy loaded before is still served)';

/**
 * Names in `dir` that may be model (or version) directories: matching `pattern` and a directory
 * or a symlink to one. A name in `served` counts whatever it is now, so that a served model or
 * version that cannot be read is reported rather than taken for removed; only one whose name is
 * gone from `dir` is left out. Rejects when `dir` itself cannot be read.
 */
async function candidates(dir: string, served: ReadonlySet<string>, pattern: RegExp): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (!pattern.test(entry.name)) continue; // scripts, __pycache__, READMEs live beside models
    if (served.has(entry.name) || entry.isDirectory()) names.push(entry.name);
    else if (entry.isSymbolicLink() && (await fs.stat(path.join(dir, entry.name)).catch(() => null))?.isDirectory()) names.push(entry.name);
  }
  return names;
}

/** An error's message (not `instanceof Error`: errors of another realm, such as a test VM's, fail it). */
function messageOf(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(error);
}
