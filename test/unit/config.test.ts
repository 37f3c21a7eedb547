import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '@onnx-batch/shared';
import { REPO_ROOT } from './fixtures';

/** The ConfigError loadConfig throws for `env`; fails the test when it does not throw one. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('when the environment is empty, then every variable takes its default', () => {
    // Act
    const config = loadConfig({});

    // Assert
    expect(config.PORT).toBe(8080);
    expect(config.HOST).toBe('127.0.0.1');
    expect(config.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(config.REDIS_PREFIX).toBe('onnx-batch');
    expect(config.RESULT_TTL_SECONDS).toBe(86_400);
    expect(config.CHUNK_SIZE).toBe(4000);
    expect(config.LOG_LEVEL).toBe('info');
    expect(config.DEFAULT_MODEL).toBe('iris');
  });

  it('when MODELS_DIR is unset, then it is the absolute models/ directory of the checkout', () => {
    // Act
    const config = loadConfig({});

    // Assert
    expect(path.isAbsolute(config.MODELS_DIR)).toBe(true);
    expect(config.MODELS_DIR.endsWith(`${path.sep}models`)).toBe(true);
    expect(config.MODELS_DIR).toBe(path.join(REPO_ROOT, 'models'));
  });

  it('when API_PROCESSES is unset, then it is half the CPUs rounded down, at least 1; set, it is taken as given', () => {
    expect(loadConfig({}).API_PROCESSES).toBe(Math.max(1, Math.floor(os.availableParallelism() / 2)));
    expect(loadConfig({ API_PROCESSES: '3' }).API_PROCESSES).toBe(3);
    expect(configError({ API_PROCESSES: '0' }).message).toBe('invalid configuration: API_PROCESSES="0" must be >= 1');
  });

  it('when MODELS_DIR is relative, then it is resolved to an absolute path', () => {
    expect(loadConfig({ MODELS_DIR: 'some/models' }).MODELS_DIR).toBe(path.resolve('some/models'));
  });

  it('when the environment is empty, then the config holds exactly the documented variables', () => {
    expect(Object.keys(loadConfig({})).sort()).toEqual(Object.keys(CONFIG_VARIABLES).sort());
  });

  it('when numeric variables are strings, then they are coerced to numbers', () => {
    // Act
    const config = loadConfig({ PORT: '3000', RESULT_TTL_SECONDS: '120', WORKER_CONCURRENCY: '4' });

    // Assert
    expect(config.PORT).toBe(3000);
    expect(config.RESULT_TTL_SECONDS).toBe(120);
    expect(config.WORKER_CONCURRENCY).toBe(4);
  });

  it('when a variable is the empty string, then it counts as unset', () => {
    expect(loadConfig({ PORT: '', REDIS_URL: '' })).toMatchObject({ PORT: 8080, REDIS_URL: 'redis://127.0.0.1:6379' });
  });

  it('when string variables are valid, then they are kept as given', () => {
    // Act
    const config = loadConfig({ REDIS_URL: 'rediss://cache.example:6380/2', REDIS_PREFIX: '{onnx-batch}', LOG_LEVEL: 'debug' });

    // Assert
    expect(config.REDIS_URL).toBe('rediss://cache.example:6380/2');
    expect(config.REDIS_PREFIX).toBe('{onnx-batch}');
    expect(config.LOG_LEVEL).toBe('debug');
  });

  it('when the config is loaded, then it is frozen', () => {
    // Act
    const config = loadConfig({});

    // Assert
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { PORT: number }).PORT = 1;
    }).toThrow(TypeError);
  });

  it('when variables that are not settings are present, then they are ignored', () => {
    expect(Object.keys(loadConfig({ PATH: '/usr/bin', HOME: '/root' }))).not.toContain('PATH');
  });

  it('when PORT is not a number, then a ConfigError names PORT and the value', () => {
    // Act
    const error = configError({ PORT: 'abc' });

    // Assert
    expect(error.message).toBe('invalid configuration: PORT="abc" must be integer');
  });

  it('when PORT is out of range, then a ConfigError names PORT', () => {
    expect(configError({ PORT: '70000' }).message).toBe('invalid configuration: PORT="70000" must be <= 65535');
  });

  it('when REDIS_URL is not a redis URL, then a ConfigError names REDIS_URL', () => {
    // Act
    const error = configError({ REDIS_URL: 'http://x' });

    // Assert
    expect(error.message).toContain('REDIS_URL="http://x"');
    expect(error.message).toContain('must match pattern "^rediss?://"');
  });

  it('when LOG_LEVEL is not a winston level, then a ConfigError names LOG_LEVEL', () => {
    expect(configError({ LOG_LEVEL: 'loud' }).message).toContain('LOG_LEVEL="loud"');
  });

  it('when two variables are invalid, then the ConfigError names both', () => {
    // Act
    const error = configError({ PORT: 'abc', REDIS_URL: 'http://x' });

    // Assert
    expect(error.name).toBe('ConfigError');
    expect(error.message).toContain('PORT="abc"');
    expect(error.message).toContain('REDIS_URL="http://x"');
  });
});

describe('CONFIG_VARIABLES', () => {
  it('when a variable is declared, then its default passes its own constraints', () => {
    // Arrange
    const env = Object.fromEntries(Object.entries(CONFIG_VARIABLES).map(([name, spec]) => [name, String(spec.default)]));

    // Act & Assert
    expect(() => loadConfig(env)).not.toThrow();
  });

  it("when the README's configuration table is read, then it has one row per variable, each with its meaning, and no other", () => {
    // Arrange
    const readmePath = path.join(REPO_ROOT, 'README.md');
    expect(existsSync(readmePath)).toBe(true);
    const readme = readFileSync(readmePath, 'utf8');
    const table = readme.slice(readme.indexOf('<!-- config:start -->'), readme.indexOf('<!-- config:end -->'));

    // Act
    const rows = [...table.matchAll(/^\| `([A-Z0-9_]+)` \| .* \| (.*) \|$/gm)].map(([, name, meaning]) => ({ name, meaning }));

    // Assert: `npm run docs:config` regenerates it from CONFIG_VARIABLES
    expect(rows.map((row) => row.name)).toEqual(Object.keys(CONFIG_VARIABLES));
    for (const row of rows) expect(row.meaning).toBe(CONFIG_VARIABLES[row.name as keyof typeof CONFIG_VARIABLES].doc.replace(/\|/g, '\\|'));
  });
});
