import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { MODELS_DIR, ROOT } from '../helpers/env';

/** The command `npm run reference` runs, as a process of its own (ONNX Runtime's typed arrays and jest's realm do not mix). */
const COMMAND = path.join(ROOT, 'worker', 'dist', 'tools', 'quality-reference.js');

function reference(model: string, version: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [COMMAND, '--models-dir', MODELS_DIR, '--model', model, '--version', version, '--out', '-'],
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout));
      },
    );
  });
}

// Each version's metrics.reference (its figures on its evaluation set, what gauges, alerts and the
// quality gate compare with) is what `npm run reference` computes now, through the real model:
// a retrained model.onnx with a stale reference fails here.

const versions = readdirSync(MODELS_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) =>
    readdirSync(path.join(MODELS_DIR, d.name), { withFileTypes: true })
      .filter((v) => v.isDirectory() && /^\d+$/.test(v.name))
      .map((v) => [d.name, v.name] as const),
  )
  .map(([model, version]) => {
    const manifest = JSON.parse(readFileSync(path.join(MODELS_DIR, model, version, 'model.json'), 'utf8')) as {
      evaluation?: unknown;
      metrics?: { reference?: unknown };
    };
    return { model, version, manifest };
  })
  .filter((v) => v.manifest.evaluation !== undefined);

describe('npm run reference', () => {
  it('when the repository is scanned, then every version with an evaluation set carries a reference', () => {
    expect(versions.map((v) => `${v.model}/${v.version}`)).toEqual(
      expect.arrayContaining(['iris/1', 'iris/2', 'iris/3', 'spam/1', 'fashion/1', 'diabetes/1']),
    );
    for (const v of versions) expect(v.manifest.metrics?.reference).toBeDefined();
  });

  it.each(versions.map((v) => [`${v.model}/${v.version}`, v] as const))(
    'when %s is scored on its evaluation set again, then the committed reference is reproduced exactly',
    async (_name, v) => {
      expect(await reference(v.model, v.version)).toEqual(v.manifest.metrics?.reference);
    },
  );
});
