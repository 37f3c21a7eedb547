import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { UnrecoverableError, type Job } from 'bullmq';
import request from 'supertest';
import {
  CallbackUrlError,
  checkCallbackUrl,
  ConfigError,
  createLogger,
  EMPTY_ALLOW_LIST,
  forbiddenAddressKind,
  JobStore,
  loadConfig,
  parseAllowList,
  pinnedLookup,
  signatureHeader,
  signWebhook,
  verifyWebhookSignature,
  WEBHOOK_HEADERS,
  type DeliverWebhookData,
  type JobRecord,
  type LookupAll,
} from '@onnx-batch/shared';
import { startWorkerService, WebhookDeliverer, type WorkerService } from '@onnx-batch/worker';
import { dropPrefix, newRedis, testConfig } from '../helpers/env';
import { startStack, type Stack } from '../helpers/stack';
import { problemOfDomainError } from '@onnx-batch/api';

const SECRET = 'whsec-test-0123456789abcdef';
const ROW = { id: 'r0', sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };

/** What the guard says about a URL: 'ok', or the kind of refusal and its message. */
async function verdict(url: string, allowList = EMPTY_ALLOW_LIST, lookup?: LookupAll): Promise<{ kind: string; message: string }> {
  try {
    await checkCallbackUrl(url, allowList, lookup ? { lookup } : {});
    return { kind: 'ok', message: '' };
  } catch (error) {
    if (!(error instanceof CallbackUrlError)) throw error;
    return { kind: error.kind, message: error.message };
  }
}

const fakeDns =
  (answers: Record<string, string[]>): LookupAll =>
  (hostname) => {
    const addresses = answers[hostname];
    if (!addresses) return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
    return Promise.resolve(addresses.map((address) => ({ address, family: address.includes(':') ? (6 as const) : (4 as const) })));
  };

