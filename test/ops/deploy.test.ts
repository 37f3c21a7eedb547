import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES, QueueName } from '@onnx-batch/shared';
import { dropPrefix, newRedis, ROOT } from '../helpers/env';

const DEPLOY = path.join(ROOT, 'deploy');
const K8S = path.join(DEPLOY, 'k8s');

type Manifest = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };
type Container = {
  name: string;
  command?: string[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
};
type PodSpec = { terminationGracePeriodSeconds?: number; containers: Container[] };
type DeploymentSpec = { replicas?: number; strategy?: { type: string; rollingUpdate?: { maxUnavailable?: number; maxSurge?: number } } };

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(entry) ? [full] : [];
  });
}

/** Every YAML document of a file; throws naming the file on a syntax error. */
function documents(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list)
    if (doc.errors.length > 0) throw new Error(`${path.relative(ROOT, file)}: ${doc.errors.map((e) => e.message).join('; ')}`);
  return list.map((d) => d.toJS() as unknown).filter((d) => d !== null);
}

const manifests = (): Manifest[] => yamlFiles(K8S).flatMap(documents) as Manifest[];
const find = (kind: string, name: string): Manifest => {
  const found = manifests().find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return found;
};
const podSpec = (deployment: Manifest): PodSpec => (deployment.spec as { template: { spec: PodSpec } }).template.spec;

describe('deploy/: every YAML file', () => {
  it('when each is parsed, then it is valid YAML', () => {
    const files = [...yamlFiles(DEPLOY), path.join(ROOT, 'docker-compose.yml')];

    expect(files.length).toBeGreaterThanOrEqual(10);
    for (const file of files) expect(() => documents(file)).not.toThrow();
  });
});

