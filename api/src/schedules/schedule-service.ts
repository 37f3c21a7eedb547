import type { Queue } from 'bullmq';
import { ProblemError } from '@onnx-batch/contracts';
import {
  invalidField,
  JobName,
  SCHEDULE_NAME_PATTERN,
  type Logger,
  type ModelRepository,
  type RunScheduleData,
  type RunSummary,
  type ScheduleDefinition,
  type ScheduleRoot,
  type ScheduleSpec,
  type ScheduleStore,
} from '@onnx-batch/shared';
import { parseScheduleSpec } from './schedule-definition';

/** A schedule as the API answers it. */
export interface ScheduleView extends ScheduleSpec {
  createdAt: string;
  updatedAt: string;
  /** When it fires next (ISO 8601), as BullMQ's job scheduler has it; null if unknown. */
  nextRunAt: string | null;
}

/** Attempts of one tick; a retry re-runs it idempotently (docs/schedules.md). */
export const TICK_ATTEMPTS = 3;
export const TICK_BACKOFF_MS = 5000;

/**
 * BullMQ job scheduler id of a schedule. Tenants are `[A-Za-z0-9_.-]` and names `[a-z0-9_-]`,
 * so `/` separates them unambiguously (and a colon, which BullMQ's legacy keys use, never appears).
 */
export function schedulerId(tenant: string, name: string): string {
  return `${tenant}/${name}`;
}

/**
 * Creates, reads, replaces and deletes a tenant's schedules: the definition in Redis (the
 * store), the timing in BullMQ's job scheduler of the `schedules` queue. Both live in Redis,
 * so a schedule survives any restart; its ticks run in whichever scheduler process is up.
 */
export class ScheduleService {
  constructor(
    private readonly store: ScheduleStore,
    private readonly queue: Queue<RunScheduleData>,
    private readonly root: ScheduleRoot,
    private readonly repository: ModelRepository,
    private readonly logger: Logger,
  ) {}

  async create(tenant: string, body: unknown): Promise<ScheduleView> {
    const spec = await this.check(tenant, parseScheduleSpec(body));
    const now = new Date().toISOString();
    const definition: ScheduleDefinition = { ...spec, tenant, createdAt: now, updatedAt: now };
    if (!(await this.store.create(definition))) throw exists(spec.name);
    try {
      await this.schedule(definition);
    } catch (error) {
      await this.store.remove(tenant, spec.name).catch(() => undefined);
      throw error;
    }
    this.logger.info('schedule created', { tenant, schedule: spec.name, cron: spec.cron, timezone: spec.timezone });
    return this.view(definition);
  }

  /** Replaces a schedule (the name stays); the next tick uses the new definition. */
  async replace(tenant: string, name: string, body: unknown): Promise<ScheduleView> {
    const current = await this.load(tenant, name);
    const spec = await this.check(tenant, parseScheduleSpec(body, current.name));
    const definition: ScheduleDefinition = { ...spec, tenant, createdAt: current.createdAt, updatedAt: new Date().toISOString() };
    await this.store.replace(definition);
    await this.schedule(definition);
    this.logger.info('schedule replaced', { tenant, schedule: name, cron: spec.cron, timezone: spec.timezone });
    return this.view(definition);
  }

  async get(tenant: string, name: string): Promise<ScheduleView> {
    return this.view(await this.load(tenant, name));
  }

  async list(tenant: string): Promise<ScheduleView[]> {
    return Promise.all((await this.store.list(tenant)).map((definition) => this.view(definition)));
  }

  /** Stops a schedule: no tick fires after this returns (a run already under way finishes). */
  async remove(tenant: string, name: string): Promise<void> {
    const definition = await this.load(tenant, name);
    await this.queue.removeJobScheduler(schedulerId(tenant, definition.name));
    await this.store.remove(tenant, definition.name);
    this.logger.info('schedule deleted', { tenant, schedule: name });
  }

  async runs(tenant: string, name: string): Promise<RunSummary[]> {
    const definition = await this.load(tenant, name);
    return this.store.runs(tenant, definition.name);
  }

  private async load(tenant: string, name: string): Promise<ScheduleDefinition> {
    const found = SCHEDULE_NAME_PATTERN.test(name) ? await this.store.get(tenant, name) : null;
    // Another tenant's schedule is answered exactly as one that does not exist.
    if (!found) throw new ProblemError('OB_ERR_SCHEDULE_NOT_FOUND', `no schedule named '${name.slice(0, 64)}'`);
    return found;
  }

  /** Checks what needs the repository and the disk: the model (404) and the directories (400). */
  private async check(tenant: string, spec: ScheduleSpec): Promise<ScheduleSpec> {
    this.repository.resolve(spec.model, spec.version ?? undefined);
    const input = await this.root.directory(spec.input.dir, 'input.dir');
    const output = await this.root.directory(spec.output.dir, 'output.dir');
    if (input === output) throw invalidField('output.dir', 'must differ from input.dir (results would be read back as input)');
    const others = (await this.store.list(tenant)).filter((s) => s.name !== spec.name);
    for (const other of others) {
      const theirs = await this.root.directory(other.output.dir, 'output.dir').catch(() => null);
      if (theirs === output)
        throw invalidField('output.dir', `is already the output directory of schedule '${other.name}'; give each schedule its own`);
    }
    return spec;
  }

  private async schedule(definition: ScheduleDefinition): Promise<void> {
    await this.queue.upsertJobScheduler(
      schedulerId(definition.tenant, definition.name),
      { pattern: definition.cron, tz: definition.timezone },
      {
        name: JobName.RunSchedule,
        data: { tenant: definition.tenant, name: definition.name },
        opts: {
          attempts: TICK_ATTEMPTS,
          backoff: { type: 'exponential', delay: TICK_BACKOFF_MS },
          removeOnComplete: true,
          removeOnFail: { count: 100 },
        },
      },
    );
  }

  private async view(definition: ScheduleDefinition): Promise<ScheduleView> {
    const { tenant: _tenant, ...rest } = definition;
    const scheduler = await this.queue.getJobScheduler(schedulerId(definition.tenant, definition.name));
    return { ...rest, nextRunAt: scheduler?.next ? new Date(scheduler.next).toISOString() : null };
  }
}

function exists(name: string): ProblemError {
  return new ProblemError('OB_ERR_SCHEDULE_EXISTS', `a schedule named '${name}' already exists; PUT /v1/schedules/${name} replaces it`);
}
