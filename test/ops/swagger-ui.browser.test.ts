import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser';
import { ROOT } from '../helpers/env';
import { getJson } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';

const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const IRIS_BODY = {
  model: 'iris',
  inputs: [{ sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 }, [6.7, 3.0, 5.2, 2.3]],
};

describe('Swagger UI at /docs in a real browser', () => {
  let stack: Stack;
  let context: BrowserContext;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  const consoleErrors: string[] = [];
  const offOrigin: string[] = [];

  beforeAll(async () => {
    stack = await startStack({}, false);
    browser = await launchChromium({ viewport: { width: 1280, height: 1400 } });
    context = browser.context;
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  function watch(page: Page): void {
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('request', (req) => {
      if (!req.url().startsWith(stack.url) && !req.url().startsWith('data:')) offOrigin.push(req.url());
    });
  }

  it(
    'when POST /v1/batch-predict is tried out with an iris body, then the response panel shows 202 and the job id, with no CSP ' +
      'violation and nothing fetched from elsewhere',
    async () => {
      // Arrange
      const page = await context.newPage();
      watch(page);
      await page.goto(`${stack.url}/docs`, { waitUntil: 'load' });
      const operation = page.locator('#operations-batches-submitBatch');
      await operation.waitFor({ state: 'visible', timeout: 20_000 });

      // Act: expand the operation, "Try it out", put the body, Execute.
      await operation.locator('.opblock-summary').first().click();
      await operation.getByRole('button', { name: 'Try it out' }).click();
      const body = operation.locator('textarea.body-param__text');
      await body.fill(JSON.stringify(IRIS_BODY, null, 2));
      await operation.getByRole('button', { name: 'Execute' }).click();
      const live = operation.locator('.live-responses-table .response .response-col_status').first();
      await live.waitFor({ state: 'visible', timeout: 20_000 });

      // Assert
      expect((await live.innerText()).trim()).toBe('202');
      const responseBody = await operation.locator('.live-responses-table .response-col_description .microlight').first().innerText();
      const answer = JSON.parse(responseBody) as { jobId: string; status: string };
      expect(answer.jobId).toMatch(/^[0-9a-f-]{36}$/);
      expect(answer.status).toBe('queued');
      const job = await getJson(`${stack.url}/v1/batch-result/${answer.jobId}`);
      expect(job.body).toMatchObject({ jobId: answer.jobId, progress: { total: 2 } });

      mkdirSync(ARTIFACTS, { recursive: true });
      // The request body, the Execute button and the live response, in one viewport.
      await body.evaluate((element: { scrollIntoView(options: { block: 'start' }): void }) => element.scrollIntoView({ block: 'start' }));
      await page.screenshot({ path: path.join(ARTIFACTS, 'swagger-try-it-out.png') });
      expect(consoleErrors.filter((e) => /Content Security Policy|Refused to/i.test(e))).toEqual([]);
      expect(offOrigin).toEqual([]);
    },
  );

  it(
    'when Bull Board is opened (open mode: no keys, loopback), then it renders the chunks and batches queues under the ' + 'API-wide CSP',
    async () => {
      // Arrange
      const page = await context.newPage();
      const violations: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
      });

      // Act
      await page.goto(`${stack.url}/admin/queues`, { waitUntil: 'load' });
      await page.getByText('chunks', { exact: true }).first().waitFor({ state: 'visible', timeout: 20_000 });
      // The overview's queue cards come from the board's JSON API (GET /admin/queues/api/queues).
      await page.getByText('0 Jobs').first().waitFor({ state: 'visible', timeout: 20_000 });

      // Assert
      expect(await page.getByText('batches', { exact: true }).count()).toBeGreaterThan(0);
      expect(violations).toEqual([]);
      await page.screenshot({ path: path.join(ARTIFACTS, 'bull-board.png') });
    },
  );
});
