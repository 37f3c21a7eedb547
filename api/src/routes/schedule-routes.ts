import { Router, type Request, type Response } from 'express';
import { JOB_STATUSES, ProblemError, type ErrorCode } from '@onnx-batch/contracts';
import { type Config } from '@onnx-batch/shared';
import { jsonBody } from '../http/body';
import { copy, GUARD_CODES, WRITE_GUARD_CODES, json, problemResponses, ref, type Paths, type Schema } from '../openapi-parts';
import { SCHEDULE_BODY_SCHEMA } from '../schedules/schedule-definition';
import type { ScheduleService } from '../schedules/schedule-service';

export interface ScheduleRouteDeps {
  config: Pick<Config, 'MAX_BODY_BYTES'>;
  /** Absent when SCHEDULES_ROOT is not set: every schedule route then answers 404. */
  schedules?: ScheduleService | undefined;
}

/**
 * Built-in schedules of the caller's tenant (docs/schedules.md). Mounted under /v1 behind the
 * guard: reads need `read`, the rest `submit`. Another tenant's schedule answers 404.
 */
export function scheduleRoutes(deps: ScheduleRouteDeps): Router {
  const router = Router();
  const service = deps.schedules;
  if (!service) {
    router.use('/schedules', () => {
      throw new ProblemError('OB_ERR_SCHEDULE_NOT_FOUND', 'schedules are disabled on this server (SCHEDULES_ROOT is not set)');
    });
    return router;
  }
  const body = jsonBody(deps.config.MAX_BODY_BYTES);
  const name = (req: Request): string => String(req.params.name);
  const location = (scheduleName: string): string => `/v1/schedules/${scheduleName}`;

  router.post('/schedules', body, async (req: Request, res: Response) => {
    const schedule = await service.create(req.caller.tenant, req.body);
    res.status(201).location(location(schedule.name)).json(schedule);
  });

  router.get('/schedules', async (req: Request, res: Response) => {
    res.json({ schedules: await service.list(req.caller.tenant) });
  });

  router.get('/schedules/:name', async (req: Request, res: Response) => {
    res.json(await service.get(req.caller.tenant, name(req)));
  });

  router.put('/schedules/:name', body, async (req: Request, res: Response) => {
    const schedule = await service.replace(req.caller.tenant, name(req), req.body);
    res.location(location(schedule.name)).json(schedule);
  });

  router.delete('/schedules/:name', async (req: Request, res: Response) => {
    await service.remove(req.caller.tenant, name(req));
    res.status(204).end();
  });

  router.get('/schedules/:name/runs', async (req: Request, res: Response) => {
    res.json({ runs: await service.runs(req.caller.tenant, name(req)) });
  });

  return router;
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: the fragment of these routes (api/src/openapi.ts merges it).

export function scheduleSchemas(): Record<string, Schema> {
  const spec = copy(SCHEDULE_BODY_SCHEMA);
  const timestamp = { type: 'string', format: 'date-time' };
  const nullableTimestamp = { type: ['string', 'null'], format: 'date-time' };
  const properties = spec.properties as Record<string, Schema>;
  return {
    ScheduleRequest: { ...spec, description: 'A schedule to create (POST) or replace (PUT): docs/schedules.md.' },
    Schedule: {
      type: 'object',
      required: ['name', 'cron', 'timezone', 'model', 'version', 'input', 'output', 'createdAt', 'updatedAt', 'nextRunAt'],
      properties: {
        ...properties,
        version: { type: ['string', 'null'], description: 'Pinned version; null: the model\u2019s default at each run.' },
        createdAt: timestamp,
        updatedAt: timestamp,
        nextRunAt: nullableTimestamp,
      },
    },
    ScheduleRun: {
      type: 'object',
      required: ['schedule', 'runId', 'tick', 'startedAt', 'finishedAt', 'status', 'summary', 'files'],
      properties: {
        schedule: { type: 'string' },
        runId: { type: 'string' },
        tick: timestamp,
        startedAt: timestamp,
        finishedAt: nullableTimestamp,
        status: { enum: ['running', 'completed', 'failed'] },
        summary: { type: ['string', 'null'] },
        files: {
          type: 'array',
          items: {
            type: 'object',
            required: ['input', 'output', 'jobId', 'rows', 'failedRows', 'status'],
            properties: {
              input: { type: 'string' },
              output: { type: ['string', 'null'] },
              jobId: { type: ['string', 'null'] },
              rows: { type: 'integer', minimum: 0 },
              failedRows: { type: 'integer', minimum: 0 },
              status: { enum: [...JOB_STATUSES, 'rejected'] },
              error: { type: 'string' },
            },
          },
        },
        error: { type: 'string' },
      },
    },
  };
}

export function schedulePaths(): Paths {
  const tags = ['schedules'];
  const name = { name: 'name', in: 'path', required: true, schema: (copy(SCHEDULE_BODY_SCHEMA).properties as Record<string, Schema>).name };
  const disabled: ErrorCode[] = [...GUARD_CODES, 'OB_ERR_SCHEDULE_NOT_FOUND'];
  const writeCodes: ErrorCode[] = [
    ...disabled,
    ...WRITE_GUARD_CODES,
    'OB_ERR_MALFORMED_JSON',
    'OB_ERR_INVALID_REQUEST',
    'OB_ERR_MODEL_NOT_FOUND',
    'OB_ERR_VERSION_NOT_FOUND',
    'OB_ERR_PAYLOAD_TOO_LARGE',
    'OB_ERR_UNSUPPORTED_MEDIA_TYPE',
  ];
  const body = { required: true, ...json(ref('ScheduleRequest')) };
  const location = { Location: { description: 'The schedule\u2019s URL.', schema: { type: 'string' } } };
  const note = ' Every schedule route answers 404 when SCHEDULES_ROOT is not set.';
  return {
    '/v1/schedules': {
      post: {
        tags,
        operationId: 'createSchedule',
        summary:
          'Create a schedule: at each cron tick, the matching input files are submitted as jobs and their results written to the ' +
          'output directory.',
        description: `See docs/schedules.md.${note}`,
        requestBody: body,
        responses: {
          '201': { description: 'Created.', headers: location, ...json(ref('Schedule')) },
          ...problemResponses([...writeCodes, 'OB_ERR_SCHEDULE_EXISTS']),
        },
      },
      get: {
        tags,
        operationId: 'listSchedules',
        summary: 'The caller\u2019s schedules.',
        description: note.trim(),
        responses: {
          '200': {
            description: 'The schedules.',
            ...json({ type: 'object', required: ['schedules'], properties: { schedules: { type: 'array', items: ref('Schedule') } } }),
          },
          ...problemResponses(disabled),
        },
      },
    },
    '/v1/schedules/{name}': {
      get: {
        tags,
        operationId: 'getSchedule',
        summary: 'One schedule.',
        parameters: [name],
        responses: { '200': { description: 'The schedule.', ...json(ref('Schedule')) }, ...problemResponses(disabled) },
      },
      put: {
        tags,
        operationId: 'replaceSchedule',
        summary: 'Replace a schedule (its name in the body, if any, must be the one in the path).',
        parameters: [name],
        requestBody: body,
        responses: {
          '200': { description: 'The schedule as now stored.', headers: location, ...json(ref('Schedule')) },
          ...problemResponses(writeCodes),
        },
      },
      delete: {
        tags,
        operationId: 'deleteSchedule',
        summary: 'Delete a schedule (runs already started finish).',
        parameters: [name],
        responses: { '204': { description: 'Deleted.' }, ...problemResponses(disabled) },
      },
    },
    '/v1/schedules/{name}/runs': {
      get: {
        tags,
        operationId: 'listScheduleRuns',
        summary: 'The schedule\u2019s recent runs, newest first, each with its files, jobs and outcome.',
        parameters: [name],
        responses: {
          '200': {
            description: 'The runs.',
            ...json({ type: 'object', required: ['runs'], properties: { runs: { type: 'array', items: ref('ScheduleRun') } } }),
          },
          ...problemResponses(disabled),
        },
      },
    },
  };
}
