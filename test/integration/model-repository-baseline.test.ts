import { readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ModelRepository, ModelRepositoryError, type RepositoryChange } from '@onnx-batch/shared';
import { copyModels, type ModelsCopy } from '../helpers/model-files';

/**
 * Baselines load with their version: a version carries its baseline (or null), a broken
 * baseline.json is fatal at start-up and, on a rescan, reported while the copy loaded before
 * is still served — as a broken manifest is.
 */
const KEPT = ' (the copy loaded before is still served)';

describe('ModelRepository with baseline.json (temp copy of models/iris and models/spam)', () => {
  let copy: ModelsCopy;
  const baselineOf = (version: string): string => path.join(copy.dir, 'iris', version, 'baseline.json');
  /** Rewrites iris <version>'s baseline.json through a function of its text (a later mtime, so a rescan sees it). */
  const editBaseline = (version: string, edit: (text: string) => string): void => {
    const file = baselineOf(version);
    writeFileSync(file, edit(readFileSync(file, 'utf8')));
    const later = new Date(Date.now() + 5000);
    utimesSync(file, later, later);
  };

  beforeEach(() => {
    copy = copyModels(['iris/1', 'iris/2', 'spam']);
  });

  afterEach(() => {
    copy.remove();
  });

  it('when a repository opens, then each version carries its loaded baseline (spam with its vocabulary), or null without one', async () => {
    rmSync(baselineOf('1'));

    const repository = await ModelRepository.open(copy.dir);
    try {
      const v2 = repository.resolve('iris', '2');
      const spam = repository.resolve('spam', '1');

      expect(repository.resolve('iris', '1').baseline).toBeNull();
      expect(v2.baseline?.baseline.statistics.map((s) => s.name)).toEqual(['sepal_length', 'sepal_width', 'petal_length', 'petal_width']);
      expect(v2.baseline?.digest).toMatch(/^[0-9a-f]{16}$/);
      expect(spam.baseline?.vocabulary?.tokens.size).toBeGreaterThan(1000);
      expect(spam.baseline?.digest).not.toBe(v2.baseline?.digest);
    } finally {
      repository.close();
    }
  });

  it('when a baseline.json is not JSON at start-up, then opening fails naming the file', async () => {
    editBaseline('2', (text) => text.slice(0, 40));

    const error = await ModelRepository.open(copy.dir).then(
      () => null,
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(ModelRepositoryError);
    expect((error as ModelRepositoryError).problems).toEqual([
      { file: baselineOf('2'), message: expect.stringMatching(/^is not valid JSON/) },
    ]);
  });

  it('when a baseline.json disagrees with its manifest at start-up, then opening fails naming the file and the field', async () => {
    editBaseline('1', (text) => text.replace('"feature": "petal_width"', '"feature": "petal_area"'));

    const error = await ModelRepository.open(copy.dir).then(
      () => null,
      (e: unknown) => e,
    );

    expect((error as ModelRepositoryError).problems).toEqual([
      { file: baselineOf('1'), field: 'statistics.3.feature', message: expect.stringContaining("unknown feature 'petal_area'") },
    ]);
    expect((error as Error).message).toContain('baseline.json (statistics.3.feature)');
  });

  describe('on a rescan', () => {
    let repository: ModelRepository;
    let changes: RepositoryChange[];

    beforeEach(async () => {
      repository = await ModelRepository.open(copy.dir);
      changes = [];
      repository.onChange((change) => changes.push(change));
    });

    afterEach(() => repository.close());

    it(
      'when a served baseline.json turns invalid, then the copy loaded before is still served and the problem reported; once ' +
        'fixed, the new baseline is loaded as a new fingerprint',
      async () => {
        // Arrange
        const before = repository.resolve('iris', '2');
        const text = readFileSync(baselineOf('2'), 'utf8');

        // Act: broken, then fixed with other proportions
        editBaseline('2', (t) => t.replace('"rows": 150', '"rows": "many"'));
        await repository.refresh();
        const whileBroken = repository.resolve('iris', '2');
        const problems = repository.problems;
        writeFileSync(baselineOf('2'), text.replace('"rows": 150', '"rows": 151'));
        await repository.refresh();
        const after = repository.resolve('iris', '2');

        // Assert
        expect(whileBroken).toBe(before);
        expect(problems).toEqual([{ file: baselineOf('2'), field: 'reference.rows', message: `must be integer${KEPT}` }]);
        expect(repository.problems).toEqual([]);
        expect(after.fingerprint).not.toBe(before.fingerprint);
        expect(after.baseline?.baseline.reference.rows).toBe(151);
        expect(after.baseline?.digest).not.toBe(before.baseline?.digest);
        expect(changes.map((c) => [c.added.map((v) => v.fingerprint), c.removed.map((v) => v.fingerprint)])).toEqual([
          [[after.fingerprint], [before.fingerprint]],
        ]);
      },
    );

    it('when a baseline.json is removed, then the version is served on without one', async () => {
      const before = repository.resolve('iris', '1');
      rmSync(baselineOf('1'));

      await repository.refresh();

      expect(before.baseline).not.toBeNull();
      expect(repository.resolve('iris', '1').baseline).toBeNull();
      expect(repository.resolve('iris', '1').fingerprint).not.toBe(before.fingerprint);
      expect(repository.problems).toEqual([]);
    });
  });
});
