import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import {
  isFinished,
  ProblemError,
  type Evaluation,
  type EvaluationSource,
  type ModelManifest,
  type QualityGateOutcome,
} from '@onnx-batch/contracts';
import type { Config } from '../config';
import type { JobRecord } from '../jobs/job-record';
import type { JobStore } from '../jobs/job-store';
import type { Logger } from '../logger';
import type { ModelEntry, ModelRepository, ModelVersion } from '../model-repository';
import { qualityKindOf, type QualityKind } from '../quality/quality-counters';
import { ndjsonRows } from '../rows/ndjson-rows';
import { servingDefault } from '../rollouts/rollout';
import type { RolloutStore } from '../rollouts/rollout-store';
import type { JobSubmitter } from '../submission/job-submitter';
import { pinnedSelection } from '../submission/model-router';
import { comparisonText, evaluationReport } from './evaluation-report';
import { decodeTruths, encodeTruths, splitLabelledRows, type LabelledRows } from './evaluation-set';
import type { EvaluationOutcome, EvaluationRecord, EvaluationStore } from './evaluation-store';
import { seedOf } from './paired-bootstrap';

export type EvaluationConfig = Pick<
  Config,
  | 'EVALUATION_MAX_ROWS'
  | 'GATE_BOOTSTRAP_RESAMPLES'
  | 'GATE_CONFIDENCE'
  | 'GATE_ALLOWED_REGRESSION'
  | 'GATE_MIN_ROWS'
  | 'SPOOL_DIR'
  | 'MAX_ROW_BYTES'
>;

/** Priority of an evaluation's jobs: that of a job submitted without one (api: DEFAULT_PRIORITY). */
const EVALUATION_PRIORITY = 100;
/** Result chunks read at a time while a report is made. */
const CHUNKS_PER_READ = 64;

export interface StartEvaluation {
  model: string;
  /** The candidate version. */
  version: string;
  rows: LabelledRows;
  source: EvaluationSource;
  actor: { tenant: string; keyId: string };
}

/**
 * Evaluations of a candidate version against the serving default (docs/models-in-production.md#quality-gate).
 * Starting one reads the labelled rows once (validated, truths kept aside, rows spooled to a
 * private file) and submits them twice through the one submission path, as two ordinary jobs
 * pinned to the candidate and to the default. Nothing waits for them: the report is made from
 * their stored results and the truths when both have finished, by whoever reads the evaluation
 * first (a GET, the gate), and stored once.
 */
export class EvaluationService {
  constructor(
    private readonly repository: ModelRepository,
    private readonly rollouts: RolloutStore,
    private readonly jobs: JobStore,
    private readonly submitter: JobSubmitter,
    private readonly evaluations: EvaluationStore,
    private readonly config: EvaluationConfig,
    private readonly logger: Logger,
  ) {}

  /** The labelled rows of a version's own evaluation set (its manifest's `evaluation.file`), or 404 when it has none. */
  repositorySet(model: string, version: string): { rows: LabelledRows; source: EvaluationSource } {
    const found = this.repository.resolve(model, version);
    const spec = found.manifest.evaluation;
    if (!spec)
      throw new ProblemError(
        'OB_ERR_EVALUATION_NOT_FOUND',
        `version ${version} of ${model} has no evaluation set in the repository (its manifest names no \`evaluation\`): upload ` +
          'labelled rows (NDJSON, CSV or JSON) to evaluate it',
      );
    const file = path.join(path.dirname(found.manifestPath), spec.file);
    if (!existsSync(file))
      throw new ProblemError(
        'OB_ERR_EVALUATION_NOT_FOUND',
        `the evaluation set of version ${version} of ${model} (${spec.file}, named by its manifest) is missing from the repository`,
      );
    const source = ndjsonRows(createReadStream(file), this.config.MAX_ROW_BYTES);
    return {
      rows: { rows: source.rows, location: source.currentLine },
      source: { kind: 'repository', file: spec.file, description: spec.description },
    };
  }