describe('SSRF guard of callback URLs', () => {
  it.each([
    ['http://127.0.0.1/hook', 'loopback'],
    ['http://127.8.9.10:8080/hook', 'loopback'],
    ['http://localhost./hook', 'loopback'],
    ['http://10.1.2.3/hook', 'private'],
    ['http://172.16.0.1/hook', 'private'],
    ['http://172.31.255.254/hook', 'private'],
    ['http://192.168.1.1/hook', 'private'],
    ['http://169.254.169.254/latest/meta-data/', 'link-local'],
    ['http://169.254.1.1/hook', 'link-local'],
    ['http://0.0.0.0/hook', 'unspecified'],
    ['http://0.1.2.3/hook', 'unspecified'],
    ['http://224.0.0.1/hook', 'multicast'],
    ['http://255.255.255.255/hook', 'broadcast'],
    ['http://100.64.0.1/hook', 'carrier-grade NAT'],
    ['http://100.127.255.254/hook', 'carrier-grade NAT'],
    ['http://192.0.2.10/hook', 'reserved'],
    ['http://240.0.0.1/hook', 'reserved'],
    ['http://2130706433/hook', 'loopback'],
    ['http://0x7f.1/hook', 'loopback'],
    ['http://[::1]/hook', 'loopback'],
    ['http://[::]/hook', 'unspecified'],
    ['http://[fc00::1]/hook', 'unique-local'],
    ['http://[fd12:3456::1]/hook', 'unique-local'],
    ['http://[fe80::1]/hook', 'link-local'],
    ['http://[ff02::1]/hook', 'multicast'],
    ['http://[::ffff:127.0.0.1]/hook', 'which carries 127.0.0.1, a loopback address'],
    ['http://[::ffff:7f00:1]/hook', 'which carries 127.0.0.1, a loopback address'],
    ['http://[::ffff:169.254.169.254]/hook', 'which carries 169.254.169.254, a link-local address'],
    ['http://[::ffff:10.0.0.1]/hook', 'which carries 10.0.0.1, a private (RFC 1918) address'],
    ['http://[::ffff:100.64.0.1]/hook', 'carrier-grade NAT'],
    ['http://[::ffff:0:7f00:1]/hook', 'which carries 127.0.0.1, a loopback address'],
    ['http://[::7f00:1]/hook', 'which carries 127.0.0.1, a loopback address'],
    ['http://[64:ff9b::a9fe:a9fe]/hook', 'which carries 169.254.169.254, a link-local address'],
    ['http://[2002:7f00:1::]/hook', '6to4'],
    ['http://[2001:db8::1]/hook', 'reserved'],
  ])('when the callback URL is %s, then it is refused as %s', async (url, kind) => {
    // Act
    const result = await verdict(url);

    // Assert
    expect(result.kind).toBe('forbidden');
    expect(result.message).toContain(kind);
  });

  it.each([
    'http://93.184.216.34/hook',
    'https://8.8.8.8:8443/x?y=1',
    'http://[2606:4700:4700::1111]/hook',
    'http://[::ffff:93.184.216.34]/hook',
    'http://[64:ff9b::808:808]/hook',
  ])('when the callback URL is the public address %s, then it passes', async (url) => {
    expect((await verdict(url)).kind).toBe('ok');
  });

  it.each([
    ['ftp://93.184.216.34/x', 'must use http or https'],
    ['file:///etc/passwd', 'must use http or https'],
    ['javascript:alert(1)', 'must use http or https'],
    ['not a url', 'must be an absolute http(s) URL'],
    ['/relative/path', 'must be an absolute http(s) URL'],
    ['http://user:pw@93.184.216.34/x', 'must not carry credentials'],
  ])('when the callback URL is %s, then it is invalid: %s', async (url, message) => {
    // Act
    const result = await verdict(url);

    // Assert
    expect(result).toEqual({ kind: 'invalid', message: `field 'callbackUrl' ${message}` });
  });

  it('when a refused URL is turned into a problem, then it is a 400 OB_ERR_INVALID_REQUEST naming callbackUrl', async () => {
    // Act
    const error = await checkCallbackUrl('http://169.254.169.254/', EMPTY_ALLOW_LIST).catch((e: unknown) => e as CallbackUrlError);

    // Assert
    const problem = problemOfDomainError(error)?.toProblem() ?? { detail: '' };
    expect(problem).toMatchObject({ status: 400, code: 'OB_ERR_INVALID_REQUEST', errors: [{ field: 'callbackUrl' }] });
    expect(problem.detail).toMatch(
      /^field 'callbackUrl' is 169\.254\.169\.254, a link-local address; webhooks are only sent to public addresses/,
    );
  });

  it('when a host name resolves to a public and a private address, then it is refused naming the private one', async () => {
    // Arrange
    const dns = fakeDns({
      'mixed.example': ['93.184.216.34', '10.0.0.7'],
      'v6.example': ['2606:4700::1', 'fd00::7'],
      'good.example': ['93.184.216.34', '2606:4700::1'],
    });

    // Act
    const mixed = await verdict('https://mixed.example/hook', EMPTY_ALLOW_LIST, dns);
    const v6 = await verdict('https://v6.example/hook', EMPTY_ALLOW_LIST, dns);
    const good = await checkCallbackUrl('https://GOOD.example/hook#frag', EMPTY_ALLOW_LIST, { lookup: dns });

    // Assert
    expect(mixed).toEqual({
      kind: 'forbidden',
      message: expect.stringContaining("names host 'mixed.example', which resolves to 10.0.0.7, a private (RFC 1918) address"),
    });
    expect(v6.message).toContain('fd00::7, a unique-local (fc00::/7) address');
    expect(good.href).toBe('https://good.example/hook');
    expect(good.addresses.map((a) => a.address)).toEqual(['93.184.216.34', '2606:4700::1']);
  });

  it('when a host name does not resolve, then the refusal is "unresolved" (retryable at delivery)', async () => {
    expect(await verdict('https://nowhere.example/hook', EMPTY_ALLOW_LIST, fakeDns({}))).toEqual({
      kind: 'unresolved',
      message: "field 'callbackUrl' names host 'nowhere.example', which could not be resolved (ENOTFOUND)",
    });
  });

  it('when WEBHOOK_ALLOW_HOSTS names an address, a CIDR or a host, then exactly those pass', async () => {
    // Arrange
    const allow = parseAllowList('127.0.0.1, 10.20.0.0/16, fd00:1::/32, Hooks.Internal');
    const dns = fakeDns({ 'hooks.internal': ['10.99.0.1'], 'other.internal': ['10.99.0.1'] });

    // Act
    const verdicts = await Promise.all(
      [
        'http://127.0.0.1:9000/hook',
        'http://[::ffff:127.0.0.1]/hook',
        'http://127.0.0.2/hook',
        'http://10.20.30.40/hook',
        'http://10.21.0.1/hook',
        'http://[fd00:1::5]/hook',
        'http://[fd00:2::5]/hook',
        'http://hooks.internal/hook',
        'http://other.internal/hook',
      ].map(async (url) => [url, (await verdict(url, allow, dns)).kind]),
    );

    // Assert
    expect(Object.fromEntries(verdicts)).toEqual({
      'http://127.0.0.1:9000/hook': 'ok',
      'http://[::ffff:127.0.0.1]/hook': 'ok',
      'http://127.0.0.2/hook': 'forbidden',
      'http://10.20.30.40/hook': 'ok',
      'http://10.21.0.1/hook': 'forbidden',
      'http://[fd00:1::5]/hook': 'ok',
      'http://[fd00:2::5]/hook': 'forbidden',
      'http://hooks.internal/hook': 'ok',
      'http://other.internal/hook': 'forbidden',
    });
  });

  it('when WEBHOOK_ALLOW_HOSTS holds a malformed entry, then loadConfig throws a ConfigError naming the variable and the entry', () => {
    expect(() => loadConfig({ WEBHOOK_ALLOW_HOSTS: '127.0.0.1, 10.0.0.0/99' })).toThrow(ConfigError);
    expect(() => loadConfig({ WEBHOOK_ALLOW_HOSTS: '127.0.0.1, 10.0.0.0/99' })).toThrow(
      /WEBHOOK_ALLOW_HOSTS="127.0.0.1, 10.0.0.0\/99" entry 2 \('10.0.0.0\/99'\) is not a valid CIDR/,
    );
    expect(() => loadConfig({ WEBHOOK_ALLOW_HOSTS: 'bad host!' })).toThrow(/WEBHOOK_ALLOW_HOSTS=.*neither a host name/);
  });

  it('when a forbidden kind is asked of a public address, then there is none', () => {
    expect(forbiddenAddressKind('93.184.216.34')).toBeNull();
    expect(forbiddenAddressKind('2606:4700::1111')).toBeNull();
    expect(forbiddenAddressKind('nonsense')).toBe('not an IP address');
  });

  it('when the connection looks its host up, then the pinned lookup answers only the checked addresses', async () => {
    // Arrange
    const lookup = pinnedLookup([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:4700::1', family: 6 },
    ]);
    const ask = (options: object) =>
      new Promise<unknown[]>((resolve) =>
        lookup('attacker-controlled.example', options, (error, address, family) => resolve([error?.message ?? null, address, family])),
      );

    // Act & Assert
    expect(await ask({ all: true })).toEqual([
      null,
      [
        { address: '93.184.216.34', family: 4 },
        { address: '2606:4700::1', family: 6 },
      ],
      undefined,
    ]);
    expect(await ask({})).toEqual([null, '93.184.216.34', 4]);
    expect(await ask({ family: 6 })).toEqual([null, '2606:4700::1', 6]);
  });
});

