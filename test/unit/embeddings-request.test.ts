import Ajv2020 from 'ajv/dist/2020';
import { makeProblem, ProblemError, type ModelManifest } from '@onnx-batch/contracts';
import { checkManifest, MANIFEST_SCHEMA, resultColumns, resultCsvHeader } from '@onnx-batch/shared';
import { compatError, compatStatus } from '@onnx-batch/api/dist/compat/compat-errors';
import {
  checkEmbeddingModel,
  countTokens,
  embeddingModelName,
  embeddingRowsFor,
  embeddingsResponseBody,
  parseEmbeddingsRequest,
  tokensOf,
} from '@onnx-batch/api/dist/compat/embeddings-request';
import { readManifest } from '../helpers/model-files';

const embedder = (): ModelManifest => structuredClone(readManifest('textembed', '1'));

function problemOf(run: () => unknown): { code: string; field: unknown } {
  try {
    run();
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    const errors = error.extensions.errors as { field: string }[] | undefined;
    return { code: error.code, field: errors?.[0]?.field };
  }
  throw new Error('did not throw');
}

describe('parseEmbeddingsRequest', () => {
  it('when input is a string, then one input, float by default, no dimensions', () => {
    expect(parseEmbeddingsRequest({ model: 'textembed', input: 'hello', user: 'u1' })).toEqual({
      model: 'textembed',
      inputs: ['hello'],
      encodingFormat: 'float',
    });
  });

  it('when input is an array with base64 and dimensions, then all of them come back', () => {
    expect(parseEmbeddingsRequest({ model: 'm@2', input: ['a', 'b'], encoding_format: 'base64', dimensions: 64 })).toEqual({
      model: 'm@2',
      inputs: ['a', 'b'],
      encodingFormat: 'base64',
      dimensions: 64,
    });
  });

  it.each([
    ['not an object', [], '(root)'],
    ['no model', { input: 'a' }, 'model'],
    ['an empty model', { model: '', input: 'a' }, 'model'],
    ['no input', { model: 'm' }, 'input'],
    ['an empty string', { model: 'm', input: '' }, 'input'],
    ['an empty array', { model: 'm', input: [] }, 'input'],
    ['a token array', { model: 'm', input: [1, 2] }, 'input'],
    ['token arrays', { model: 'm', input: [[1], [2]] }, 'input'],
    ['a non-string element', { model: 'm', input: ['a', {}] }, 'input[1]'],
    ['an empty element', { model: 'm', input: ['a', ''] }, 'input[1]'],
    ['a number input', { model: 'm', input: 3 }, 'input'],
    ['another encoding', { model: 'm', input: 'a', encoding_format: 'int8' }, 'encoding_format'],
    ['dimensions 0', { model: 'm', input: 'a', dimensions: 0 }, 'dimensions'],
    ['dimensions 1.5', { model: 'm', input: 'a', dimensions: 1.5 }, 'dimensions'],
    ['a numeric user', { model: 'm', input: 'a', user: 1 }, 'user'],
    ['an unknown field', { model: 'm', input: 'a', temperature: 0 }, 'temperature'],
  ])('when the body has %s, then OB_ERR_INVALID_REQUEST names %#', (_what, body, field) => {
    expect(problemOf(() => parseEmbeddingsRequest(body))).toEqual({ code: 'OB_ERR_INVALID_REQUEST', field });
  });
});

describe('embedding rows, model checks and the response body', () => {
  it('when the model is textembed, then one row a text in its feature text', () => {
    expect(embeddingRowsFor(embedder(), ['a', 'b c'])).toEqual([{ text: 'a' }, { text: 'b c' }]);
  });

  it('when the model is a classifier, then 400 names model; when dimensions differ, then 400 names dimensions', () => {
    expect(problemOf(() => embeddingRowsFor(readManifest('spam', '1'), ['a']))).toEqual({ code: 'OB_ERR_INVALID_REQUEST', field: 'model' });
    expect(problemOf(() => checkEmbeddingModel(embedder(), 32))).toEqual({ code: 'OB_ERR_INVALID_REQUEST', field: 'dimensions' });
    expect(() => checkEmbeddingModel(embedder(), 64)).not.toThrow();
  });

  it('when a model names a version, then it is split at the last @', () => {
    expect(embeddingModelName('textembed')).toEqual({ name: 'textembed' });
    expect(embeddingModelName('textembed@1')).toEqual({ name: 'textembed', version: '1' });
  });

  it('when tokens are counted, then as the graph: lowercased runs of letters, digits and _ of 2+ characters', () => {
    expect(countTokens('Click HERE, a b c!! x_1 42 été 中文 🎉')).toBe(6);
    expect(countTokens('')).toBe(0);
  });

  it('when the body is made, then it has OpenAI’s shape; base64 is the little-endian float32 bytes', () => {
    const vectors = [
      [0.5, -0.25],
      [1, 0],
    ];
    const float = embeddingsResponseBody('textembed', vectors, tokensOf(['hello world', 'ok']), 'float');
    expect(float).toEqual({
      object: 'list',
      data: [
        { object: 'embedding', index: 0, embedding: [0.5, -0.25] },
        { object: 'embedding', index: 1, embedding: [1, 0] },
      ],
      model: 'textembed',
      usage: { prompt_tokens: 3, total_tokens: 3 },
    });
    const base64 = embeddingsResponseBody('textembed', vectors, tokensOf(['hello world', 'ok']), 'base64');
    const bytes = Buffer.from(base64.data[0]?.embedding as string, 'base64');
    expect([bytes.readFloatLE(0), bytes.readFloatLE(4)]).toEqual([0.5, -0.25]);
    expect(bytes.toString('hex')).toBe('0000003f000080be');
  });
});