describe('deploy/k8s', () => {
  it('when every manifest is checked against the Kubernetes (and KEDA) JSON schemas, then each is valid', () => {
    // Arrange: kubernetes-models bundles the API's OpenAPI schemas (and KEDA's CRD schemas).
    const models: Record<string, new (data: never) => { validate(): void }> = {
      'apps/v1/Deployment': Deployment,
      'v1/Service': Service,
      'v1/ConfigMap': ConfigMap,
      'v1/Namespace': Namespace,
      'keda.sh/v1alpha1/ScaledObject': ScaledObject,
      'networking.k8s.io/v1/Ingress': Ingress,
    };
    const all = manifests().filter((m) => m.kind !== 'Kustomization');

    // Act
    const problems = all.flatMap((m) => {
      const Model = models[`${m.apiVersion}/${m.kind}`];
      if (!Model) return [`${m.apiVersion} ${m.kind} ${m.metadata.name}: no schema to check it against`];
      try {
        new Model(m as never).validate();
        return [];
      } catch (error) {
        return [`${m.kind} ${m.metadata.name}: ${(error as Error).message}`];
      }
    });

    // Assert
    expect(all.map((m) => m.kind).sort()).toEqual([
      'ConfigMap',
      'Deployment',
      'Deployment',
      'Deployment',
      'Ingress',
      'Namespace',
      'ScaledObject',
      'Service',
    ]);
    expect(problems).toEqual([]);
  });

  it('when the kustomization is read, then it lists every manifest of the folder and nothing else', () => {
    const kustomization = documents(path.join(K8S, 'kustomization.yaml'))[0] as { kind: string; resources: string[] };
    const others = readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');

    expect(kustomization.kind).toBe('Kustomization');
    expect([...kustomization.resources].sort()).toEqual(others.sort());
  });

  it(
    'when the API Deployment is read, then readiness probes /readyz and liveness /livez on its HTTP port, and a Service ' + 'selects it',
    () => {
      const deployment = find('Deployment', 'onnx-batch-api');
      const [api] = podSpec(deployment).containers;
      const service = find('Service', 'onnx-batch-api') as Manifest & {
        spec: { selector: Record<string, string>; ports: { targetPort: string }[] };
      };
      const labels = (deployment.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;

      expect(api?.command).toEqual(['node', 'api/dist/main.js']);
      expect(api?.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
      expect(api?.livenessProbe?.httpGet).toEqual({ path: '/livez', port: 'http' });
      expect(api?.ports).toEqual([{ name: 'http', containerPort: CONFIG_VARIABLES.PORT.default, protocol: 'TCP' }]);
      expect(Object.entries(service.spec.selector).every(([k, v]) => labels[k] === v)).toBe(true);
      expect(service.spec.ports[0]?.targetPort).toBe('http');
    },
  );

  it(
    "when the Ingress is read, then it serves HTTPS with a TLS Secret for each host it routes, to the API Service's http port, " +
      'without limiting or buffering uploads',
    () => {
      type Rule = { host: string; http: { paths: { path: string; backend: { service: { name: string; port: { name: string } } } }[] } };
      const ingress = find('Ingress', 'onnx-batch-api') as Manifest & {
        metadata: { annotations: Record<string, string> };
        spec: { tls: { hosts: string[]; secretName: string }[]; rules: Rule[] };
      };
      const service = find('Service', 'onnx-batch-api') as Manifest & { spec: { ports: { name: string }[] } };
      const tlsHosts = ingress.spec.tls.flatMap((t) => t.hosts);

      expect(ingress.spec.tls.every((t) => t.secretName.length > 0)).toBe(true);
      expect(ingress.spec.rules.length).toBeGreaterThan(0);
      for (const rule of ingress.spec.rules) {
        expect(tlsHosts).toContain(rule.host);
        for (const p of rule.http.paths)
          expect(p.backend.service).toEqual({ name: 'onnx-batch-api', port: { name: service.spec.ports[0]?.name } });
      }
      expect(ingress.metadata.annotations).toMatchObject({
        'nginx.ingress.kubernetes.io/ssl-redirect': 'true',
        'nginx.ingress.kubernetes.io/proxy-body-size': '0',
        'nginx.ingress.kubernetes.io/proxy-request-buffering': 'off',
      });
    },
  );

  it(
    'when the worker Deployment is read, then its termination grace outlasts SHUTDOWN_GRACE_MS with a margin, and it serves ' +
      'metrics on METRICS_PORT',
    () => {
      const spec = podSpec(find('Deployment', 'onnx-batch-worker'));
      const [worker] = spec.containers;
      const graceSeconds = CONFIG_VARIABLES.SHUTDOWN_GRACE_MS.default / 1000;

      expect(worker?.command).toEqual(['node', 'worker/dist/main.js']);
      expect(spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(graceSeconds + 5);
      expect(spec.terminationGracePeriodSeconds).toBeLessThanOrEqual(graceSeconds + 30);
      expect(worker?.ports).toEqual([{ name: 'metrics', containerPort: CONFIG_VARIABLES.METRICS_PORT.default, protocol: 'TCP' }]);
      expect(worker?.livenessProbe?.httpGet).toEqual({ path: '/livez', port: 'metrics' });
    },
  );

  it(
    'when the scheduler Deployment is read, then it runs one scheduler process, replaced surge-first, whose termination grace ' +
      'outlasts SCHEDULER_SHUTDOWN_GRACE_MS with a margin',
    () => {
      const deployment = find('Deployment', 'onnx-batch-scheduler');
      const spec = podSpec(deployment);
      const [scheduler] = spec.containers;
      const graceSeconds = CONFIG_VARIABLES.SCHEDULER_SHUTDOWN_GRACE_MS.default / 1000;
      const { replicas, strategy } = deployment.spec as DeploymentSpec;

      expect(scheduler?.command).toEqual(['node', 'scheduler/dist/main.js']);
      expect(replicas).toBe(1);
      expect(strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
      expect(spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(graceSeconds + 5);
      expect(spec.terminationGracePeriodSeconds).toBeLessThanOrEqual(graceSeconds + 30);
      expect(scheduler?.ports).toBeUndefined(); // it serves nothing
    },
  );

  it('when the ConfigMap is read, then every key is a configuration variable (or the KEDA-only REDIS_ADDRESS) with a valid value', () => {
    const data = (find('ConfigMap', 'onnx-batch') as Manifest & { data: Record<string, string> }).data;
    const unknown = Object.keys(data).filter((k) => !(k in CONFIG_VARIABLES) && k !== 'REDIS_ADDRESS');

    expect(unknown).toEqual([]);
    expect(Number(data.SHUTDOWN_GRACE_MS)).toBe(CONFIG_VARIABLES.SHUTDOWN_GRACE_MS.default);
    expect(Number(data.METRICS_PORT)).toBe(CONFIG_VARIABLES.METRICS_PORT.default);
    expect(data.HOST).toBe('0.0.0.0');
    expect(data.API_PROCESSES).toBe('1'); // one API process per pod: Kubernetes scales by replicas
    for (const name of ['onnx-batch-api', 'onnx-batch-worker', 'onnx-batch-scheduler']) {
      expect(podSpec(find('Deployment', name)).containers[0]?.envFrom?.[0]?.configMapRef?.name).toBe('onnx-batch');
    }
  });

  it('when the ConfigMap sets DRIFT_ALERT_PSI, then the drift alert rules fire at that same PSI', () => {
    const data = (find('ConfigMap', 'onnx-batch') as Manifest & { data: Record<string, string> }).data;
    const rules = documents(path.join(DEPLOY, 'prometheus', 'alerts.yml'))[0] as {
      groups: { rules: { alert?: string; expr: string }[] }[];
    };
    const drift = rules.groups.flatMap((g) => g.rules).filter((r) => /Drift$/.test(r.alert ?? ''));

    expect(drift.map((r) => r.alert)).toEqual(['OnnxBatchFeatureDrift', 'OnnxBatchPredictionDrift']);
    for (const rule of drift) expect(rule.expr).toMatch(new RegExp(`>= ${data.DRIFT_ALERT_PSI?.replace('.', '\\.')}$`));
    expect(Number(data.DRIFT_ALERT_PSI)).toBe(CONFIG_VARIABLES.DRIFT_ALERT_PSI.default);
  });

  it(
    "when KEDA's triggers name Redis keys, then they are the keys where BullMQ 6 keeps the chunks not yet taken (checked on a " +
      'real Redis)',
    async () => {
      // Arrange: the prefix of the ConfigMap, and the keys KEDA reads.
      const prefix = (find('ConfigMap', 'onnx-batch') as Manifest & { data: Record<string, string> }).data.REDIS_PREFIX;
      const scaled = find('ScaledObject', 'onnx-batch-worker') as Manifest & {
        spec: { scaleTargetRef: { name: string }; minReplicaCount: number; triggers: { type: string; metadata: Record<string, string> }[] };
      };
      const keys = scaled.spec.triggers.map((t) => t.metadata.listName);
      const testPrefix = `test-keda-${randomUUID().slice(0, 8)}`;
      const redis = newRedis();
      const connection = redis.duplicate();
      const queue = new Queue(QueueName.Chunks, { connection, prefix: testPrefix });

      // Act: a chunk as onnx-batch queues it (with a priority), and one without.
      await queue.add('run-chunk', { jobId: 'x', chunk: 0 }, { priority: 100 });
      await queue.add('run-chunk', { jobId: 'y', chunk: 0 });
      const inTestPrefix = (key: string | undefined): string => String(key).replace(`${prefix}:`, `${testPrefix}:`);
      const lengths = await Promise.all(
        keys.map(async (key) => {
          const k = inTestPrefix(key);
          const type = await redis.type(k);
          return type === 'zset' ? redis.zcard(k) : redis.llen(k);
        }),
      );
      await queue.close();
      await connection.quit();
      await dropPrefix(redis, testPrefix);
      await redis.quit();

      // Assert
      expect(scaled.spec.scaleTargetRef.name).toBe('onnx-batch-worker');
      expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
      expect(scaled.spec.triggers.every((t) => t.type === 'redis' && t.metadata.addressFromEnv === 'REDIS_ADDRESS')).toBe(true);
      expect(keys).toEqual([`${prefix}:chunks:prioritized`, `${prefix}:chunks:wait`]);
      expect(lengths).toEqual([1, 1]);
    },
  );
});

describe('docker-compose.yml', () => {
  type Compose = {
    services: Record<
      string,
      {
        command?: string[];
        profiles?: string[];
        environment?: Record<string, string>;
        volumes?: string[];
        image?: string;
        stop_grace_period?: string;
      }
    >;
  };
  const compose = documents(path.join(ROOT, 'docker-compose.yml'))[0] as Compose;

  it('when it is read, then it has redis, api, worker and scheduler, and Redis runs with AOF fsync every second and noeviction', () => {
    const command = (compose.services.redis?.command ?? []).join(' ');

    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['redis', 'api', 'worker', 'scheduler']));
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--appendfsync everysec');
    expect(command).toContain('--maxmemory-policy noeviction');
    expect(compose.services.api?.command).toEqual(['node', 'api/dist/main.js']);
    expect(compose.services.worker?.command).toEqual(['node', 'worker/dist/main.js']);
    expect(compose.services.api?.environment?.API_PROCESSES).toBe('${API_PROCESSES:-1}'); // one process unless asked
    for (const core of ['redis', 'api', 'worker', 'scheduler']) expect(compose.services[core]?.profiles).toBeUndefined();
  });

  it(
    'when the scheduler service is read, then it runs scheduler/dist/main.js with the same SCHEDULES_ROOT as the API, and ' +
      'compose waits out its shutdown grace',
    () => {
      const scheduler = compose.services.scheduler;
      const graceSeconds = /^(\d+)s$/.exec(scheduler?.stop_grace_period ?? '')?.[1];

      expect(scheduler?.command).toEqual(['node', 'scheduler/dist/main.js']);
      expect(scheduler?.image).toBe(compose.services.api?.image);
      expect(scheduler?.environment?.SCHEDULES_ROOT).toBe(compose.services.api?.environment?.SCHEDULES_ROOT);
      expect(Number(graceSeconds)).toBeGreaterThan(CONFIG_VARIABLES.SCHEDULER_SHUTDOWN_GRACE_MS.default / 1000);
    },
  );

  it('when the monitoring profile is read, then Prometheus and Grafana mount deploy/ files that exist', () => {
    const monitoring = Object.entries(compose.services).filter(([, s]) => s.profiles?.includes('monitoring'));
    const mounts = monitoring.flatMap(([, s]) => (s.volumes ?? []).filter((v) => v.startsWith('./')).map((v) => v.split(':')[0] as string));

    expect(monitoring.map(([name]) => name).sort()).toEqual(['grafana', 'prometheus']);
    expect(mounts.length).toBeGreaterThanOrEqual(4);
    for (const mount of mounts) expect(() => statSync(path.join(ROOT, mount))).not.toThrow();
    expect(compose.services.worker?.environment?.METRICS_PORT).toBe(String(CONFIG_VARIABLES.METRICS_PORT.default));
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('when it is linted (dockerfile-utils, the linter of the VS Code Docker extension), then it has no problem', () => {
    const problems = lintDockerfile(text, {}).map(
      (d) => `line ${d.range.start.line + 1}: ${typeof d.message === 'string' ? d.message : d.message.value}`,
    );

    expect(problems).toEqual([]);
  });

  it('when it is read, then it is multi-stage, runs as a non-root user and has a HEALTHCHECK', () => {
    const froms = instructions.filter((l) => /^FROM\s/i.test(l));
    const users = instructions.filter((l) => /^USER\s/i.test(l));

    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(instructions.some((l) => /^COPY\s+--from=/i.test(l))).toBe(true);
    expect(users.at(-1)).toBeDefined();
    expect(users.at(-1)).not.toMatch(/^USER\s+(root|0)(:|\s|$)/i);
    expect(instructions.some((l) => /^HEALTHCHECK\s/i.test(l))).toBe(true);
  });

  it('when its final stage is read, then it holds the built code of every process kind', () => {
    const finalStage = instructions.slice(instructions.findLastIndex((l) => /^FROM\s/i.test(l)));

    for (const kind of ['api', 'worker', 'scheduler']) {
      expect(finalStage.some((l) => new RegExp(`^COPY\\s+--from=build\\s.*\\s/app/${kind}/dist\\s+${kind}/dist$`, 'i').test(l))).toBe(true);
    }
  });

  it('when its final stage is read, then every workspace is there, package.json and built code (node_modules links each one)', () => {
    const finalStage = instructions.slice(instructions.findLastIndex((l) => /^FROM\s/i.test(l)));
    const workspaces = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;

    expect(workspaces).toContain('contracts');
    for (const workspace of workspaces) {
      for (const file of ['package.json', 'dist']) {
        expect({
          workspace,
          file,
          copied: finalStage.some((l) =>
            new RegExp(`^COPY\\s+--from=build\\s.*\\s/app/${workspace}/${file}\\s+${workspace}/`, 'i').test(l),
          ),
        }).toEqual({ workspace, file, copied: true });
      }
    }
  });

  it('when its final stage is read, then it runs one API process per container (API_PROCESSES=1)', () => {
    const finalStage = instructions.slice(instructions.findLastIndex((l) => /^FROM\s/i.test(l)));

    expect(finalStage.some((l) => /^ENV\s.*\bAPI_PROCESSES=1\b/i.test(l))).toBe(true);
  });
});