describe('webhook signatures', () => {
  const body = JSON.stringify({ jobId: 'x', status: 'completed' });

  it('when a body is signed, then verifyWebhookSignature accepts it with the same secret, timestamp and body', () => {
    // Arrange
    const timestamp = Math.floor(Date.now() / 1000);

    // Act
    const header = signatureHeader([SECRET], timestamp, body);

    // Assert
    expect(header).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(SECRET, String(timestamp), body, header)).toBe(true);
    expect(verifyWebhookSignature(SECRET, timestamp, Buffer.from(body), header, 300)).toBe(true);
  });

  it('when the secret, the body or the timestamp differ, or the timestamp is stale, then verification fails', () => {
    // Arrange
    const now = Date.now();
    const timestamp = Math.floor(now / 1000);
    const header = signWebhook(SECRET, timestamp, body);

    // Act & Assert
    expect(verifyWebhookSignature('another-secret-0123456789', timestamp, body, header, 300, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, timestamp, `${body} `, header, 300, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, timestamp + 1, body, header, 300, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, timestamp, body, header, 300, now + 301_000)).toBe(false);
    expect(verifyWebhookSignature(SECRET, 'soon', body, header, 300, now)).toBe(false);
    expect(verifyWebhookSignature(SECRET, timestamp, body, 'v1=00', 300, now)).toBe(false);
  });

  it('when a tenant has two secrets (rotation), then the header carries both signatures and either secret verifies', () => {
    // Arrange
    const timestamp = Math.floor(Date.now() / 1000);
    const next = 'whsec-next-0123456789abcdef';

    // Act
    const header = signatureHeader([SECRET, next], timestamp, body);

    // Assert
    expect(header.split(',')).toHaveLength(2);
    expect(verifyWebhookSignature(SECRET, timestamp, body, header)).toBe(true);
    expect(verifyWebhookSignature(next, timestamp, body, header)).toBe(true);
  });

  it('when WEBHOOK_SECRETS is malformed or too short, then loadConfig names the variable but never shows the secret', () => {
    expect(() => loadConfig({ WEBHOOK_SECRETS: 'acme' })).toThrow(
      'invalid configuration: WEBHOOK_SECRETS=<redacted> entry 1: expected tenant:secret',
    );
    expect(() => loadConfig({ WEBHOOK_SECRETS: 'acme:short-secret' })).toThrow(
      /WEBHOOK_SECRETS=<redacted> entry 1: the secret of tenant 'acme' is shorter than 16/,
    );
    expect(() => loadConfig({ WEBHOOK_SECRET: 'short-secret' })).toThrow(/WEBHOOK_SECRET=<redacted> is shorter than 16/);
  });
});

