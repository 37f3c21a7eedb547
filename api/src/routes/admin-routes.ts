import { Router, type Express, type RequestHandler } from 'express';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { problemResponses, type Paths } from '../openapi-parts';

/** Where Bull Board is served. */
export const BULL_BOARD_PATH = '/admin/queues';

/**
 * Bull Board over the given BullMQ queues (every queue of `QueueName`: chunks, batches, …), as a
 * router to mount at `basePath` behind `guards` — the guards run first, on every request of
 * the board (its page, its assets and its JSON API), so an admin-role check put there covers it
 * all. The board can retry, promote and clean jobs: never mount it without a guard where keys
 * are configured.
 */
export function bullBoardRouter(queues: readonly Queue[], basePath: string = BULL_BOARD_PATH, ...guards: RequestHandler[]): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(basePath);
  createBullBoard({
    queues: queues.map((queue) => {
      // Shards of a queue (QUEUE_SHARDS) share its name: the board tells them apart by their prefix.
      const sharded = queues.filter((q) => q.name === queue.name).length > 1;
      return new BullMQAdapter(queue, {
        description: `BullMQ queue '${queue.name}' of onnx-batch`,
        ...(sharded ? { prefix: `${queue.opts.prefix ?? ''}:` } : {}),
      });
    }),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'onnx-batch queues' } },
  });
  const board = serverAdapter.getRouter() as Express;
  board.disable('x-powered-by');
  const router = Router();
  router.use(basePath, ...guards, board);
  return router;
}

/** OpenAPI: the fragment of the board (api/src/openapi.ts merges it); it has its own guard, not the API's. */
export function adminPaths(): Paths {
  const html = { content: { 'text/html': { schema: { type: 'string' } } } };
  return {
    [BULL_BOARD_PATH]: {
      get: {
        tags: ['operations'],
        operationId: 'adminQueues',
        summary: 'Bull Board: the BullMQ queues, their jobs, retries and failures. Needs the `admin` role.',
        responses: { '200': { description: 'The UI.', ...html }, ...problemResponses(['OB_ERR_UNAUTHORIZED', 'OB_ERR_FORBIDDEN']) },
      },
    },
  };
}
