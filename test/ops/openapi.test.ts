import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Ajv2020 from 'ajv/dist/2020';
import request from 'supertest';
import type { OpenApiDocument } from '@onnx-batch/api';
import { SUBMIT_BODY_SCHEMA } from '@onnx-batch/api/dist/routes/batch-routes';
import { PROBLEM_CONTENT_TYPE } from '@onnx-batch/contracts';
import { rowSchema, type ModelRepository } from '@onnx-batch/shared';
import { ROOT } from '../helpers/env';
import { loadGolden } from '../helpers/golden';
import { servedRoutes } from '../helpers/routes';
import { startStack, type Stack } from '../helpers/stack';

const run = promisify(execFile);
const VALIDATOR_CLI = path.join(ROOT, 'node_modules', '@seriousme', 'openapi-schema-validator', 'bin', 'validate-api-cli.js');
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

type Operation = { responses: Record<string, { content?: Record<string, unknown> }>; security?: unknown[]; tags?: string[] };

function operations(doc: OpenApiDocument): { method: string; path: string; operation: Operation }[] {
  return Object.entries(doc.paths).flatMap(([p, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, operation]) => ({ method: method.toUpperCase(), path: p, operation: operation as unknown as Operation })),
  );
}

/** Every `$ref` in the document, with the JSON pointer it names. */
function refs(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => refs(n, found));
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') found.push(value);
      else refs(value, found);
    }
  }
  return found;
}

function resolvePointer(doc: unknown, pointer: string): unknown {
  return pointer
    .replace(/^#\//, '')
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>((node, part) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined), doc);
}

