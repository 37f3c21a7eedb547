import type { FeatureSpec, ModelManifest } from '@onnx-batch/contracts';

/** The optional per-row id a client may attach; results echo it. */
export const ROW_ID_SCHEMA = {
  anyOf: [
    { type: 'string', maxLength: 256 },
    { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 },
  ],
} as const;

/** JSON Schema of one feature value, derived from the manifest. */
export function featureValueSchema(feature: FeatureSpec): Record<string, unknown> {
  const description = feature.description ? { description: feature.description } : {};
  const bounds = {
    ...(feature.minimum !== undefined ? { minimum: feature.minimum } : {}),
    ...(feature.maximum !== undefined ? { maximum: feature.maximum } : {}),
  };
  switch (feature.type) {
    case 'number':
      return { type: 'number', ...bounds, ...description };
    case 'integer':
      return { type: 'integer', ...bounds, ...description };
    case 'string':
      return {
        type: 'string',
        ...(feature.minLength !== undefined ? { minLength: feature.minLength } : {}),
        ...(feature.maxLength !== undefined ? { maxLength: feature.maxLength } : {}),
        ...description,
      };
    case 'tensor': {
      const shape = feature.shape ?? [];
      // Byte-valued tensors (base64 uint8) are stored as bytes, so their array form takes integers.
      let schema: Record<string, unknown> = { type: feature.base64 === 'uint8' ? 'integer' : 'number', ...bounds };
      for (let d = shape.length - 1; d >= 0; d--) {
        schema = { type: 'array', minItems: shape[d], maxItems: shape[d], items: schema };
      }
      if (feature.base64 !== 'uint8') return { ...schema, ...description };
      const bytes = shape.reduce((a, b) => a * b, 1);
      const base64Length = 4 * Math.ceil(bytes / 3);
      const base64 = {
        type: 'string',
        minLength: base64Length,
        maxLength: base64Length,
        pattern: '^[A-Za-z0-9+/]*={0,2}$',
        contentEncoding: 'base64',
      };
      return {
        ...description,
        // if/then/else rather than oneOf: a bad value gets the errors of the form it was sent in.
        if: { type: 'string' },
        then: base64,
        else: schema,
      };
    }
  }
}

/** Schema of a row sent as an object keyed by feature name (plus an optional `id`). */
export function objectRowSchema(manifest: ModelManifest): Record<string, unknown> {
  const properties: Record<string, unknown> = { id: ROW_ID_SCHEMA };
  for (const feature of manifest.features) properties[feature.name] = featureValueSchema(feature);
  return {
    type: 'object',
    required: manifest.features.map((f) => f.name),
    additionalProperties: false,
    properties,
  };
}

/** Schema of a row sent as an array of feature values in manifest order. */
export function arrayRowSchema(manifest: ModelManifest): Record<string, unknown> {
  return {
    type: 'array',
    minItems: manifest.features.length,
    maxItems: manifest.features.length,
    prefixItems: manifest.features.map(featureValueSchema),
    items: false,
  };
}

/** The published schema of a row: either form (used in the API description). */
export function rowSchema(manifest: ModelManifest): Record<string, unknown> {
  return { oneOf: [objectRowSchema(manifest), arrayRowSchema(manifest)] };
}
