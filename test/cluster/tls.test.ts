import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { runCli } from '../helpers/cli';
import { testEnv } from '../helpers/env';
import { makeCertificates, startTlsRedis, type TestCertificates } from '../helpers/redis-topologies';
import { eventually, irisRow, ProcessGroup, warnings } from '../helpers/reliability';

/**
 * Encrypted in transit: Redis listens on TLS only (no plain port), every process reaches it with
 * `rediss://` trusting a CA of the test's own; the API serves HTTPS with a certificate from the
 * same CA, and picks up a renewed one from disk without a restart; the CLI trusts the CA it is given.
 */
describe('TLS: HTTPS API, Redis over TLS, CLI trusting a private CA', () => {
  let certs: TestCertificates;
  let redis: Awaited<ReturnType<typeof startTlsRedis>>;
  let url: string;
  let work: string;
  const group = new ProcessGroup();

  beforeAll(async () => {
    certs = await makeCertificates();
    redis = await startTlsRedis(certs);
    const env = testEnv({
      REDIS_URL: redis.url,
      REDIS_TLS_CA_FILE: certs.caFile,
      TLS_CERT_FILE: certs.certFile,
      TLS_KEY_FILE: certs.keyFile,
      TLS_RELOAD_INTERVAL_MS: '200',
    });
    const [api] = await Promise.all([group.api(env), group.worker(env)]);
    url = api.url;
    work = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-tls-'));
  }, 60_000);

  afterAll(async () => {
    await group.stopAll('SIGTERM');
    await redis?.destroy();
    certs?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** The serial number of the certificate the API presents to a new connection. */
  function servedSerial(): Promise<string> {
    const { port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: Number(port), ca: readFileSync(certs.caFile), servername: 'localhost' }, () => {
        resolve(socket.getPeerCertificate().serialNumber);
        socket.end();
      });
      socket.once('error', reject);
    });
  }

  it(
    'when Redis is TLS only and the API serves HTTPS, then the CLI given the CA submits a job that completes, and clients ' +
      'without the CA are refused',
    async () => {
      // Arrange
      const input = path.join(work, 'rows.ndjson');
      writeFileSync(input, Array.from({ length: 500 }, (_, i) => JSON.stringify(irisRow(i))).join('\n'));
      const out = path.join(work, 'results.ndjson');

      // Act
      const withCa = await runCli(['submit', '--input', input, '--model', 'iris', '--version', '2', '--url', url, '-o', out, '-q'], {
        env: { ONNX_BATCH_CA_FILE: certs.caFile },
      });
      const withFlag = await runCli(['models', '--url', url, '--ca-file', certs.caFile, '--json']);
      const withoutCa = await runCli(['models', '--url', url, '--json']);
      const plainHttps = await new Promise<string>((resolve) => {
        https
          .get(`${url}/livez`, (res) => resolve(`HTTP ${res.statusCode ?? 0}`))
          .once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      });

      // Assert
      expect(url.startsWith('https://')).toBe(true);
      expect(withCa).toMatchObject({ code: 0 });
      const lines = readFileSync(out, 'utf8')
        .split('\n')
        .filter((line) => line !== '');
      expect(lines.map((line) => (JSON.parse(line) as { id: string }).id)).toEqual(Array.from({ length: 500 }, (_, i) => irisRow(i).id));
      expect(withFlag.code).toBe(0);
      expect(withFlag.stdout).toContain('"iris"');
      expect(withoutCa.code).toBe(7); // unreachable: the certificate is not trusted
      expect(plainHttps).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE'); // the server sends its certificate, not the CA's
      expect(warnings(group.all.map((p) => p.output))).toEqual([]);
    },
    60_000,
  );

  it('when the certificate files are replaced on disk, then new connections get the new certificate from the same process', async () => {
    // Arrange
    const before = await servedSerial();
    const pids = group.all.map((p) => p.pid);

    // Act
    await certs.renew();

    // Assert
    await eventually('the API serves the renewed certificate', async () => (await servedSerial()) !== before, 10_000, 100);
    const renewed = await runCli(['models', '--url', url, '--ca-file', certs.caFile, '--json']);
    expect(renewed.code).toBe(0);
    expect(group.all.map((p) => p.pid)).toEqual(pids);
    for (const proc of group.all) expect(proc.child.exitCode).toBeNull();
    expect(group.all[0]?.output.some((line) => line.includes('TLS certificate reloaded'))).toBe(true);
  }, 30_000);
});
