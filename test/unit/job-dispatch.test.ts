import { UnrecoverableError, type Job } from 'bullmq';
import { isJobNamed, jobDispatcher, JobName, type JobHandlers, type Logger } from '@onnx-batch/shared';

/** A BullMQ job as the dispatch sees it: name, data, queue and id (pure logic: no Redis). */
function fakeJob(name: string, data: unknown = {}): Job {
  return { name, data, queueName: 'chunks', id: `bull-${name}` } as unknown as Job;
}

/** A logger that keeps its error lines. */
function recordingLogger(): { logger: Logger; errors: [string, unknown][] } {
  const errors: [string, unknown][] = [];
  const logger = { error: (message: string, meta: unknown) => errors.push([message, meta]) } as unknown as Logger;
  return { logger, errors };
}

/** Worker handlers that answer which handler ran, with what data and token. */
function workerHandlers(): JobHandlers<'worker'> {
  return {
    [JobName.RunChunk]: (job, token) => Promise.resolve({ ran: 'chunk', chunk: job.data.chunk, token }),
    [JobName.RunChunkGroup]: (job) => Promise.resolve({ ran: 'group', members: job.data.chunks.length }),
    [JobName.FinalizeBatch]: (job) => Promise.resolve({ ran: 'finalize', jobId: job.data.jobId }),
    [JobName.DeliverWebhook]: (job) => Promise.resolve({ ran: 'webhook', jobId: job.data.jobId }),
  };
}

describe('jobDispatcher: one dispatch for every process kind', () => {
  it(
    "when a job of each of the worker's names is dispatched, then the handler of its name gets it, with its data and the " + 'lock token',
    async () => {
      const dispatch = jobDispatcher('worker', workerHandlers(), recordingLogger().logger);

      const results = [
        await dispatch(fakeJob(JobName.RunChunk, { jobId: 'j', chunk: 3 }), 'token-1'),
        await dispatch(
          fakeJob(JobName.RunChunkGroup, {
            chunks: [
              { jobId: 'a', chunk: 0 },
              { jobId: 'b', chunk: 0 },
            ],
          }),
        ),
        await dispatch(fakeJob(JobName.FinalizeBatch, { jobId: 'j' })),
        await dispatch(fakeJob(JobName.DeliverWebhook, { jobId: 'k' })),
      ];

      expect(results).toEqual([
        { ran: 'chunk', chunk: 3, token: 'token-1' },
        { ran: 'group', members: 2 },
        { ran: 'finalize', jobId: 'j' },
        { ran: 'webhook', jobId: 'k' },
      ]);
    },
  );

  it('when a handler of the kind is missing, then making the dispatch throws naming it (start-up fails)', () => {
    const { [JobName.DeliverWebhook]: _dropped, ...rest } = workerHandlers();

    expect(() => jobDispatcher('worker', rest as JobHandlers<'worker'>, recordingLogger().logger)).toThrow(
      "the worker process's job handlers are wrong: no handler for 'deliver-webhook' (its job names: run-chunk, run-chunk-group, " +
        'finalize-batch, deliver-webhook)',
    );
  });

  it("when a handler names a job of another kind's queues, then making the dispatch throws naming it", () => {
    const handlers = { ...workerHandlers(), [JobName.RunSchedule]: () => Promise.resolve(null) };

    expect(() => jobDispatcher('worker', handlers, recordingLogger().logger)).toThrow(
      "a handler for 'run-schedule', which is not a job of its queues",
    );
  });

  it(
    'when a job has a name no handler of the kind knows, then it fails for good (UnrecoverableError) naming it, and is ' + 'logged once',
    async () => {
      const { logger, errors } = recordingLogger();
      const dispatch = jobDispatcher('worker', workerHandlers(), logger);

      const error = await dispatch(fakeJob('reindex-everything')).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(UnrecoverableError);
      expect((error as Error).message).toBe(
        "job name 'reindex-everything' has no handler in worker processes (they handle run-chunk, run-chunk-group, finalize-batch, " +
          'deliver-webhook)',
      );
      expect(errors).toEqual([
        [
          'job of an unknown name failed for good',
          expect.objectContaining({ queue: 'chunks', jobName: 'reindex-everything', bullId: 'bull-reindex-everything' }),
        ],
      ]);
    },
  );

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])(
    'when a job is named %s (a member of every object), then it is an unknown name too',
    async (name) => {
      const dispatch = jobDispatcher('worker', workerHandlers(), recordingLogger().logger);

      await expect(dispatch(fakeJob(name))).rejects.toBeInstanceOf(UnrecoverableError);
    },
  );

  it(
    "when the scheduler's dispatch gets a job of a worker's name, then it fails for good there as well (the same rule in " + 'every kind)',
    async () => {
      const handlers: JobHandlers<'scheduler'> = { [JobName.RunSchedule]: (job) => Promise.resolve(`${job.data.tenant}/${job.data.name}`) };
      const dispatch = jobDispatcher('scheduler', handlers, recordingLogger().logger);

      expect(await dispatch(fakeJob(JobName.RunSchedule, { tenant: 'acme', name: 'nightly' }))).toBe('acme/nightly');
      await expect(dispatch(fakeJob(JobName.RunChunk, { jobId: 'j', chunk: 0 }))).rejects.toThrow(
        "job name 'run-chunk' has no handler in scheduler processes (they handle run-schedule)",
      );
    },
  );

  it('when the api, which consumes no queue, makes a dispatch, then it needs no handler and every job is unknown to it', async () => {
    const dispatch = jobDispatcher('api', {}, recordingLogger().logger);

    await expect(dispatch(fakeJob(JobName.RunChunk))).rejects.toThrow(
      "job name 'run-chunk' has no handler in api processes (they handle none)",
    );
  });

  it('when a handler reads data its job name does not carry, then it does not compile (JobDataOf types each handler)', () => {
    const handlers: JobHandlers<'scheduler'> = {
      // @ts-expect-error a run-schedule job carries RunScheduleData (tenant, name): it has no jobId
      [JobName.RunSchedule]: (job) => Promise.resolve(job.data.jobId),
    };

    expect(Object.keys(handlers)).toEqual([JobName.RunSchedule]);
  });
});

describe('isJobNamed', () => {
  it("when a job's name is the one asked, then it is true (and the job's data is that name's), else false", () => {
    const job = fakeJob(JobName.FinalizeBatch, { jobId: 'j' });

    expect(isJobNamed(job, JobName.FinalizeBatch) && job.data.jobId).toBe('j');
    expect(isJobNamed(job, JobName.RunChunk)).toBe(false);
  });
});
