import { featureSize, rowElements, type ModelManifest } from '@onnx-batch/contracts';
import { checkManifest } from '@onnx-batch/shared';
import { discoverModelVersions } from '../helpers/model-files';
import { imageManifest, int64Manifest, multiInputManifest, realManifest, textManifest } from './fixtures';

/** A deep copy of iris v1, to break one thing at a time. */
function iris(): ModelManifest {
  return structuredClone(realManifest('iris', '1'));
}

describe('checkManifest', () => {
  it.each(discoverModelVersions().map(({ name, version }) => [name, version]))(
    'when the real manifest models/%s/%s is checked, then there are no findings',
    (name, version) => {
      expect(checkManifest(realManifest(name, version), name, version)).toEqual([]);
    },
  );

  it.each([
    ['images', imageManifest()],
    ['text', textManifest()],
    ['counts', int64Manifest()],
    ['multi', multiInputManifest()],
  ])('when the synthetic manifest %s is checked, then there are no findings', (name, manifest) => {
    expect(checkManifest(manifest, name, '1')).toEqual([]);
  });

  it('when the name differs from the directory, then the finding names the field and both values', () => {
    expect(checkManifest(iris(), 'irises', '1')).toEqual([{ field: 'name', message: "is 'iris' but the directory is 'irises'" }]);
  });

  it('when the version differs from the directory, then the finding names the field and both values', () => {
    expect(checkManifest(iris(), 'iris', '3')).toEqual([{ field: 'version', message: "is '1' but the directory is '3'" }]);
  });

  it('when an input names an unknown feature, then the finding names the input and the feature', () => {
    // Arrange
    const manifest = iris();
    manifest.inputs[0]?.features.splice(3, 1, 'petal_colour');

    // Act
    const findings = checkManifest(manifest, 'iris', '1');

    // Assert
    expect(findings).toContainEqual({ field: 'inputs.0.features', message: "names unknown feature 'petal_colour'" });
  });

  it('when the per-row element count does not match the features, then the finding is on inputs.0.shape', () => {
    // Arrange
    const manifest = iris();
    (manifest.inputs[0] as { shape: number[] }).shape = [-1, 5];

    // Act
    const findings = checkManifest(manifest, 'iris', '1');

    // Assert
    expect(findings).toEqual([{ field: 'inputs.0.shape', message: 'holds 5 values per row but its features give 4' }]);
  });

  it('when a tensor feature does not fill its input shape, then the counts compare product(shape)', () => {
    // Arrange
    const manifest = imageManifest();
    (manifest.inputs[0] as { shape: number[] }).shape = [-1, 3, 28, 28];

    // Act
    const findings = checkManifest(manifest, 'images', '1');

    // Assert
    expect(findings).toEqual([{ field: 'inputs.0.shape', message: 'holds 2352 values per row but its features give 784' }]);
  });

  it('when a non-batch dimension is dynamic, then the finding says only the batch dimension may be', () => {
    // Arrange
    const manifest = iris();
    (manifest.inputs[0] as { shape: number[] }).shape = [-1, -1];

    // Act
    const findings = checkManifest(manifest, 'iris', '1');

    // Assert
    expect(findings).toEqual([{ field: 'inputs.0.shape', message: 'only the first (batch) dimension may be dynamic' }]);
  });

  it('when a feature feeds no input, then the finding names the feature', () => {
    // Arrange
    const manifest = iris();
    manifest.features.push({ name: 'stem_length', type: 'number' });

    // Act
    const findings = checkManifest(manifest, 'iris', '1');

    // Assert
    expect(findings).toEqual([{ field: 'features', message: "feature 'stem_length' feeds no input" }]);
  });

  it('when two features share a name, then the finding says names must be unique', () => {
    // Arrange
    const manifest = iris();
    manifest.features.push({ name: 'sepal_length', type: 'number' });

    // Act
    const findings = checkManifest(manifest, 'iris', '1');

    // Assert
    expect(findings).toContainEqual({ field: 'features', message: 'feature names must be unique' });
  });

  it('when a string feature feeds a float input, then the finding names the feature and both types', () => {
    // Arrange
    const manifest = iris();
    (manifest.features[0] as { type: string; maxLength?: number }).type = 'string';

    // Act
    const findings = checkManifest(manifest, 'iris', '1');

    // Assert
    expect(findings).toEqual([{ field: 'inputs.0.features', message: "feature 'sepal_length' (string) cannot feed a float32 input" }]);
  });

  it('when result.output names no declared output, then the finding quotes the name', () => {
    // Arrange
    const manifest = iris();
    manifest.result.output = 'probs';

    // Act
    const findings = checkManifest(manifest, 'iris', '1');

    // Assert
    expect(findings).toEqual([{ field: 'result.output', message: "names no output in 'outputs' ('probs')" }]);
  });

  it('when result.outputs of a tensor result names an undeclared output, then the finding quotes it', () => {
    // Arrange
    const manifest = multiInputManifest();
    manifest.result.outputs = ['embedding', 'logits'];

    // Act
    const findings = checkManifest(manifest, 'multi', '1');

    // Assert
    expect(findings).toEqual([{ field: 'result.outputs', message: "names no output in 'outputs' ('logits')" }]);
  });

  it('when the label count differs from the output width, then the finding gives both counts', () => {
    // Arrange
    const manifest = iris();
    manifest.result.labels = ['setosa', 'versicolor'];

    // Act
    const findings = checkManifest(manifest, 'iris', '1');

    // Assert
    expect(findings).toEqual([{ field: 'result.labels', message: "lists 2 labels but output 'probabilities' has 3 columns" }]);
  });

  it('when the result kind differs from the task, then the finding names both', () => {
    // Arrange
    const manifest = iris();
    manifest.task = 'regression';

    // Act
    const findings = checkManifest(manifest, 'iris', '1');

    // Assert
    expect(findings).toEqual([{ field: 'result.kind', message: "is 'classification' but task is 'regression'" }]);
  });

  it('when metrics.reference holds regression scores on a classifier, then the finding names both kinds', () => {
    // Arrange
    const manifest = iris();
    manifest.metrics = { ...manifest.metrics, reference: { rows: 150, source: 'test', mae: 1, rmse: 1, r2: 0.5, bias: 0 } };

    // Act
    const findings = checkManifest(manifest, 'iris', '1');

    // Assert
    expect(findings).toEqual([{ field: 'metrics.reference', message: "holds regression scores but task is 'classification'" }]);
  });

  it('when several things are wrong, then every finding is reported', () => {
    // Arrange
    const manifest = iris();
    manifest.result.output = 'probs';

    // Act
    const findings = checkManifest(manifest, 'other', '9');

    // Assert
    expect(findings.map((f) => f.field)).toEqual(['name', 'version', 'result.output']);
  });
});

describe('featureSize and rowElements', () => {
  it('when a feature is a scalar, then it contributes one element', () => {
    expect(featureSize({ name: 'x', type: 'number' })).toBe(1);
  });

  it('when a feature is a tensor, then it contributes the product of its shape', () => {
    expect(featureSize({ name: 'image', type: 'tensor', shape: [28, 28] })).toBe(784);
  });

  it('when an input shape has only the batch axis, then a row holds one element', () => {
    expect(rowElements([-1])).toBe(1);
  });

  it('when an input shape has fixed dimensions, then a row holds their product', () => {
    expect(rowElements([-1, 1, 28, 28])).toBe(784);
  });
});
