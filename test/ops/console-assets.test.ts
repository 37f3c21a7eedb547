import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { ROOT } from '../helpers/env';
import { startStack, type Stack } from '../helpers/stack';

const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; " +
  "base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
const CONSOLE_DIR = path.join(ROOT, 'api', 'console');

/** The files a browser loads for the console: the shell, the stylesheet and every compiled module. */
function consoleFiles(): string[] {
  const scripts = readdirSync(path.join(CONSOLE_DIR, 'dist')).filter((f) => f.endsWith('.js'));
  return [
    path.join(CONSOLE_DIR, 'static', 'index.html'),
    path.join(CONSOLE_DIR, 'static', 'console.css'),
    ...scripts.map((f) => path.join(CONSOLE_DIR, 'dist', f)),
  ];
}

describe('the console’s files and headers', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ API_KEYS: 'acme:console-assets-key-0123456789:read' }, false);
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('when the shell is fetched, then it carries the console CSP, no referrer, no-store, a validator, and no data', async () => {
    // Act
    const shell = await request(stack.url).get('/console');
    const slash = await request(stack.url).get('/console/');

    // Assert
    expect(shell.status).toBe(200);
    expect(shell.headers['content-type']).toMatch(/^text\/html/);
    expect(shell.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(shell.headers['referrer-policy']).toBe('no-referrer');
    expect(shell.headers['cache-control']).toBe('no-store');
    expect(shell.headers.etag).toBeDefined();
    expect(shell.headers['last-modified']).toBeDefined();
    expect(slash.text).toBe(shell.text);
    expect(shell.text).not.toMatch(/<script>|\sstyle=|\son[a-z]+=/i); // nothing inline for the CSP to refuse
    expect(shell.text).not.toContain('acme');
  });

  it(
    'when a script or the stylesheet is fetched again with its ETag,' + ' then 304; both are revalidated (no-cache) under the CSP',
    async () => {
      // Arrange
      const script = await request(stack.url).get('/console/assets/main.js');
      const css = await request(stack.url).get('/console/assets/console.css');

      // Act
      const again = await request(stack.url).get('/console/assets/main.js').set('If-None-Match', String(script.headers.etag));
      const since = await request(stack.url)
        .get('/console/assets/console.css')
        .set('If-Modified-Since', String(css.headers['last-modified']));

      // Assert
      expect(script.status).toBe(200);
      expect(script.headers['content-type']).toMatch(/^(text|application)\/javascript/);
      expect(script.headers['cache-control']).toBe('no-cache');
      expect(script.headers['content-security-policy']).toBe(CONSOLE_CSP);
      expect(css.headers['content-type']).toMatch(/^text\/css/);
      expect(again.status).toBe(304);
      expect(since.status).toBe(304);
    },
  );

  it(
    'when anything but a compiled module or the stylesheet is asked for,' + ' then 404 problem+json (no declarations, no paths out)',
    async () => {
      // Act
      const answers = await Promise.all(
        ['main.d.ts', 'tsconfig.tsbuildinfo', '..%2F..%2Fpackage.json', '.hidden.js', 'Main.js', 'nope.js', 'index.html'].map((file) =>
          request(stack.url).get(`/console/assets/${file}`),
        ),
      );

      // Assert
      for (const answer of answers) {
        expect(answer.status).toBe(404);
        expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
      }
    },
  );

  it('when every file a browser loads is added up, then the console stays within its 60 KB budget before compression', () => {
    // Act
    const files = consoleFiles();
    const bytes = files.reduce((sum, file) => sum + statSync(file).size, 0);

    // Assert
    expect(files.length).toBeGreaterThan(5);
    expect(bytes).toBeLessThanOrEqual(60 * 1024);
  });
});
