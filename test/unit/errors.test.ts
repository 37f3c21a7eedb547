import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ERRORS, ProblemError, makeProblem, problemType, type ErrorCode } from '@onnx-batch/contracts';
import { REPO_ROOT } from './fixtures';

const CODES = Object.keys(ERRORS) as ErrorCode[];

/** The `| code | status | when |` rows of docs/errors.md, as code → status. */
function documentedStatuses(): Map<string, number> {
  const doc = readFileSync(path.join(REPO_ROOT, 'docs', 'errors.md'), 'utf8');
  const rows = new Map<string, number>();
  for (const match of doc.matchAll(/^\|\s*`(OB_ERR_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)) {
    rows.set(match[1] as string, Number(match[2]));
  }
  return rows;
}

describe('the error catalogue', () => {
  it('when docs/errors.md is read, then every code of ERRORS is listed with its status', () => {
    // Arrange
    const documented = documentedStatuses();

    // Act
    const listed = CODES.map((code) => [code, documented.get(code)]);

    // Assert
    expect(listed).toEqual(CODES.map((code) => [code, ERRORS[code].status]));
  });

  it('when docs/errors.md is read, then it lists no code that ERRORS lacks', () => {
    expect([...documentedStatuses().keys()].filter((code) => !(code in ERRORS))).toEqual([]);
  });

  it('when a code is turned into a problem type, then it is a urn of the lower-case kebab name', () => {
    expect(problemType('OB_ERR_INVALID_ROWS')).toBe('urn:onnx-batch:problem:invalid-rows');
    expect(problemType('OB_ERR_UNSUPPORTED_MEDIA_TYPE')).toBe('urn:onnx-batch:problem:unsupported-media-type');
  });

  it('when every code is turned into a problem type, then each matches the urn format and all are distinct', () => {
    // Act
    const types = CODES.map(problemType);

    // Assert
    for (const type of types) expect(type).toMatch(/^urn:onnx-batch:problem:[a-z]+(-[a-z]+)*$/);
    expect(new Set(types).size).toBe(CODES.length);
  });
});

describe('ProblemError', () => {
  it('when it is created, then it carries the code, the status of the code and the detail as message', () => {
    // Act
    const error = new ProblemError('OB_ERR_JOB_NOT_FOUND', "no job with id 'x'");

    // Assert
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ProblemError');
    expect(error.code).toBe('OB_ERR_JOB_NOT_FOUND');
    expect(error.status).toBe(404);
    expect(error.message).toBe("no job with id 'x'");
  });

  it('when toProblem is called, then it has type, title, status, detail and code', () => {
    // Act
    const problem = new ProblemError('OB_ERR_TOO_MANY_ROWS', 'a job may hold at most 10 rows').toProblem();

    // Assert
    expect(problem).toEqual({
      type: 'urn:onnx-batch:problem:too-many-rows',
      title: 'Too many rows',
      status: 413,
      detail: 'a job may hold at most 10 rows',
      code: 'OB_ERR_TOO_MANY_ROWS',
    });
  });

  it('when toProblem is given an instance and the error has extensions, then both are added', () => {
    // Arrange
    const errors = [{ row: 3, field: 'petal_length', message: 'must be <= 10' }];
    const error = new ProblemError('OB_ERR_INVALID_ROWS', "row 3: field 'petal_length' must be <= 10; nothing was queued", { errors });

    // Act
    const problem = error.toProblem('/v1/batch-predict');

    // Assert
    expect(problem).toEqual({
      type: 'urn:onnx-batch:problem:invalid-rows',
      title: 'Invalid input rows',
      status: 400,
      detail: "row 3: field 'petal_length' must be <= 10; nothing was queued",
      code: 'OB_ERR_INVALID_ROWS',
      instance: '/v1/batch-predict',
      errors,
    });
  });

  it('when toProblem is called without an instance, then the problem has no instance key', () => {
    expect(new ProblemError('OB_ERR_INTERNAL', 'x').toProblem()).not.toHaveProperty('instance');
  });

  it.each(CODES)('when the code is %s, then the problem title and status come from the catalogue', (code) => {
    // Act
    const problem = makeProblem(code, 'detail');

    // Assert
    expect([problem.title, problem.status, problem.code, problem.type]).toEqual([
      ERRORS[code].title,
      ERRORS[code].status,
      code,
      problemType(code),
    ]);
  });
});
