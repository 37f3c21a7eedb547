import type { ErrorObject } from 'ajv';

const UNIT = { type: 'number', minimum: 0, maximum: 1 } as const;
const ROWS = { type: 'integer', minimum: 1 } as const;

/** `metrics.reference` of a classifier: its scores on its evaluation set (docs/model-manifest.md). */
const CLASSIFICATION_REFERENCE = {
  type: 'object',
  required: [
    'rows',
    'source',
    'accuracy',
    'macroF1',
    'weightedF1',
    'logLoss',
    'brier',
    'meanConfidence',
    'calibrationError',
    'calibration',
  ],
  additionalProperties: false,
  properties: {
    rows: ROWS,
    source: { type: 'string', maxLength: 2000 },
    accuracy: UNIT,
    macroF1: UNIT,
    weightedF1: UNIT,
    logLoss: { type: 'number', minimum: 0 },
    brier: { type: 'number', minimum: 0, maximum: 2 },
    meanConfidence: UNIT,
    calibrationError: UNIT,
    calibration: {
      type: 'array',
      maxItems: 100,
      items: {
        type: 'object',
        required: ['from', 'to', 'rows', 'confidence', 'accuracy'],
        additionalProperties: false,
        properties: { from: UNIT, to: UNIT, rows: ROWS, confidence: UNIT, accuracy: UNIT },
      },
    },
  },
} as const;

/** `metrics.reference` of a regression model. */
const REGRESSION_REFERENCE = {
  type: 'object',
  required: ['rows', 'source', 'mae', 'rmse', 'r2', 'bias'],
  additionalProperties: false,
  properties: {
    rows: ROWS,
    source: { type: 'string', maxLength: 2000 },
    mae: { type: 'number', minimum: 0 },
    rmse: { type: 'number', minimum: 0 },
    r2: { type: 'number' },
    bias: { type: 'number' },
  },
} as const;

/**
 * JSON Schema of `model.json` (see docs/model-manifest.md). Checked at start-up and whenever a
 * model version appears in the repository.
 */
export const MANIFEST_SCHEMA = {
  $id: 'urn:onnx-batch:model-manifest',
  type: 'object',
  required: ['name', 'version', 'task', 'features', 'inputs', 'outputs', 'result'],
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    name: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,63}$' },
    version: { type: 'string', pattern: '^[0-9]{1,9}$' },
    default: { type: 'boolean' },
    task: { enum: ['classification', 'regression', 'tensor', 'embedding'] },
    description: { type: 'string', maxLength: 2000 },
    chunkSize: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    maxBatchRows: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    features: {
      type: 'array',
      minItems: 1,
      maxItems: 4096,
      items: {
        type: 'object',
        required: ['name', 'type'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$', not: { const: 'id' } },
          type: { enum: ['number', 'integer', 'string', 'tensor'] },
          description: { type: 'string', maxLength: 2000 },
          minimum: { type: 'number' },
          maximum: { type: 'number' },
          minLength: { type: 'integer', minimum: 0 },
          maxLength: { type: 'integer', minimum: 0, maximum: 16_777_216 },
          shape: { type: 'array', minItems: 1, maxItems: 8, items: { type: 'integer', minimum: 1, maximum: 1_000_000 } },
          base64: { enum: ['uint8'] },
        },
        allOf: [
          { if: { required: ['type'], properties: { type: { const: 'tensor' } } }, then: { required: ['shape'] } },
          { if: { required: ['type'], properties: { type: { const: 'string' } } }, then: { required: ['maxLength'] } },
        ],
      },
    },
    inputs: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['name', 'dtype', 'shape', 'features'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1 },
          dtype: { enum: ['float32', 'float64', 'int32', 'int64', 'uint8', 'string'] },
          shape: {
            type: 'array',
            minItems: 1,
            maxItems: 8,
            prefixItems: [{ const: -1 }],
            items: { type: 'integer', minimum: -1 },
          },
          features: { type: 'array', minItems: 1, items: { type: 'string' } },
        },
      },
    },
    outputs: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['name', 'dtype'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1 },
          dtype: { enum: ['float32', 'float64', 'int32', 'int64', 'uint8', 'string', 'bool'] },
          shape: { type: 'array', items: { type: 'integer', minimum: -1 } },
        },
      },
    },
    result: {
      type: 'object',
      required: ['kind'],
      properties: {
        kind: { enum: ['classification', 'regression', 'tensor', 'embedding'] },
        output: { type: 'string' },
        labels: { type: 'array', minItems: 2, items: { type: 'string', minLength: 1 } },
        names: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        outputs: { type: 'array', minItems: 1, items: { type: 'string' } },
        dimensions: { type: 'integer', minimum: 1, maximum: 65_536 },
      },
      allOf: [
        { if: { required: ['kind'], properties: { kind: { const: 'classification' } } }, then: { required: ['output', 'labels'] } },
        { if: { required: ['kind'], properties: { kind: { const: 'regression' } } }, then: { required: ['output'] } },
        { if: { required: ['kind'], properties: { kind: { const: 'embedding' } } }, then: { required: ['output', 'dimensions'] } },
      ],
    },
    metrics: {
      type: 'object',
      properties: {
        accuracy: UNIT,
        evaluation: { type: 'string' },
        // One of the two shapes, told apart by `mae` (an if/then/else rather than a oneOf, so a
        // problem names the one wrong field, not every field of the other shape too).
        reference: { type: 'object', if: { required: ['mae'] }, then: REGRESSION_REFERENCE, else: CLASSIFICATION_REFERENCE },
      },
    },
    evaluation: {
      type: 'object',
      required: ['file', 'rows', 'description'],
      additionalProperties: false,
      properties: {
        // A file of the version's own directory: a plain name, no path separator, not . or ..
        file: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9._-]{0,254}$' },
        rows: ROWS,
        description: { type: 'string', maxLength: 2000 },
      },
    },
    training: { type: 'object' },
  },
} as const;

/**
 * A JSON Schema validator's errors as problems naming the field (dotted path; a missing or unknown
 * property is named itself, not its parent object), `notAllowed` the message for an unknown one.
 * Errors of `if` only say that a `then` failed, which has its own error: they are left out.
 */
export function schemaProblems(
  errors: readonly ErrorObject[] | null | undefined,
  notAllowed: string,
): { field: string; message: string }[] {
  return (errors ?? [])
    .filter((e) => e.keyword !== 'if')
    .map((e) => {
      const params = e.params as { missingProperty?: string; additionalProperty?: string };
      const child =
        e.keyword === 'required' ? params.missingProperty : e.keyword === 'additionalProperties' ? params.additionalProperty : undefined;
      const field = [e.instancePath.replace(/^\//, '').replace(/\//g, '.'), child].filter(Boolean).join('.');
      const message =
        e.keyword === 'required'
          ? 'is required'
          : e.keyword === 'additionalProperties' || e.keyword === 'false schema'
            ? notAllowed
            : (e.message ?? 'is invalid');
      return { field: field || '(root)', message };
    });
}