  async start(request: StartEvaluation): Promise<Evaluation> {
    const entry = this.repository.entry(request.model);
    const candidate = this.repository.resolve(request.model, request.version);
    const baselineVersion = servingDefault(entry, await this.rollouts.get(entry.name));
    if (baselineVersion === candidate.manifest.version)
      throw invalidVersion(
        `version ${baselineVersion} serves jobs that name no version: an evaluation compares another version against it`,
      );
    const baseline = this.repository.resolve(entry.name, baselineVersion);
    const kind = comparable(candidate.manifest, baseline.manifest);

    const spool = await mkdtemp(path.join(this.config.SPOOL_DIR || tmpdir(), 'onnx-batch-evaluation-'));
    try {
      const file = path.join(spool, 'rows.ndjson');
      const out = createWriteStream(file, { mode: 0o600 });
      const written = once(out, 'close');
      let truths: Float64Array;
      try {
        truths = await splitLabelledRows(request.rows, candidate, kind, this.config.EVALUATION_MAX_ROWS, async (row) => {
          if (!out.write(`${JSON.stringify(row)}\n`)) await once(out, 'drain');
        });
      } finally {
        out.end();
        await written;
      }
      const id = randomUUID();
      const submit = (version: ModelVersion) =>
        this.submitter.submit({
          model: pinnedSelection(version),
          rows: spooledRows(file),
          rowLocation: 'row',
          tenant: request.actor.tenant,
          priority: EVALUATION_PRIORITY,
          callbackUrl: null,
        });
      const baselineJob = (await submit(baseline)).record;
      let candidateJob: JobRecord;
      try {
        candidateJob = (await submit(candidate)).record;
      } catch (error) {
        await this.dropJob(baselineJob);
        throw error;
      }
      const record: EvaluationRecord = {
        id,
        model: entry.name,
        version: candidate.manifest.version,
        baseline: baselineVersion,
        source: request.source,
        rows: truths.length,
        jobs: { candidate: candidateJob.id, baseline: baselineJob.id },
        createdAt: new Date().toISOString(),
        createdBy: request.actor,
        fingerprints: { candidate: candidate.fingerprint, baseline: baseline.fingerprint },
        kind,
        labels: kind === 'classification' ? [...(candidate.manifest.result.labels ?? [])] : [],
      };
      try {
        await this.evaluations.create(record, encodeTruths(kind, truths));
      } catch (error) {
        await Promise.all([this.dropJob(baselineJob), this.dropJob(candidateJob)]);
        throw error;
      }
      this.logger.info('evaluation started', {
        evaluationId: id,
        model: entry.name,
        version: record.version,
        baseline: baselineVersion,
        rows: record.rows,
        jobs: record.jobs,
      });
      return this.view(record, null, { candidate: candidateJob, baseline: baselineJob });
    } finally {
      await rm(spool, { recursive: true, force: true });
    }
  }

  /** An evaluation, its report made now if both jobs have finished since it was last read; 404 when unknown. */
  async get(model: string, version: string, id: string): Promise<Evaluation> {
    const found = await this.evaluations.get(model, id);
    if (!found || found.record.version !== version)
      throw new ProblemError(
        'OB_ERR_EVALUATION_NOT_FOUND',
        `no evaluation '${id.slice(0, 64)}' of version ${version} of ${model} (unknown, or past EVALUATION_RETENTION_DAYS)`,
      );
    return this.settle(found.record, found.outcome);
  }

  /** A candidate version's evaluations, newest first. */
  async list(model: string, version: string, limit: number): Promise<Evaluation[]> {
    const out: Evaluation[] = [];
    for (const id of await this.evaluations.ids(model, version, limit)) {
      const found = await this.evaluations.get(model, id);
      if (!found) await this.evaluations.unlist(model, version, id);
      else out.push(await this.settle(found.record, found.outcome));
    }
    return out;
  }

