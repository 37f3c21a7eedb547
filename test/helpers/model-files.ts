import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ModelManifest } from '@onnx-batch/contracts';
import { MODELS_DIR } from './env';

/** A model version of the repository: `<dir>/<name>/<version>/`. */
export interface ModelVersionRef {
  name: string;
  version: string;
}

/**
 * Every model version of a repository directory, found the way the service finds them (so a
 * model added to models/ is covered by the tests that iterate over this list without edits).
 */
export function discoverModelVersions(dir: string = MODELS_DIR): ModelVersionRef[] {
  const found: ModelVersionRef[] = [];
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^[a-z][a-z0-9-]{0,63}$/.test(d.name))
    .map((d) => d.name)
    .sort();
  for (const name of names) {
    const versions = readdirSync(path.join(dir, name), { withFileTypes: true })
      .filter((d) => d.isDirectory() && /^[0-9]+$/.test(d.name) && existsSync(path.join(dir, name, d.name, 'model.json')))
      .map((d) => d.name)
      .sort((a, b) => Number(a) - Number(b));
    for (const version of versions) found.push({ name, version });
  }
  return found;
}

export function readManifest(name: string, version: string, dir: string = MODELS_DIR): ModelManifest {
  return JSON.parse(readFileSync(manifestPath(dir, name, version), 'utf8')) as ModelManifest;
}

export function manifestPath(dir: string, name: string, version: string): string {
  return path.join(dir, name, version, 'model.json');
}

/** Rewrites a manifest in place through a function of its parsed JSON (its baseline follows a new name or version). */
export function editManifest(dir: string, name: string, version: string, edit: (manifest: Record<string, unknown>) => void): void {
  const file = manifestPath(dir, name, version);
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(manifest);
  writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
  followManifest(path.dirname(file), manifest);
}

/**
 * A copied version's baseline.json names the model and version it was made for; the repository
 * refuses one that disagrees with its manifest. Keeps it naming the (edited) manifest's.
 */
function followManifest(versionDir: string, manifest: Record<string, unknown>): void {
  const file = path.join(versionDir, 'baseline.json');
  if (!existsSync(file)) return;
  const baseline = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  if (baseline.model === manifest.name && baseline.version === manifest.version) return;
  writeFileSync(file, `${JSON.stringify({ ...baseline, model: manifest.name, version: manifest.version }, null, 2)}\n`);
}

/** A temporary directory holding copies of some models of models/ (a private model repository). */
export interface ModelsCopy {
  /** The repository directory (MODELS_DIR of a service). */
  dir: string;
  /** A sibling directory on the same file system, for building a version before renaming it in. */
  staging: string;
  remove(): void;
}

/**
 * Copies models of models/ into a temporary repository: `'iris'` copies the model with every
 * version it has, `'iris/1'` only that version (tests that add versions of their own name the
 * versions they start from, so that a version shipped later does not change them).
 */
export function copyModels(names: string[]): ModelsCopy {
  const root = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-models-'));
  const dir = path.join(root, 'models');
  const staging = path.join(root, 'staging');
  for (const name of names) cpSync(path.join(MODELS_DIR, name), path.join(dir, name), { recursive: true });
  mkdirSync(staging);
  return { dir, staging, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/**
 * Builds version `to` of a model as a copy of version `from` (manifest version rewritten, no
 * default pin, optional further edits) in the staging directory, and answers where it is.
 */
export function buildVersionCopy(
  copy: ModelsCopy,
  name: string,
  from: string,
  to: string,
  edit: (manifest: Record<string, unknown>) => void = () => undefined,
): string {
  const built = path.join(copy.staging, `${name}-${to}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  cpSync(path.join(copy.dir, name, from), built, { recursive: true });
  const file = path.join(built, 'model.json');
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  manifest.version = to;
  delete manifest.default;
  edit(manifest);
  writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
  followManifest(built, manifest);
  return built;
}

/**
 * Adds version `to` of a model as a copy of version `from` (see buildVersionCopy), built beside
 * the repository and renamed in, so a rescan never sees half of it. Answers its directory.
 */
export function addVersionCopy(
  copy: ModelsCopy,
  name: string,
  from: string,
  to: string,
  edit: (manifest: Record<string, unknown>) => void = () => undefined,
): string {
  const target = path.join(copy.dir, name, to);
  renameSync(buildVersionCopy(copy, name, from, to, edit), target);
  return target;
}

/** The base64 string of a byte tensor's raw bytes (row-major), as a client would send it. */
export function toBase64Bytes(tensor: unknown): string {
  const flat = (tensor as unknown[]).flat(Number.POSITIVE_INFINITY) as number[];
  return Buffer.from(Uint8Array.from(flat)).toString('base64');
}

/** A golden row with every base64-capable (uint8) tensor feature sent as base64 instead of arrays. */
export function withBase64Tensors(manifest: ModelManifest, row: Record<string, unknown>): Record<string, unknown> {
  const encoded = { ...row };
  for (const feature of manifest.features) {
    if (feature.type === 'tensor' && feature.base64 === 'uint8') encoded[feature.name] = toBase64Bytes(row[feature.name]);
  }
  return encoded;
}