interface Delivery {
  headers: http.IncomingHttpHeaders;
  body: string;
  answered: number;
}

/** A webhook receiver on 127.0.0.1: records every delivery, answers each path from its script (then 200). */
class Receiver {
  readonly deliveries = new Map<string, Delivery[]>();
  readonly scripts = new Map<string, number[]>();
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const answered = this.scripts.get(path)?.shift() ?? 200;
      const list = this.deliveries.get(path) ?? [];
      list.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), answered });
      this.deliveries.set(path, list);
      res.writeHead(answered, answered >= 300 && answered < 400 ? { location: 'http://127.0.0.1:1/elsewhere' } : {}).end('ok');
    });
  });
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  async waitFor(path: string, count: number, timeoutMs = 20_000): Promise<Delivery[]> {
    const deadline = Date.now() + timeoutMs;
    while ((this.deliveries.get(path)?.length ?? 0) < count) {
      if (Date.now() > deadline) throw new Error(`${path} got ${this.deliveries.get(path)?.length ?? 0} of ${count} deliveries`);
      await new Promise((r) => setTimeout(r, 25));
    }
    return this.deliveries.get(path) ?? [];
  }
}

const WEBHOOK_ENV = {
  WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
  WEBHOOK_SECRETS: `default:${SECRET}`,
  WEBHOOK_BACKOFF_MS: '50',
  WEBHOOK_ATTEMPTS: '4',
};