describe('OpenAPI document at GET /openapi.json', () => {
  let stack: Stack;
  let doc: OpenApiDocument;
  let schedulesRoot: string;

  beforeAll(async () => {
    // Schedules on, so that their routes are served (and must be documented) too.
    schedulesRoot = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-openapi-schedules-'));
    stack = await startStack({ SCHEDULES_ROOT: schedulesRoot }, false);
    const response = await request(stack.url).get('/openapi.json');
    expect(response.status).toBe(200);
    doc = response.body as OpenApiDocument;
  });

  afterAll(async () => {
    await stack.close();
    rmSync(schedulesRoot, { recursive: true, force: true });
  });

  it('when it is checked by an OpenAPI 3.1 schema validator, then it is valid', async () => {
    // Arrange: the validator is an ES module; its CLI runs it outside jest's CommonJS loader.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-openapi-'));
    const file = path.join(dir, 'openapi.json');
    writeFileSync(file, JSON.stringify(doc));

    // Act
    const outcome = await run(process.execPath, [VALIDATOR_CLI, file]).then(
      ({ stdout }) => stdout,
      (error: Error & { stdout?: string }) => error.stdout ?? error.message,
    );
    rmSync(dir, { recursive: true, force: true });

    // Assert
    expect(doc.openapi).toBe('3.1.0');
    expect(JSON.parse(outcome)).toEqual({ valid: true });
  });

  it('when its schemas are checked against the JSON Schema 2020-12 meta-schema (the OpenAPI 3.1 dialect), then every one is valid', () => {
    // Arrange: component schemas, and every `schema` of a parameter, request or response.
    const schemas: [string, unknown][] = Object.entries(doc.components.schemas).map(([name, s]) => [`components.schemas.${name}`, s]);
    const collect = (node: unknown, where: string): void => {
      if (Array.isArray(node)) node.forEach((n, i) => collect(n, `${where}[${i}]`));
      else if (node && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if (key === 'schema') schemas.push([`${where}.schema`, value]);
          else collect(value, `${where}.${key}`);
        }
      }
    };
    collect(doc.paths, 'paths');
    const ajv = new Ajv2020({ strict: false });

    // Act
    const invalid = schemas.filter(([, s]) => !ajv.validateSchema(s as object)).map(([where]) => `${where}: ${ajv.errorsText()}`);

    // Assert
    expect(schemas.length).toBeGreaterThan(100);
    expect(invalid).toEqual([]);
  });

  it('when its $refs are followed, then every one of them resolves', () => {
    const dangling = [...new Set(refs(doc))].filter((r) => !r.startsWith('#/') || resolvePointer(doc, r) === undefined);

    expect(dangling).toEqual([]);
  });

  it(
    "when the app's router stack is walked, then every route it serves is documented, and every documented " + 'operation is served',
    async () => {
      // Arrange
      const served = servedRoutes(stack.api.app);
      const documented = operations(doc).map((o) => `${o.method} ${o.path}`);

      // Act
      const undocumented = served.map((r) => `${r.method} ${r.path}`).filter((r) => !documented.includes(r));
      const notServed = documented.filter((d) => !served.some((r) => `${r.method} ${r.path}` === d));

      // Assert: Bull Board is a mounted sub-application, not a route: it is checked by asking for it.
      expect(served.length).toBeGreaterThan(20);
      expect(undocumented).toEqual([]);
      expect(notServed).toEqual(['GET /admin/queues']);
      expect((await request(stack.url).get('/admin/queues')).status).toBe(200);
    },
  );

  it(
    'when an operation can fail, then its error answers are problem+json naming their codes (/v2: the protocol’s {error}), ' +
      'and guarded routes document 401, 403 and 429',
    () => {
      const wrong: string[] = [];
      for (const { method, path: p, operation } of operations(doc)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          if (Number(status) < 400) continue;
          // OpenAI-compatible operations answer errors in OpenAI's shape, /v2 in the Open Inference Protocol's (ADR 0011): JSON.
          const type = operation.tags?.includes('openai') || p.startsWith('/v2') ? 'application/json' : PROBLEM_CONTENT_TYPE;
          if (!response.content || Object.keys(response.content).join() !== type) wrong.push(`${method} ${p} ${status}`);
        }
        const guarded = /^\/(v1|batch-predict|batch-result|v2\/models)/.test(p);
        if (guarded)
          for (const status of ['401', '403', '429']) if (!operation.responses[status]) wrong.push(`${method} ${p} lacks ${status}`);
        if (!guarded && p !== '/admin/queues' && operation.security?.length !== 0)
          wrong.push(`${method} ${p} should be open (security: [])`);
      }

      expect(wrong).toEqual([]);
    },
  );

  it('when the submit body is described, then its envelope is the one the API validates with (SUBMIT_BODY_SCHEMA)', () => {
    const variants = (
      doc.components.schemas.SubmitRequest as {
        oneOf: { title: string; required: string[]; properties: Record<string, Record<string, unknown>> }[];
      }
    ).oneOf;
    const models = stack.api.repository.list().map((m) => m.name);

    expect(variants.map((v) => v.title).sort()).toEqual([...models].sort());
    for (const variant of variants) {
      expect(variant.required).toEqual(SUBMIT_BODY_SCHEMA.required);
      expect(Object.keys(variant.properties)).toEqual(Object.keys(SUBMIT_BODY_SCHEMA.properties));
      expect(variant.properties.priority).toEqual(SUBMIT_BODY_SCHEMA.properties.priority);
      expect(variant.properties.callbackUrl).toEqual(SUBMIT_BODY_SCHEMA.properties.callbackUrl);
      expect(variant.properties.model).toMatchObject({ ...SUBMIT_BODY_SCHEMA.properties.model, const: variant.title });
    }
  });

  it("when a model version is described, then its row schema is the manifest's rowSchema(), for every version served", () => {
    const versions = stack.api.repository.list().flatMap((m) => m.versions);

    expect(versions.length).toBeGreaterThanOrEqual(3);
    for (const v of versions) {
      const { description: _description, ...row } = doc.components.schemas[`${v.manifest.name}.v${v.manifest.version}.Row`] as Record<
        string,
        unknown
      >;
      expect(row).toEqual(rowSchema(v.manifest));
    }
  });

  it(
    "when the golden rows of every model are checked against the document's SubmitRequest, then they pass, and an out-of-bounds " +
      'row does not',
    () => {
      // Arrange: the document's schemas, compiled as JSON Schema 2020-12 (what OpenAPI 3.1 uses).
      const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: false });
      ajv.addSchema({ $id: 'openapi.json', components: doc.components }, 'openapi.json');
      const validate = ajv.compile({ $ref: 'openapi.json#/components/schemas/SubmitRequest' });
      const accepts = (body: unknown): boolean => validate(body);
      const bodies = stack.api.repository.list().flatMap((m) =>
        m.versions.map((v) => ({
          model: m.name,
          version: v.manifest.version,
          inputs: loadGolden(m.name, v.manifest.version).inputs.slice(0, 3),
        })),
      );

      // Act
      const refused = bodies.filter((b) => !accepts(b)).map((b) => `${b.model}@${b.version}: ${ajv.errorsText(validate.errors)}`);
      const outOfBounds = accepts({ model: 'iris', inputs: [{ sepal_length: 5.1, sepal_width: 3.5, petal_length: 11, petal_width: 0.2 }] });

      // Assert
      expect(refused).toEqual([]);
      expect(outOfBounds).toBe(false);
    },
  );

  it('when /docs is opened, then Swagger UI and its assets come from this origin, under a CSP of its own', async () => {
    // Act
    const redirect = await request(stack.url).get('/docs');
    const page = await request(stack.url).get('/docs/');
    const bundle = await request(stack.url).get('/docs/swagger-ui-bundle.js');
    const init = await request(stack.url).get('/docs/swagger-ui-init.js');

    // Assert
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe('/docs/');
    expect(page.status).toBe(200);
    expect(page.text).toContain('./swagger-ui-bundle.js');
    expect(page.text).not.toMatch(/<script[^>]*\bsrc=["']?(https?:)?\/\//);
    expect(page.text).not.toMatch(/<script>(?!\s*<\/script>)/);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(bundle.status).toBe(200);
    expect(bundle.headers['content-type']).toMatch(/javascript/);
    expect(init.text).toContain('"swaggerUrl": "/openapi.json"');
    expect(init.text).toContain('"validatorUrl": null');
  });
});

