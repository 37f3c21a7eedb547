import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import type { FieldError, ModelManifest } from '@onnx-batch/contracts';
import { arrayRowSchema, objectRowSchema } from './row-schema';

const ajv = new Ajv2020({ allErrors: false, strict: true, strictNumbers: true, allowUnionTypes: true });

/**
 * Validates rows of one model version against the schema derived from its manifest.
 * Compiled once per manifest; `check` answers with the offending field of the row, or null.
 */
export class RowValidator {
  private readonly validateObject: ValidateFunction;
  private readonly validateArray: ValidateFunction;
  private readonly featureNames: string[];

  constructor(manifest: ModelManifest) {
    this.validateObject = ajv.compile(objectRowSchema(manifest));
    this.validateArray = ajv.compile(arrayRowSchema(manifest));
    this.featureNames = manifest.features.map((f) => f.name);
  }

  /** Null when the row is valid; otherwise what is wrong with it, naming the field. */
  check(row: unknown): Omit<FieldError, 'row' | 'line'> | null {
    if (Array.isArray(row)) {
      if (this.validateArray(row)) return null;
      return this.describe(this.validateArray.errors?.[0], true);
    }
    if (typeof row === 'object' && row !== null) {
      if (this.validateObject(row)) return null;
      return this.describe(this.validateObject.errors?.[0], false);
    }
    return { message: `must be an object of features (${this.featureNames.join(', ')}) or an array of their values` };
  }

  private describe(error: ErrorObject | undefined, arrayForm: boolean): Omit<FieldError, 'row' | 'line'> {
    if (!error) return { message: 'is invalid' };
    const path = error.instancePath.split('/').slice(1);
    let field: string | undefined;
    if (path.length > 0) {
      const head = path[0] ?? '';
      field = arrayForm ? (this.featureNames[Number(head)] ?? `[${head}]`) : head;
      if (path.length > 1)
        field += path
          .slice(1)
          .map((p) => `[${p}]`)
          .join('');
    }
    if (error.keyword === 'required') {
      const missing = String((error.params as { missingProperty?: string }).missingProperty);
      return { field: missing, message: 'is required' };
    }
    if (error.keyword === 'additionalProperties') {
      const extra = String((error.params as { additionalProperty?: string }).additionalProperty);
      return { field: extra, message: `is not a feature of this model (features: ${this.featureNames.join(', ')})` };
    }
    if (field === 'id' && !arrayForm) return { field, message: 'must be a string (at most 256 characters) or an integer' };
    if (arrayForm && path.length === 0 && (error.keyword === 'minItems' || error.keyword === 'maxItems' || error.keyword === 'items')) {
      return { message: `must hold exactly ${this.featureNames.length} values, in order: ${this.featureNames.join(', ')}` };
    }
    return field === undefined ? { message: error.message ?? 'is invalid' } : { field, message: error.message ?? 'is invalid' };
  }
}
