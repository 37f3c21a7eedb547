import { Router, type Request, type Response } from 'express';
import { ProblemError, type Config } from '@onnx-batch/shared';
import { jsonBody } from '../http/body';
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