describe('compatError', () => {
  it.each([
    ['OB_ERR_MODEL_NOT_FOUND', {}, 404, 'invalid_request_error', 'model', 'model_not_found'],
    ['OB_ERR_UNAUTHORIZED', {}, 401, 'invalid_request_error', null, 'invalid_api_key'],
    ['OB_ERR_FORBIDDEN', {}, 403, 'invalid_request_error', null, 'OB_ERR_FORBIDDEN'],
    ['OB_ERR_RATE_LIMITED', {}, 429, 'rate_limit_error', null, 'rate_limit_exceeded'],
    ['OB_ERR_TOO_MANY_ROWS', { field: 'input' }, 413, 'invalid_request_error', 'input', 'OB_ERR_TOO_MANY_ROWS'],
    [
      'OB_ERR_INVALID_ROWS',
      { errors: [{ row: 2, field: 'input[2]', message: 'too long' }] },
      400,
      'invalid_request_error',
      'input[2]',
      'OB_ERR_INVALID_ROWS',
    ],
    ['OB_ERR_INTERNAL', {}, 500, 'server_error', null, 'OB_ERR_INTERNAL'],
    ['OB_ERR_TIMEOUT', {}, 504, 'server_error', null, 'OB_ERR_TIMEOUT'],
  ] as const)('when the problem is %s, then status %#, its type, param and code', (code, extensions, status, type, param, openAiCode) => {
    const problem = makeProblem(code, 'what went wrong', extensions);
    expect(problem.status).toBe(status);
    expect(compatError(problem)).toEqual({ error: { message: expect.stringContaining('what went wrong'), type, param, code: openAiCode } });
  });
});

describe('the embedding manifest', () => {
  const validate = new Ajv2020({ allErrors: true, strict: false }).compile(MANIFEST_SCHEMA);

  it('when textembed 1 is checked, then schema and checks find nothing', () => {
    expect(validate(embedder())).toBe(true);
    expect(checkManifest(embedder(), 'textembed', '1')).toEqual([]);
  });

  it('when result.dimensions is missing, then the schema refuses it', () => {
    const manifest = embedder();
    delete manifest.result.dimensions;
    expect(validate(manifest)).toBe(false);
  });

  it('when dimensions differ from the output, or the output is not float32, then a finding names the field', () => {
    const wrongSize = embedder();
    wrongSize.result.dimensions = 32;
    expect(checkManifest(wrongSize, 'textembed', '1')).toEqual([
      { field: 'result.dimensions', message: expect.stringContaining('[-1,64]') },
    ]);
    const wrongType = embedder();
    (wrongType.outputs[0] as { dtype: string }).dtype = 'float64';
    expect(checkManifest(wrongType, 'textembed', '1')).toEqual([{ field: 'result.output', message: expect.stringContaining('float32') }]);
  });

  it('when the result columns are derived, then id, embedding (FixedSizeList<float32>[64]), error', () => {
    expect(resultCsvHeader(embedder())).toEqual(['id', 'embedding', 'error']);
    expect(resultColumns(embedder())[1]).toEqual({
      name: 'embedding',
      type: { kind: 'float32-list', size: 64 },
      source: { from: 'output', output: 'embedding' },
    });
  });
});

describe('compatStatus', () => {
  it('when a problem is 413, then 400 (OpenAI’s clients have no 413 class); every other status stays', () => {
    expect(compatStatus(413)).toBe(400);
    expect([400, 401, 403, 404, 405, 406, 409, 415, 429, 500, 503, 504].map(compatStatus)).toEqual([
      400, 401, 403, 404, 405, 406, 409, 415, 429, 500, 503, 504,
    ]);
  });
});
