import { readFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { parse as parseYaml } from 'yaml';
import { CONFIG_VARIABLES } from '@onnx-batch/shared';
import { ROOT } from '../helpers/env';
import { waitForJob } from '../helpers/http';
import { exportedSeriesNames } from '../helpers/prometheus';
import { freePort } from '../helpers/private-redis';
import { startStack, type Stack } from '../helpers/stack';

const DEPLOY = path.join(ROOT, 'deploy');
const DASHBOARD = path.join(DEPLOY, 'grafana', 'dashboards', 'onnx-batch.json');
const ALERTS = path.join(DEPLOY, 'prometheus', 'alerts.yml');
const PROMETHEUS = path.join(DEPLOY, 'prometheus', 'prometheus.yml');
const METRIC_NAME = /\bonnx_batch_[a-zA-Z0-9_]+/g;

/** lezer-promql, the PromQL grammar of Prometheus' own UI; an ES module whose CommonJS build jest can load. */
interface PromqlParser {
  parse(text: string): { iterate(spec: { enter: (node: { type: { isError: boolean }; from: number; to: number }) => void }): void };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { parser: promql } = require('@prometheus-io/lezer-promql') as { parser: PromqlParser };

interface Panel {
  title?: string;
  type?: string;
  repeat?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown; definition?: string; current?: { value?: unknown } }[] };
}
interface RuleFile {
  groups: { name: string; rules: { alert?: string; record?: string; expr: string; for?: string }[] }[];
}

/** [where, PromQL] of every panel query of the dashboard. */
function dashboardExpressions(dashboard: Dashboard): [string, string][] {
  const found: [string, string][] = [];
  const walk = (panels: Panel[]): void => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) if (target.expr) found.push([`panel '${panel.title ?? '?'}'`, target.expr]);
      walk(panel.panels ?? []);
    }
  };
  walk(dashboard.panels);
  return found;
}

function ruleExpressions(rules: RuleFile): [string, string][] {
  return rules.groups.flatMap((g) => g.rules.map((r): [string, string] => [`rule ${r.alert ?? r.record ?? '?'}`, r.expr]));
}

/** Syntax errors of a PromQL expression, as lezer-promql (Prometheus' own UI grammar) finds them. */
function promqlErrors(expr: string): string[] {
  const errors: string[] = [];
  promql.parse(expr).iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(`at ${node.from}: '${expr.slice(Math.max(0, node.from - 10), node.to + 10)}'`);
    },
  });
  return errors;
}