describe('OpenAPI document when the model repository changes', () => {
  let stack: Stack;
  let models: string;

  beforeAll(async () => {
    models = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-openapi-models-'));
    cpSync(path.join(ROOT, 'models', 'iris', '2'), path.join(models, 'iris', '2'), { recursive: true });
    stack = await startStack({ MODELS_DIR: models, MODEL_RELOAD_INTERVAL_MS: '100' }, false);
  });

  afterAll(async () => {
    await stack.close();
    rmSync(models, { recursive: true, force: true });
  });

  async function documentedModels(): Promise<string[]> {
    const doc = (await request(stack.url).get('/openapi.json')).body as OpenApiDocument;
    return Object.keys(doc.components.schemas).filter((k) => k.endsWith('.Row'));
  }

  async function rescanned(repository: ModelRepository, wanted: string): Promise<void> {
    for (let i = 0; i < 100 && !repository.list().some((m) => m.name === wanted); i++) await new Promise((r) => setTimeout(r, 100));
  }

  it('when a model is added to the repository, then the next /openapi.json describes it', async () => {
    // Arrange
    expect(await documentedModels()).toEqual(['iris.v2.Row']);

    // Act
    cpSync(path.join(ROOT, 'models', 'spam', '1'), path.join(models, 'spam', '1'), { recursive: true });
    await rescanned(stack.api.repository, 'spam');

    // Assert
    expect((await documentedModels()).sort()).toEqual(['iris.v2.Row', 'spam.v1.Row']);
  });
});