describe('webhooks through the API, real Redis and a real worker', () => {
  let stack: Stack;
  const receiver = new Receiver();
  const redis = newRedis();

  beforeAll(async () => {
    await receiver.start();
    stack = await startStack(WEBHOOK_ENV);
  });

  afterAll(async () => {
    await stack.close();
    await receiver.close();
    await redis.quit();
  });

  const submit = (path: string, inputs: unknown[] = [ROW]) =>
    request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs, callbackUrl: `${receiver.url}${path}` });

  it('when a job with a callbackUrl completes, then its status document is POSTed once, signed, with the event headers', async () => {
    // Act
    const submitted = await submit('/completed');
    const jobId = String(submitted.body.jobId);
    const [delivery] = await receiver.waitFor('/completed', 1);

    // Assert
    expect(submitted.status).toBe(202);
    const headers = delivery?.headers ?? {};
    expect(headers['content-type']).toBe('application/json');
    expect(headers['x-onnxbatch-event']).toBe('job.completed');
    expect(headers['x-onnxbatch-job-id']).toBe(jobId);
    const timestamp = String(headers['x-onnxbatch-timestamp']);
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(30);
    expect(verifyWebhookSignature(SECRET, timestamp, delivery?.body ?? '', String(headers['x-onnxbatch-signature']))).toBe(true);
    const document = JSON.parse(delivery?.body ?? '{}') as Record<string, unknown>;
    const polled = await request(stack.url).get(`/v1/batch-result/${jobId}`);
    const { results: _results, ...statusOnly } = polled.body as Record<string, unknown>;
    expect(document).toEqual(statusOnly);
    expect(document).toMatchObject({
      jobId,
      status: 'completed',
      model: { name: 'iris' },
      progress: { done: 1, total: 1, failed: 0 },
      resultsUrl: `/v1/batch-result/${jobId}/results`,
    });
    const store = new JobStore(redis, stack.config.REDIS_PREFIX, stack.config.RESULT_TTL_SECONDS);
    expect(await store.webhooks.state(jobId)).toMatchObject({ status: 'delivered', attempts: 1, error: null });
  });

  it(
    'when a multi-chunk job completes, then its last chunk and its finalize-batch parent both enqueue, and the receiver still ' +
      'gets one delivery',
    async () => {
      // Arrange
      const inputs = Array.from({ length: 9000 }, (_, i) => ({ ...ROW, id: `r${i}` }));

      // Act
      const submitted = await submit('/multi', inputs);
      await receiver.waitFor('/multi', 1, 40_000);
      await new Promise((r) => setTimeout(r, 1000)); // room for a duplicate to show up

      // Assert
      expect(submitted.status).toBe(202);
      expect(receiver.deliveries.get('/multi')).toHaveLength(1);
      expect(JSON.parse(receiver.deliveries.get('/multi')?.[0]?.body ?? '{}')).toMatchObject({
        status: 'completed',
        progress: { done: 9000, total: 9000 },
      });
    },
  );

  it('when the receiver fails twice and then answers 200, then there are exactly three requests and one successful delivery', async () => {
    // Arrange
    receiver.scripts.set('/flaky', [500, 302]);

    // Act
    const submitted = await submit('/flaky');
    const deliveries = await receiver.waitFor('/flaky', 3);
    await new Promise((r) => setTimeout(r, 500));

    // Assert
    expect(receiver.deliveries.get('/flaky')).toHaveLength(3);
    expect(deliveries.map((d) => d.answered)).toEqual([500, 302, 200]);
    expect(new Set(deliveries.map((d) => d.body)).size).toBe(1);
    for (const d of deliveries)
      expect(
        verifyWebhookSignature(SECRET, String(d.headers['x-onnxbatch-timestamp']), d.body, String(d.headers['x-onnxbatch-signature'])),
      ).toBe(true);
    const store = new JobStore(redis, stack.config.REDIS_PREFIX, stack.config.RESULT_TTL_SECONDS);
    expect(await store.webhooks.state(String(submitted.body.jobId))).toMatchObject({ status: 'delivered', attempts: 3 });
  });

  it(
    'when the receiver never answers 2xx, then delivery stops after WEBHOOK_ATTEMPTS and the job records it failed with ' + 'the reason',
    async () => {
      // Arrange
      receiver.scripts.set('/down', [503, 503, 503, 503, 503]);

      // Act
      const submitted = await submit('/down');
      await receiver.waitFor('/down', 4);
      const store = new JobStore(redis, stack.config.REDIS_PREFIX, stack.config.RESULT_TTL_SECONDS);
      let state = await store.webhooks.state(String(submitted.body.jobId));
      for (let i = 0; i < 40 && state?.status !== 'failed'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        state = await store.webhooks.state(String(submitted.body.jobId));
      }

      // Assert
      expect(state).toMatchObject({ status: 'failed', attempts: 4, error: 'the callback URL answered HTTP 503' });
      expect(receiver.deliveries.get('/down')).toHaveLength(4);
    },
  );

  it(
    'when the callbackUrl points at a private or metadata address, then the submit is refused with 400 naming callbackUrl and ' +
      'nothing is queued',
    async () => {
      // Act
      const metadata = await request(stack.url)
        .post('/v1/batch-predict')
        .send({ model: 'iris', inputs: [ROW], callbackUrl: 'http://169.254.169.254/latest/meta-data/' });
      const mapped = await request(stack.url)
        .post(`/v1/batch-predict?model=iris&callbackUrl=${encodeURIComponent('http://[::ffff:10.0.0.1]/hook')}`)
        .set('content-type', 'application/x-ndjson')
        .send(`${JSON.stringify(ROW)}\n`);
      const scheme = await request(stack.url)
        .post('/v1/batch-predict')
        .send({ model: 'iris', inputs: [ROW], callbackUrl: 'gopher://example.com/' });

      // Assert
      for (const response of [metadata, mapped, scheme]) {
        expect(response.status).toBe(400);
        expect(response.body).toMatchObject({ code: 'OB_ERR_INVALID_REQUEST', errors: [{ field: 'callbackUrl' }] });
      }
      expect(metadata.body.detail).toContain('169.254.169.254, a link-local address');
      expect(mapped.body.detail).toContain('which carries 10.0.0.1, a private (RFC 1918) address');
    },
  );
});

