/**
 * JSON Schema of `baseline.json` (see docs/model-manifest.md). What a schema cannot say — edges
 * strictly increasing, proportions summing to 1, statistics and labels agreeing with the
 * manifest — loadBaseline checks itself.
 */

const MAX_EDGES = 9;

/** proportions must hold edges.length + 1 numbers: one if/then per possible number of edges. */
const PROPORTIONS_FOLLOW_EDGES = Array.from({ length: MAX_EDGES }, (_, i) => ({
  if: { required: ['edges'], properties: { edges: { type: 'array', minItems: i + 1, maxItems: i + 1 } } },
  then: { properties: { proportions: { type: 'array', minItems: i + 2, maxItems: i + 2 } } },
}));

const EDGES = { type: 'array', minItems: 1, maxItems: MAX_EDGES, items: { type: 'number' } } as const;
const PROPORTIONS = { type: 'array', minItems: 2, items: { type: 'number', minimum: 0, maximum: 1 } } as const;

export const BASELINE_SCHEMA = {
  $id: 'urn:onnx-batch:baseline',
  type: 'object',
  required: ['format', 'model', 'version', 'reference', 'statistics'],
  additionalProperties: false,
  properties: {
    format: { const: 1 },
    model: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,63}$' },
    version: { type: 'string', pattern: '^[0-9]{1,9}$' },
    reference: {
      type: 'object',
      required: ['rows'],
      additionalProperties: false,
      properties: {
        rows: { type: 'integer', minimum: 1 },
        description: { type: 'string', maxLength: 2000 },
      },
    },
    statistics: {
      type: 'array',
      maxItems: 16384,
      items: {
        type: 'object',
        required: ['name', 'feature', 'measure', 'edges', 'proportions'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 128 },
          feature: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' },
          measure: { enum: ['value', 'length', 'oov', 'mean', 'std'] },
          edges: EDGES,
          proportions: PROPORTIONS,
        },
        allOf: PROPORTIONS_FOLLOW_EDGES,
      },
    },
    vocabulary: {
      type: 'object',
      required: ['file', 'tokenPattern', 'minLength', 'lowercase'],
      additionalProperties: false,
      properties: {
        // a file of the version's own directory
        file: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$' },
        tokenPattern: { type: 'string', minLength: 1, maxLength: 1000 },
        minLength: { type: 'integer', minimum: 1 },
        lowercase: { type: 'boolean' },
      },
    },
    prediction: {
      type: 'object',
      required: ['kind', 'proportions'],
      additionalProperties: false,
      properties: {
        kind: { enum: ['label', 'value'] },
        labels: { type: 'array', minItems: 2, items: { type: 'string', minLength: 1 } },
        edges: EDGES,
        proportions: PROPORTIONS,
      },
      allOf: [
        {
          if: { required: ['kind'], properties: { kind: { const: 'label' } } },
          then: { required: ['labels'], properties: { edges: false } },
        },
        {
          if: { required: ['kind'], properties: { kind: { const: 'value' } } },
          then: { required: ['edges'], properties: { labels: false } },
        },
        ...PROPORTIONS_FOLLOW_EDGES,
      ],
    },
  },
} as const;