  /**
   * The quality gate of a canary `version` beside the default `baseline`: a version with an
   * evaluation set (in its manifest, or one uploaded) passes only with a passing, finished
   * evaluation against that default on the model files served now — the latest such one. A
   * version without any evaluation set is not gated.
   */
  async gate(entry: ModelEntry, version: string, baseline: string): Promise<QualityGateOutcome> {
    const candidate = entry.versions.find((v) => v.manifest.version === version);
    const defaultModel = entry.versions.find((v) => v.manifest.version === baseline);
    const ids = await this.evaluations.ids(entry.name, version);
    const outcome = (state: QualityGateOutcome['state'], detail: string, extra: Partial<QualityGateOutcome> = {}): QualityGateOutcome => ({
      version,
      baseline,
      state,
      passes: state === 'passed' || state === 'not-gated',
      evaluationId: null,
      primary: null,
      detail,
      ...extra,
    });
    if (!candidate?.manifest.evaluation && ids.length === 0)
      return outcome('not-gated', `version ${version} has no evaluation set (none in its manifest, none uploaded): it is not gated`);
    let latest: { record: EvaluationRecord; outcome: EvaluationOutcome | null } | null = null;
    for (const id of ids) {
      const found = await this.evaluations.get(entry.name, id);
      if (!found) continue;
      const { record } = found;
      if (
        record.baseline === baseline &&
        record.fingerprints.candidate === candidate?.fingerprint &&
        record.fingerprints.baseline === defaultModel?.fingerprint
      ) {
        latest = found;
        break;
      }
    }
    const run = `run one: POST /v1/models/${entry.name}/versions/${version}/evaluations (or onnx-batch evaluate ${entry.name} ${version})`;
    if (!latest)
      return outcome(
        'missing',
        `version ${version} has an evaluation set but no evaluation against the default ${baseline} with the model files served ` +
          `now; ${run}`,
      );
    const evaluation = await this.settle(latest.record, latest.outcome);
    const which = `the latest evaluation of version ${version} against the default ${baseline} (${evaluation.id})`;
    const extra = { evaluationId: evaluation.id, primary: evaluation.report?.metrics[0] ?? null };
    if (evaluation.status === 'running') {
      const p = evaluation.progress;
      const rows = p ? ` (candidate ${p.candidate.done}/${p.candidate.total} rows, default ${p.baseline.done}/${p.baseline.total})` : '';
      return outcome('running', `${which} is still running${rows}: wait for it to finish`, extra);
    }
    if (evaluation.status === 'failed') return outcome('errored', `${which} could not be made: ${evaluation.error ?? ''}; ${run}`, extra);
    const report = evaluation.report;
    if (!report) return outcome('errored', `${which} has no report; ${run}`, extra);
    const state = report.verdict === 'pass' ? 'passed' : report.verdict === 'fail' ? 'failed' : 'insufficient-data';
    const verb = report.verdict === 'pass' ? 'passes' : report.verdict === 'fail' ? 'fails' : 'has too few rows';
    return outcome(state, `${which} ${verb}: ${report.reason}`, extra);
  }

  /** The evaluation as it stands; when both jobs have finished and no outcome is stored yet, makes and stores it. */
  private async settle(record: EvaluationRecord, stored: EvaluationOutcome | null): Promise<Evaluation> {
    if (stored) return this.view(record, stored, null);
    const [candidate, baseline] = await Promise.all([this.jobs.get(record.jobs.candidate), this.jobs.get(record.jobs.baseline)]);
    const sides = [
      ['candidate', record.jobs.candidate, candidate],
      ['baseline', record.jobs.baseline, baseline],
    ] as const;
    for (const [side, id, job] of sides) {
      const role = side === 'candidate' ? `candidate version ${record.version}` : `default version ${record.baseline}`;
      if (!job || job.status === 'failed' || job.status === 'cancelled') {
        const why = !job
          ? 'is gone (deleted, or expired RESULT_TTL_SECONDS after it finished) before the report was made'
          : job.status === 'failed'
            ? `failed (${job.error?.detail ?? 'no row could run'})`
            : 'was cancelled';
        const finishedAt = job?.finishedAt ?? new Date().toISOString();
        return this.view(
          record,
          await this.evaluations.finish(record.model, record.id, {
            status: 'failed',
            finishedAt,
            error: `the job of the ${role} (${id}) ${why}`,
          }),
          null,
        );
      }
    }
    if (!candidate || !baseline || !isFinished(candidate.status) || !isFinished(baseline.status))
      return this.view(record, null, { candidate, baseline });
    return this.view(record, await this.makeReport(record, candidate, baseline), null);
  }

  private async makeReport(record: EvaluationRecord, candidate: JobRecord, baseline: JobRecord): Promise<EvaluationOutcome> {
    const finishedAt = [candidate.finishedAt ?? '', baseline.finishedAt ?? ''].sort()[1] || new Date().toISOString();
    const truthBytes = await this.evaluations.truths(record.model, record.id);
    if (!truthBytes) {
      // Another reader made the report (and dropped the truths) in the meantime, or they expired.
      const again = await this.evaluations.get(record.model, record.id);
      if (again?.outcome) return again.outcome;
      return this.evaluations.finish(record.model, record.id, { status: 'failed', finishedAt, error: 'its truths are gone (expired)' });
    }
    const truths = decodeTruths(record.kind, truthBytes);
    const width = record.kind === 'classification' ? record.labels.length : 1;
    const [candidateValues, baselineValues] = await Promise.all([
      this.resultValues(candidate, width, truths.length),
      this.resultValues(baseline, width, truths.length),
    ]);
    const report = await evaluationReport(
      {
        kind: record.kind,
        labels: record.labels,
        candidate: candidateValues,
        baseline: baselineValues,
        width,
        truths,
        versions: { candidate: record.version, baseline: record.baseline },
        seed: seedOf(record.id),
      },
      {
        resamples: this.config.GATE_BOOTSTRAP_RESAMPLES,
        confidence: this.config.GATE_CONFIDENCE,
        allowedRegression: this.config.GATE_ALLOWED_REGRESSION,
        minRows: this.config.GATE_MIN_ROWS,
      },
    );
    const outcome = await this.evaluations.finish(record.model, record.id, { status: 'completed', finishedAt, report });
    if (outcome.status === 'completed') {
      const primary = outcome.report.metrics[0];
      this.logger.info('evaluation finished', {
        evaluationId: record.id,
        model: record.model,
        version: record.version,
        baseline: record.baseline,
        verdict: outcome.report.verdict,
        ...(primary
          ? {
              figures: comparisonText(primary, outcome.report.comparedRows, outcome.report.bootstrap.confidence, {
                candidate: record.version,
                baseline: record.baseline,
              }),
            }
          : {}),
      });
    }
    return outcome;
  }