describe('webhooks of cancelled jobs', () => {
  let stack: Stack;
  let worker: WorkerService | null = null;
  const receiver = new Receiver();

  beforeAll(async () => {
    await receiver.start();
    stack = await startStack(WEBHOOK_ENV, false);
  });

  afterAll(async () => {
    await worker?.close();
    await stack.close();
    await receiver.close();
  });

  it('when a queued job is cancelled, then the receiver is told job.cancelled', async () => {
    // Arrange: no worker yet, so the job stays queued
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: [ROW], callbackUrl: `${receiver.url}/cancelled` });
    const jobId = String(submitted.body.jobId);

    // Act
    const cancelled = await request(stack.url).post(`/v1/batch-result/${jobId}/cancel`);
    worker = await startWorkerService(stack.config, createLogger('error', 'test'));
    const [delivery] = await receiver.waitFor('/cancelled', 1);

    // Assert
    expect(cancelled.status).toBe(200);
    expect(delivery?.headers['x-onnxbatch-event']).toBe('job.cancelled');
    expect(JSON.parse(delivery?.body ?? '{}')).toMatchObject({ jobId, status: 'cancelled' });
    expect(
      verifyWebhookSignature(
        SECRET,
        String(delivery?.headers['x-onnxbatch-timestamp']),
        delivery?.body ?? '',
        String(delivery?.headers['x-onnxbatch-signature']),
      ),
    ).toBe(true);
  });
});

