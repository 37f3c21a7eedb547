import type { ErrorObject } from 'ajv';

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
    task: { enum: ['classification', 'regression', 'tensor'] },
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
        kind: { enum: ['classification', 'regression', 'tensor'] },
        output: { type: 'string' },
        labels: { type: 'array', minItems: 2, items: { type: 'string', minLength: 1 } },
        names: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        outputs: { type: 'array', minItems: 1, items: { type: 'string' } },
      },
      allOf: [
        { if: { required: ['kind'], properties: { kind: { const: 'classification' } } }, then: { required: ['output', 'labels'] } },
        { if: { required: ['kind'], properties: { kind: { const: 'regression' } } }, then: { required: ['output'] } },
      ],
    },
    metrics: {
      type: 'object',
      properties: { accuracy: { type: 'number', minimum: 0, maximum: 1 }, evaluation: { type: 'string' } },
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