describe('dashboards and alert rules (deploy/)', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
  const rules = parseYaml(readFileSync(ALERTS, 'utf8')) as RuleFile;
  const expressions = [...dashboardExpressions(dashboard), ...ruleExpressions(rules)];

  it('when every dashboard query and rule expression is parsed as PromQL, then none has a syntax error', () => {
    const broken = expressions.flatMap(([where, expr]) => promqlErrors(expr).map((e) => `${where}: ${e}`));

    expect(expressions.length).toBeGreaterThan(25);
    expect(broken).toEqual([]);
  });

  it('when the alert rules are read, then they cover a growing backlog, error ratios and missing workers', () => {
    const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);
    const byName = new Map(alerts.map((r) => [r.alert, r]));

    expect(byName.get('OnnxBatchQueueBacklogGrowing')?.expr).toContain('deriv(');
    expect(byName.get('OnnxBatchJobErrorRatioHigh')?.expr).toContain('onnx_batch_jobs_failed_total');
    expect(byName.get('OnnxBatchHttpErrorRatioHigh')?.expr).toContain('status=~"5.."');
    expect(byName.get('OnnxBatchNoWorkers')?.expr).toMatch(/absent\(up\{job="onnx-batch-worker"\} == 1\)/);
    for (const alert of alerts) expect(alert.for).toMatch(/^\d+m$/);
  });

  it(
    'when the alert rules are read, then feature and prediction drift alert once PSI stays at DRIFT_ALERT_PSI (its default) for ' +
      '15 minutes',
    () => {
      const alerts = new Map(
        rules.groups
          .flatMap((g) => g.rules)
          .filter((r) => r.alert)
          .map((r) => [r.alert, r]),
      );
      const threshold = String(CONFIG_VARIABLES.DRIFT_ALERT_PSI.default);

      expect(alerts.get('OnnxBatchFeatureDrift')).toMatchObject({
        for: '15m',
        expr: `max by (model, version, feature) (onnx_batch_feature_psi) >= ${threshold}`,
      });
      expect(alerts.get('OnnxBatchPredictionDrift')).toMatchObject({
        for: '15m',
        expr: `max by (model, version) (onnx_batch_prediction_psi) >= ${threshold}`,
      });
    },
  );

  it('when the alert rules are read, then realised and estimated quality alert QUALITY_ALERT_MARGIN (default) below reference', () => {
    const alerts = new Map(
      rules.groups
        .flatMap((g) => g.rules)
        .filter((r) => r.alert)
        .map((r) => [r.alert, r]),
    );
    const margin = String(CONFIG_VARIABLES.QUALITY_ALERT_MARGIN.default);
    const below = (gauge: string): string =>
      `max by (model, version, arm) (${gauge}{window="24h"}) < on (model, version) group_left () ` +
      `(max by (model, version) (onnx_batch_quality_reference_accuracy) - ${margin})`;

    expect(alerts.get('OnnxBatchQualityBelowReference')).toMatchObject({ for: '30m', expr: below('onnx_batch_quality_accuracy') });
    expect(alerts.get('OnnxBatchEstimatedQualityBelowReference')).toMatchObject({
      for: '30m',
      expr: below('onnx_batch_quality_estimated_accuracy'),
    });
    expect(alerts.get('OnnxBatchRegressionErrorAboveReference')?.expr).toBe(
      'max by (model, version, arm) (onnx_batch_quality_rmse{window="24h"}) > on (model, version) group_left () ' +
        `(max by (model, version) (onnx_batch_quality_reference_rmse) * (1 + ${margin}))`,
    );
  });

  it('when the dashboard is read, then a drift panel repeats for each model and plots both PSI gauges of that model', () => {
    const drift = dashboard.panels.filter((p) => p.targets?.some((t) => t.expr?.includes('onnx_batch_feature_psi')));
    const model = dashboard.templating.list.find((v) => v.name === 'model');

    expect(drift).toHaveLength(1);
    expect(drift[0]).toMatchObject({ type: 'timeseries', repeat: 'model' });
    expect(drift[0]?.title).toContain('$model');
    expect(drift[0]?.targets?.map((t) => t.expr)).toEqual([
      'max by (version, feature) (onnx_batch_feature_psi{model=~"$model"})',
      'max by (version) (onnx_batch_prediction_psi{model=~"$model"})',
    ]);
    expect(model).toMatchObject({ type: 'query' });
  });

  it('when Prometheus and Grafana are wired, then scrape jobs, rule files, data source and dashboard folder agree', () => {
    // Arrange
    const prometheus = parseYaml(readFileSync(PROMETHEUS, 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; dns_sd_configs?: { port: number }[] }[];
    };
    const datasources = parseYaml(readFileSync(path.join(DEPLOY, 'grafana', 'provisioning', 'datasources', 'prometheus.yml'), 'utf8')) as {
      datasources: { uid: string; url: string }[];
    };
    const providers = parseYaml(readFileSync(path.join(DEPLOY, 'grafana', 'provisioning', 'dashboards', 'onnx-batch.yml'), 'utf8')) as {
      providers: { options: { path: string } }[];
    };
    const compose = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
    const jobs = new Map(prometheus.scrape_configs.map((c) => [c.job_name, c]));

    // Assert
    expect(jobs.get('onnx-batch-api')?.dns_sd_configs?.[0]?.port).toBe(8080);
    expect(jobs.get('onnx-batch-worker')?.dns_sd_configs?.[0]?.port).toBe(9464);
    expect(prometheus.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    expect(compose).toContain('./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro');
    expect(datasources.datasources[0]?.uid).toBe(dashboard.templating.list.find((v) => v.type === 'datasource')?.current?.value);
    expect(datasources.datasources[0]?.url).toBe('http://prometheus:9090');
    expect(compose).toContain(`./deploy/grafana/dashboards:${providers.providers[0]?.options.path}:ro`);
  });

  describe('against the metrics a running API and worker export', () => {
    let stack: Stack;
    let exported: Set<string>;

    beforeAll(async () => {
      const port = await freePort();
      stack = await startStack({ METRICS_PORT: String(port) });
      // A small job, so that the job, row and inference counters and histograms have series.
      const submitted = await request(stack.url)
        .post('/v1/batch-predict')
        .send({
          model: 'iris',
          inputs: [
            [5.1, 3.5, 1.4, 0.2],
            [6.7, 3.0, 5.2, 2.3],
          ],
        });
      expect((await waitForJob(stack.url, String(submitted.body.jobId))).status).toBe('completed');
      const api = (await request(stack.url).get('/metrics')).text;
      const worker = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      exported = new Set([...exportedSeriesNames(api), ...exportedSeriesNames(worker)]);
      expect(api).toContain('onnx_batch_jobs_submitted_total{model="iris",version="2"} 1');
      expect(worker).toContain('onnx_batch_jobs_completed_total{model="iris",version="2"} 1');
    });

    afterAll(async () => {
      await stack.close();
    });

    it('when the dashboard and the rules name an onnx_batch_ metric, then the API or the worker exports it', () => {
      // Arrange: panel queries, variable queries and rule expressions.
      const variables = dashboard.templating.list.map((v) => JSON.stringify([v.query ?? '', v.definition ?? '']));
      const used = new Set([...expressions.map(([, e]) => e), ...variables].flatMap((text) => text.match(METRIC_NAME) ?? []));

      // Act
      const missing = [...used].filter((name) => !exported.has(name));

      // Assert
      expect(used.size).toBeGreaterThan(15);
      expect(missing).toEqual([]);
    });

    it('when the dashboard is read, then every metric the services export about jobs, queues and inference is on it', () => {
      const onDashboard = new Set(dashboardExpressions(dashboard).flatMap(([, e]) => e.match(METRIC_NAME) ?? []));
      const families = [...exported].filter((n) => /^onnx_batch_(jobs|job|rows|queue|inference|http)_/.test(n) && !/_(sum|count)$/.test(n));
      const histogramBase = (n: string): string => n.replace(/_bucket$/, '');

      const absent = families
        .filter((n) => ![...onDashboard].some((d) => histogramBase(d) === histogramBase(n)))
        .filter((n) => n !== 'onnx_batch_queue_collect_errors_total');

      expect(absent).toEqual([]);
    });
  });
});