  /** A finished job's stored values in input order, rows × width (NaN where a row failed or a chunk has no results). */
  private async resultValues(job: JobRecord, width: number, rows: number): Promise<Float32Array> {
    if (job.total !== rows)
      this.logger.warn('an evaluation job holds another count of rows than its set', { jobId: job.id, rows: job.total, expected: rows });
    const out = new Float32Array(rows * width).fill(NaN);
    for (let from = 0; from < job.chunks; from += CHUNKS_PER_READ) {
      const chunks = await this.jobs.readResults(job.id, from, Math.min(job.chunks, from + CHUNKS_PER_READ));
      chunks.forEach((chunk, i) => {
        const first = (from + i) * job.chunkSize;
        if (!chunk || chunk.kind === 'lines' || chunk.names.length !== width) return;
        const count = Math.max(0, Math.min(chunk.rows, rows - first));
        out.set(chunk.values.subarray(0, count * width), first * width);
      });
    }
    return out;
  }

  private view(
    record: EvaluationRecord,
    outcome: EvaluationOutcome | null,
    jobs: { candidate: JobRecord | null; baseline: JobRecord | null } | null,
  ): Evaluation {
    const progress = (job: JobRecord | null | undefined) => ({ done: job?.done ?? 0, total: job?.total ?? record.rows });
    const { kind: _kind, labels: _labels, ...shown } = record;
    return {
      ...shown,
      status: outcome ? outcome.status : 'running',
      finishedAt: outcome?.finishedAt ?? null,
      progress: outcome ? null : { candidate: progress(jobs?.candidate), baseline: progress(jobs?.baseline) },
      report: outcome?.status === 'completed' ? outcome.report : null,
      error: outcome?.status === 'failed' ? outcome.error : null,
    };
  }

  /** Cancels and deletes a job of an evaluation that could not be started. */
  private async dropJob(job: JobRecord): Promise<void> {
    try {
      await this.jobs.cancel(job.id, new Date());
      await this.jobs.remove(job.id, job.chunks, job.tenant);
    } catch (error) {
      this.logger.warn('could not remove the job of an evaluation that did not start', { jobId: job.id, error: String(error) });
    }
  }
}

/**
 * The quality kind two versions are compared as: both classifiers with the same labels in the
 * same order, or both one-target regression models, taking the same features.
 */
function comparable(candidate: ModelManifest, baseline: ModelManifest): QualityKind {
  const kind = qualityKindOf(candidate);
  if (!kind) {
    const kind = candidate.result.kind;
    const answers = kind === 'tensor' ? 'tensors' : kind === 'embedding' ? 'embeddings' : 'several targets';
    throw invalidVersion(
      `version ${candidate.version} of ${candidate.name} answers ${answers}: only ` +
        'classifiers and one-target regression models are evaluated',
    );
  }
  const features = (m: ModelManifest): string => JSON.stringify(m.features.map((f) => [f.name, f.type, f.shape ?? null]));
  if (
    baseline.result.kind !== kind ||
    JSON.stringify(baseline.result.labels ?? []) !== JSON.stringify(candidate.result.labels ?? []) ||
    (baseline.result.names?.length ?? 1) !== (candidate.result.names?.length ?? 1) ||
    features(baseline) !== features(candidate)
  )
    throw invalidVersion(
      `version ${candidate.version} does not answer like the default ${baseline.version} (the same features, result kind and ` +
        'labels): they cannot be compared row for row',
    );
  return kind;
}

function invalidVersion(message: string): ProblemError {
  return new ProblemError('OB_ERR_INVALID_REQUEST', message, { errors: [{ field: 'version', message }] });
}

/** The spooled rows, one JSON object a line, as a submit reads them. */
async function* spooledRows(file: string): AsyncGenerator<unknown> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of lines) if (line !== '') yield JSON.parse(line) as unknown;
}