describe('webhook delivery checks the address again when it sends', () => {
  const config = testConfig({ ...WEBHOOK_ENV, WEBHOOK_SECRETS: '', WEBHOOK_TIMEOUT_MS: '300' });
  const redis = newRedis();
  const store = new JobStore(redis, config.REDIS_PREFIX, config.RESULT_TTL_SECONDS);
  const receiver = new Receiver();
  const logger = createLogger('error', 'test');

  beforeAll(() => receiver.start());

  afterAll(async () => {
    await dropPrefix(redis, config.REDIS_PREFIX);
    await receiver.close();
    await redis.quit();
  });

  const finishedJob = async (callbackUrl: string): Promise<JobRecord> => {
    const now = new Date().toISOString();
    const record: JobRecord = {
      id: randomUUID(),
      tenant: 'default',
      model: 'iris',
      version: '1',
      route: 'pinned',
      rolloutRevision: 0,
      status: 'completed',
      total: 1,
      done: 1,
      failed: 0,
      chunks: 1,
      chunksDone: 1,
      chunkSize: 1,
      priority: 100,
      callbackUrl,
      createdAt: now,
      startedAt: now,
      finishedAt: now,
      error: null,
    };
    // The commit writes the one chunk's input itself (nothing was staged); webhooks never read it.
    expect(await store.commit(record, { lastInput: Buffer.from('unused') })).toMatchObject({ state: 'committed' });
    return record;
  };
  const attempt = (jobId: string, attemptsMade = 0) =>
    ({ data: { jobId }, attemptsMade, opts: { attempts: 3 } }) as unknown as Job<DeliverWebhookData>;

  it('when the host now resolves to a forbidden address (DNS rebinding), then delivery fails for good without a request', async () => {
    // Arrange: at submit rebind.example was public; now it answers the metadata address
    const record = await finishedJob('http://rebind.example/hook');
    const deliverer = new WebhookDeliverer(store, config, logger, fakeDns({ 'rebind.example': ['169.254.169.254'] }));

    // Act
    const error = await deliverer.process(attempt(record.id)).catch((e: unknown) => e);

    // Assert
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect((error as Error).message).toContain('169.254.169.254, a link-local address');
    expect(await store.webhooks.state(record.id)).toMatchObject({ status: 'failed', attempts: 1 });
  });

  it(
    'when the host resolves to a checked address, then the request goes to that address (the system resolver is ' + 'never asked)',
    async () => {
      // Arrange: "hooks.invalid" exists only in the fake DNS; reaching the receiver proves the pinned lookup was used
      const port = new URL(receiver.url).port;
      const record = await finishedJob(`http://hooks.invalid:${port}/pinned`);
      const deliverer = new WebhookDeliverer(store, config, logger, fakeDns({ 'hooks.invalid': ['127.0.0.1'] }));

      // Act
      const outcome = await deliverer.process(attempt(record.id));

      // Assert
      expect(outcome).toEqual({ outcome: 'delivered', httpStatus: 200 });
      const [delivery] = receiver.deliveries.get('/pinned') ?? [];
      expect(delivery?.headers.host).toBe(`hooks.invalid:${port}`);
      expect(delivery?.headers[WEBHOOK_HEADERS.signature.toLowerCase()]).toBeUndefined(); // no secret configured: unsigned
    },
  );

  it('when the receiver does not answer in WEBHOOK_TIMEOUT_MS, then the attempt fails with a timeout and is retried', async () => {
    // Arrange: a server that accepts and never answers
    const silent = http.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const record = await finishedJob(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/slow`);
    const deliverer = new WebhookDeliverer(store, config, logger);

    // Act
    const error = await deliverer.process(attempt(record.id)).catch((e: unknown) => e);
    silent.closeAllConnections();
    silent.close();

    // Assert
    expect(error).not.toBeInstanceOf(UnrecoverableError);
    expect((error as Error).message).toBe('the callback URL did not answer within 300 ms');
    expect(await store.webhooks.state(record.id)).toMatchObject({ status: 'retrying', attempts: 1 });
  });
});
