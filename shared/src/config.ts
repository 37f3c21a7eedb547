import os from 'node:os';
import path from 'node:path';
import Ajv from 'ajv';
import { parseEncryptionKey } from './crypto/at-rest';
import { parseRedisEndpoints } from './redis-endpoints';
import { checkWebhookSecret, parseWebhookSecrets } from './webhooks/signature';
import { parseAllowList } from './webhooks/ssrf-guard';

/**
 * Every setting of onnx-batch, read once from the environment, typed, validated and frozen.
 * This table is the single source of truth: the README's configuration table is checked
 * against it by a test. Nothing else in the code base reads `process.env`.
 */
export const CONFIG_VARIABLES = {
  PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 8080, doc: 'HTTP port of the API.' },
  HOST: { type: 'string', default: '127.0.0.1', doc: 'Interface the API listens on.' },
  TLS_CERT_FILE: {
    type: 'string',
    default: '',
    doc: 'PEM certificate (chain) the API serves HTTPS with, together with TLS_KEY_FILE. Empty: plain HTTP.',
  },
  TLS_KEY_FILE: { type: 'string', default: '', doc: 'PEM private key of TLS_CERT_FILE.' },
  TLS_RELOAD_INTERVAL_MS: {
    type: 'integer',
    minimum: 100,
    maximum: 86_400_000,
    default: 60_000,
    doc: 'How often the API looks for a renewed TLS_CERT_FILE / TLS_KEY_FILE on disk and starts serving it, without a restart.',
  },
  METRICS_PORT: {
    type: 'integer',
    minimum: 0,
    maximum: 65535,
    default: 9464,
    doc: "Port of a worker process's Prometheus `/metrics` (and `/livez`) server, on HOST (0 = none). The API serves `/metrics` on PORT.",
  },
  REDIS_URL: {
    type: 'string',
    pattern: '^rediss?://',
    default: 'redis://127.0.0.1:6379',
    doc: 'Redis holding queues, inputs and results (`redis://` or `rediss://`).',
  },
  REDIS_PREFIX: {
    type: 'string',
    pattern: '^[A-Za-z0-9_{}.-]{1,64}$',
    default: 'onnx-batch',
    doc:
      "Prefix of every Redis key (queues included). No braces with REDIS_CLUSTER_NODES: BullMQ's keys get the hash tag " +
      "`{<prefix>}` by themselves, and a job's keys must keep their own.",
  },
  REDIS_CLUSTER_NODES: {
    type: 'string',
    default: '',
    doc:
      'Seed nodes of a Redis Cluster, comma-separated `host:port` (`rediss://host:port`: TLS to every node). When set, ' +
      'REDIS_URL is ignored. See docs/operations.md.',
  },
  REDIS_SENTINELS: {
    type: 'string',
    default: '',
    doc:
      'Redis Sentinels watching the primary, comma-separated `host:port` (`rediss://host:port`: TLS to the Sentinels and the ' +
      'servers). When set, REDIS_URL is ignored and every process follows the primary through fail-overs.',
  },
  REDIS_SENTINEL_NAME: {
    type: 'string',
    pattern: '^[A-Za-z0-9_.-]{1,64}$',
    default: 'mymaster',
    doc: 'Name of the primary the Sentinels watch (`sentinel monitor <name> …`).',
  },
  REDIS_PASSWORD: {
    type: 'string',
    default: '',
    secret: true,
    doc: 'Password of the Redis servers reached through REDIS_CLUSTER_NODES or REDIS_SENTINELS (with REDIS_URL, put it in the URL).',
  },
  REDIS_SENTINEL_PASSWORD: {
    type: 'string',
    default: '',
    secret: true,
    doc: 'Password of the Sentinels themselves (`requirepass` of sentinel.conf), when they have one.',
  },
  REDIS_TLS_CA_FILE: {
    type: 'string',
    default: '',
    doc: "PEM file of the CA(s) to trust for Redis over TLS (`rediss://`). Empty: Node's default CAs.",
  },
  REDIS_WAIT_REPLICAS: {
    type: 'integer',
    minimum: 0,
    maximum: 16,
    default: 0,
    doc:
      "Replicas that must have a job's commit (Redis `WAIT`) before the API answers 202. Default 1 when REDIS_SENTINELS is " +
      'set, else 0. A commit not acknowledged in REDIS_WAIT_TIMEOUT_MS is still answered 202, with a warning logged (see ' +
      'docs/operations.md).',
  },
  REDIS_WAIT_TIMEOUT_MS: {
    type: 'integer',
    minimum: 1,
    maximum: 60_000,
    default: 1000,
    doc: 'How long a commit waits for REDIS_WAIT_REPLICAS replicas.',
  },
  ALLOW_EVICTING_REDIS: {
    type: 'string',
    enum: ['false', 'true'],
    default: 'false',
    doc:
      '`true`: accept jobs even when a Redis server has a `maxmemory-policy` other than `noeviction` (an evicted job is lost ' +
      'without a word; logged as an error at start). Default: such a Redis fails `/readyz` and submits answer 503 ' +
      '`OB_ERR_REDIS_EVICTING`. See docs/operations.md, "Redis memory".',
  },
  REDIS_MEMORY_HIGH_WATERMARK: {
    type: 'number',
    exclusiveMinimum: 0,
    maximum: 1,
    default: 0.85,
    doc:
      "Share of Redis' `maxmemory` from which new jobs are refused (507 `OB_ERR_STORAGE_FULL`), so that the jobs already " +
      'accepted still have room for their results; polls and downloads go on. 1: refuse only when Redis itself refuses.',
  },
  REDIS_MEMORY_CHECK_INTERVAL_MS: {
    type: 'integer',
    minimum: 100,
    maximum: 600_000,
    default: 1000,
    doc: "How often each process reads every Redis server's eviction policy and memory use (also read on every `/readyz`).",
  },
  QUEUE_SHARDS: {
    type: 'integer',
    minimum: 1,
    maximum: 64,
    default: 1,
    doc:
      'Chunk queues (each with its batch queue) that jobs are spread over by id; on Redis Cluster each lives in its own slot ' +
      '(`{<prefix>-s<i>}`). Every worker takes from all. Change it only with the queues drained.',
  },
  MODELS_DIR: {
    type: 'string',
    default: '',
    doc: 'Model repository (`<name>/<version>/model.{onnx,json}`). Default: `models/` of the checkout.',
  },
  DEFAULT_MODEL: {
    type: 'string',
    pattern: '^[a-z][a-z0-9-]{0,63}$',
    default: 'iris',
    doc: 'Model used by the unversioned `/batch-predict` when the body names none.',
  },
  MODEL_RELOAD_INTERVAL_MS: {
    type: 'integer',
    minimum: 0,
    maximum: 3_600_000,
    default: 2000,
    doc: 'How often the model repository is rescanned for new or removed versions (0 = never).',
  },
  RESULT_TTL_SECONDS: {
    type: 'integer',
    minimum: 1,
    maximum: 31_536_000,
    default: 86_400,
    doc: 'How long a job, its inputs and its results are kept after it finishes.',
  },
  STAGING_TTL_SECONDS: {
    type: 'integer',
    minimum: 10,
    maximum: 86_400,
    default: 900,
    doc: 'How long staged inputs of an upload that never committed survive.',
  },
  API_KEYS: {
    type: 'string',
    default: '',
    doc:
      'API keys as comma-separated `tenant:key` or `tenant:key:role+role` (roles `read`, `submit`, `admin`; default ' +
      '`read+submit`). No key at all: open, loopback only.',
  },
  API_KEYS_FILE: {
    type: 'string',
    default: '',
    doc: 'JSON file of hashed keys: `[{"tenant","sha256","roles"}]` (`sha256` = hex SHA-256 of the key).',
  },
  RATE_LIMIT_PER_MINUTE: {
    type: 'integer',
    minimum: 0,
    maximum: 10_000_000,
    default: 6000,
    doc: 'Requests per minute per API key, shared by all API replicas through Redis (0 = no limit).',
  },
  MAX_ACTIVE_JOBS_PER_TENANT: {
    type: 'integer',
    minimum: 1,
    maximum: 1_000_000,
    default: 100,
    doc: 'Unfinished jobs one tenant may have at once (429 above).',
  },
  MAX_STREAM_BYTES: {
    type: 'integer',
    minimum: 1024,
    maximum: 1_099_511_627_776,
    default: 10_737_418_240,
    doc: 'Largest streamed (NDJSON, CSV, Arrow, Parquet) upload accepted (413 above).',
  },
  LOG_LEVEL: {
    type: 'string',
    enum: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'],
    default: 'info',
    doc: 'winston log level.',
  },
  MAX_BODY_BYTES: {
    type: 'integer',
    minimum: 1024,
    maximum: 1_073_741_824,
    default: 67_108_864,
    doc: 'Largest JSON request body accepted (413 above).',
  },
  MAX_ROW_BYTES: {
    type: 'integer',
    minimum: 1024,
    maximum: 1_073_741_824,
    default: 1_048_576,
    doc:
      'Longest row of a streamed upload: an NDJSON line or a CSV record (413 naming the line as soon as that many bytes of it ' +
      'have arrived, so one endless line cannot fill memory).',
  },
  PARQUET_MAX_ROW_GROUP_BYTES: {
    type: 'integer',
    minimum: 1024,
    maximum: 4_294_967_296,
    default: 134_217_728,
    doc:
      'Largest row group of a Parquet upload, uncompressed (as the file states it, or 8 bytes a number once decoded, whichever ' +
      'is larger): a row group is decoded whole, so a larger one is refused (413 naming the row group and how to rewrite the file).',
  },
  SPOOL_DIR: {
    type: 'string',
    default: '',
    doc: 'Directory Parquet uploads are spooled to while they are read (each removed when its request ends). Empty: the OS temp directory.',
  },
  HTTP_REQUEST_TIMEOUT_MS: {
    type: 'integer',
    minimum: 0,
    maximum: 86_400_000,
    default: 300_000,
    doc:
      "Longest time the API waits for a whole request, body included (Node's `requestTimeout`; 408 and the connection closed " +
      'after it; 0 = no limit). It bounds how long a client trickling bytes can hold a connection; raise it for uploads that ' +
      'take longer over slow links.',
  },
  MAX_ROWS_PER_JOB: {
    type: 'integer',
    minimum: 1,
    maximum: 100_000_000,
    default: 10_000_000,
    doc: 'Most rows one job may carry (413 above).',
  },
  CHUNK_SIZE: {
    type: 'integer',
    minimum: 1,
    maximum: 1_000_000,
    default: 4000,
    doc: 'Rows per chunk, unless the model manifest sets `chunkSize` (4000 iris rows keep a chunk under 64 KiB, a Redis allocator class).',
  },
  INLINE_RESULTS_LIMIT: {
    type: 'integer',
    minimum: 0,
    maximum: 1_000_000,
    default: 10_000,
    doc: 'Most results returned inline by `GET /v1/batch-result/:id`; larger jobs answer with a `resultsUrl`.',
  },
  SYNC_MAX_ROWS: {
    type: 'integer',
    minimum: 1,
    maximum: 100_000,
    default: 1000,
    doc: 'Most rows the synchronous `POST /v1/models/:name/predict` takes.',
  },
  PREDICTION_CACHE_MODELS: {
    type: 'string',
    pattern: '^[a-z0-9*,\\s-]*$',
    default: '',
    doc:
      'Models whose predictions are cached in Redis (comma-separated names, or `*`): the synchronous predict answers a ' +
      'request whose every row was seen before without queueing a job. Empty: no cache. See README "Prediction cache".',
  },
  PREDICTION_CACHE_TTL_SECONDS: {
    type: 'integer',
    minimum: 1,
    maximum: 31_536_000,
    default: 3600,
    doc: 'How long a cached prediction is kept.',
  },
  SYNC_TIMEOUT_MS: {
    type: 'integer',
    minimum: 1,
    maximum: 600_000,
    default: 10_000,
    doc: 'How long the synchronous predict waits before answering 504 with the job id.',
  },
  JOB_ATTEMPTS: { type: 'integer', minimum: 1, maximum: 100, default: 3, doc: 'Attempts per chunk before its rows are marked failed.' },
  JOB_BACKOFF_MS: {
    type: 'integer',
    minimum: 0,
    maximum: 600_000,
    default: 1000,
    doc: 'First retry delay of a chunk (exponential backoff).',
  },
  WORKER_CONCURRENCY: {
    type: 'integer',
    minimum: 1,
    maximum: 1024,
    default: 16,
    doc: 'Chunks a worker process holds at once (small ones are batched into one ONNX Runtime call).',
  },
  FINALIZE_CONCURRENCY: {
    type: 'integer',
    minimum: 1,
    maximum: 1024,
    default: 4,
    doc: 'finalize-batch parents a worker process runs at once (each a few Redis reads after a multi-chunk batch).',
  },
  WEBHOOK_CONCURRENCY: {
    type: 'integer',
    minimum: 1,
    maximum: 1024,
    default: 8,
    doc: 'Webhook deliveries a worker process makes at once (each mostly waits on the receiver, at most WEBHOOK_TIMEOUT_MS).',
  },
  INFERENCE_THREADS: {
    type: 'integer',
    minimum: 1,
    maximum: 256,
    default: 1,
    doc: 'Inference threads per worker process, each with its own ONNX Runtime sessions.',
  },
  INTRA_OP_THREADS: { type: 'integer', minimum: 1, maximum: 256, default: 1, doc: 'ONNX Runtime intra-op threads per session.' },
  MAX_BATCH_ROWS: {
    type: 'integer',
    minimum: 1,
    maximum: 1_000_000,
    default: 8192,
    doc: 'Most rows one dynamic batch (several small chunks in one `run()`) may hold.',
  },
  LOCK_DURATION_MS: {
    type: 'integer',
    minimum: 1000,
    maximum: 3_600_000,
    default: 30_000,
    doc: 'BullMQ lock on a running chunk; a worker that dies loses it after this long and the chunk is retried.',
  },
  STALLED_INTERVAL_MS: {
    type: 'integer',
    minimum: 1000,
    maximum: 3_600_000,
    default: 15_000,
    doc: 'How often workers look for chunks whose worker died.',
  },
  MAX_STALLED_COUNT: {
    type: 'integer',
    minimum: 0,
    maximum: 1000,
    default: 10,
    doc: 'Times a chunk may lose its worker (crash, kill -9) and be recovered before its rows are marked failed.',
  },
  RECOVERY_INTERVAL_MS: {
    type: 'integer',
    minimum: 100,
    maximum: 3_600_000,
    default: 5000,
    doc:
      'How often one worker sweeps for committed jobs an API left unqueued (it crashed between commit and enqueue) and chunk ' +
      'jobs BullMQ failed without their rows being recorded; an outbox entry is queued once it is this old.',
  },
  SHUTDOWN_GRACE_MS: {
    type: 'integer',
    minimum: 0,
    maximum: 3_600_000,
    default: 25_000,
    doc: 'On SIGTERM, how long in-flight requests and chunks may take before the process exits anyway.',
  },
  DRIFT_SAMPLE_RATE: {
    type: 'number',
    minimum: 0,
    maximum: 1,
    default: 1,
    doc:
      "Share of chunks whose rows workers count into their version's drift statistics (whole chunks, drawn at random; 0 = " +
      'off). See docs/drift.md.',
  },
  DRIFT_RETENTION_HOURS: {
    type: 'integer',
    minimum: 1,
    maximum: 8760,
    default: 48,
    doc: 'How long drift counts (minute and hour buckets in Redis) are kept after their bucket ends.',
  },
  DRIFT_WARN_PSI: {
    type: 'number',
    exclusiveMinimum: 0,
    maximum: 100,
    default: 0.1,
    doc: "PSI from which a statistic's drift status is `warn`.",
  },
  DRIFT_ALERT_PSI: {
    type: 'number',
    exclusiveMinimum: 0,
    maximum: 100,
    default: 0.25,
    doc: "PSI from which a statistic's drift status is `drift` (at least DRIFT_WARN_PSI).",
  },
  DRIFT_MIN_ROWS: {
    type: 'integer',
    minimum: 1,
    maximum: 1_000_000_000,
    default: 1000,
    doc: 'Fewest rows in a window for a drift verdict; fewer answer `insufficient-data`.',
  },
  FILES_TTL_SECONDS: {
    type: 'integer',
    minimum: 60,
    maximum: 31_536_000,
    default: 604_800,
    doc:
      'How long a file uploaded to `POST /v1/files` (the Batch API, docs/interop.md) is kept; its batches need it only while ' +
      'they are created. Its bytes count against Redis memory like staged inputs.',
  },
  FILES_MAX_BYTES: {
    type: 'integer',
    minimum: 1024,
    maximum: 1_073_741_824,
    default: 209_715_200,
    doc: 'Largest file `POST /v1/files` takes (413 above); 200 MB, as the Batch API it follows.',
  },
  BATCH_MAX_REQUESTS: {
    type: 'integer',
    minimum: 1,
    maximum: 10_000_000,
    default: 50_000,
    doc: 'Most request lines one batch file of `POST /v1/batches` may hold (the batch fails validation above; 50 000 as the Batch API).',
  },
  LABEL_RETENTION_DAYS: {
    type: 'integer',
    minimum: 0,
    maximum: 366,
    default: 30,
    doc:
      'How long the predictions that ground-truth labels are joined to are kept (version, arm and the stored probabilities or ' +
      'value of each row: 4 bytes per class or target a row), and the quality counters per hour and day, counted from the ' +
      'prediction; independent of RESULT_TTL_SECONDS (docs/models-in-production.md#quality). Deleting a job removes its share.',
  },
  LABEL_ID_INDEX: {
    type: 'string',
    enum: ['false', 'true'],
    default: 'true',
    doc:
      'Index the ids rows were submitted with, per tenant and day, so `POST /v1/labels` can find a row by its id alone ' +
      '(about 20 bytes of Redis a row with a short id, for LABEL_RETENTION_DAYS). Off: labels name their job (`POST ' +
      '/v1/batch-result/{id}/labels`).',
  },
  MAX_LABELS_PER_REQUEST: {
    type: 'integer',
    minimum: 1,
    maximum: 10_000_000,
    default: 1_000_000,
    doc: 'Most labels one request may carry (they are checked whole before any is applied).',
  },
  QUALITY_MIN_LABELS: {
    type: 'integer',
    minimum: 1,
    maximum: 1_000_000_000,
    default: 200,
    doc:
      'Fewest labelled rows in a window before its realised quality is exported as a judged gauge and can fire an alert or ' +
      "roll a canary back (a canary's guard needs them on both arms).",
  },
  QUALITY_ALERT_MARGIN: {
    type: 'number',
    minimum: 0,
    maximum: 1,
    default: 0.05,
    doc:
      "How far below its version's reference accuracy (or above its reference RMSE, relatively) a window's quality may fall " +
      'before it is judged degraded; also how much worse a canary may be than the default before its guard rolls it back.',
  },
  QUALITY_GUARD_WINDOW_HOURS: {
    type: 'integer',
    minimum: 1,
    maximum: 8784,
    default: 24,
    doc:
      "The window a canary's guard compares the canary's and the default's labelled quality over: the hour buckets of the last " +
      'this many hours, from when the rollout last changed at the earliest (docs/models-in-production.md#quality-gate).',
  },
  EVALUATION_MAX_ROWS: {
    type: 'integer',
    minimum: 1,
    maximum: 10_000_000,
    default: 100_000,
    doc:
      'Most labelled rows an evaluation set may have (a repository file or an upload). Its truths are kept in Redis (2 bytes a ' +
      "row for a classifier, 8 for regression) until its report is made; the report's bootstrap costs resamples × rows.",
  },
  EVALUATION_RETENTION_DAYS: {
    type: 'integer',
    minimum: 1,
    maximum: 3660,
    default: 90,
    doc: 'How long an evaluation (its record and report) is kept after it started; the quality gate only sees evaluations kept.',
  },
  GATE_BOOTSTRAP_RESAMPLES: {
    type: 'integer',
    minimum: 100,
    maximum: 100_000,
    default: 1000,
    doc: "Resamples of an evaluation's paired bootstrap (rows drawn with replacement, the same rows for both versions).",
  },
  GATE_CONFIDENCE: {
    type: 'number',
    minimum: 0.5,
    maximum: 0.999,
    default: 0.95,
    doc: "Confidence level of an evaluation's bootstrap interval of each metric's difference (candidate − baseline).",
  },
  GATE_ALLOWED_REGRESSION: {
    type: 'number',
    minimum: 0,
    maximum: 1,
    default: 0.01,
    doc:
      "How much worse than the default a candidate's primary metric may be and still pass the quality gate: absolute for " +
      'accuracy (0.01 = one point), relative for RMSE (0.01 = 1 % higher). A candidate fails only when its difference is beyond ' +
      'this and the confidence interval excludes "no worse" (docs/models-in-production.md#quality-gate).',
  },
  GATE_MIN_ROWS: {
    type: 'integer',
    minimum: 1,
    maximum: 1_000_000,
    default: 30,
    doc:
      'Fewest rows predicted on both versions for an evaluation verdict; fewer answer `insufficient-data`, which does not pass ' +
      'the gate.',
  },
  SCHEDULES_ROOT: {
    type: 'string',
    default: '',
    doc:
      "Directory under which every schedule's input and output directories must lie (after symlinks; see docs/schedules.md). " +
      'Set it on the API (which checks the directories) and on the scheduler processes (which run the ticks), the same directory ' +
      'at the same path. Empty: schedules are disabled: the routes answer 404 and a scheduler process idles with a warning.',
  },
  SCHEDULER_CONCURRENCY: {
    type: 'integer',
    minimum: 1,
    maximum: 256,
    default: 4,
    doc: 'Schedule ticks one scheduler process runs at once (a tick mostly waits for its jobs).',
  },
  SCHEDULER_LOCK_DURATION_MS: {
    type: 'integer',
    minimum: 10_000,
    maximum: 86_400_000,
    default: 300_000,
    doc:
      'BullMQ lock on a running schedule tick, renewed every half of it while the tick runs. A scheduler that dies (kill -9, ' +
      'lost node) keeps its tick until the lock lapses; then another scheduler, or the same one restarted, takes the tick over ' +
      'and resumes it. Minutes, so a busy event loop (encoding a big file) or a Redis fail-over never hands a tick that is still ' +
      'running to a second scheduler.',
  },
  SCHEDULER_STALLED_INTERVAL_MS: {
    type: 'integer',
    minimum: 1000,
    maximum: 3_600_000,
    default: 60_000,
    doc: 'How often scheduler processes look for ticks whose scheduler died (their lock lapsed).',
  },
  SCHEDULER_MAX_STALLED_COUNT: {
    type: 'integer',
    minimum: 0,
    maximum: 1000,
    default: 2,
    doc:
      'Times a tick may lose its scheduler (crash, kill -9, out of memory) and be taken over before it fails for good; a ' +
      'SIGTERM does not count (the tick is handed back on purpose). Bounded so that a file that kills its scheduler does not do ' +
      'so forever.',
  },
  SCHEDULER_SHUTDOWN_GRACE_MS: {
    type: 'integer',
    minimum: 0,
    maximum: 3_600_000,
    default: 120_000,
    doc:
      'On SIGTERM, how long a scheduler process may take to hand its ticks back: a results or summary file being written is ' +
      'finished first, everything else stops at once and is resumed by the next scheduler. Raise it when writing one results ' +
      'file takes longer.',
  },
  WEBHOOK_SECRETS: {
    type: 'string',
    default: '',
    secret: true,
    doc:
      'Webhook signing secrets as comma-separated `tenant:secret` (16+ characters; a tenant named twice signs with both, for ' +
      'rotation). See docs/security-webhooks.md.',
  },
  WEBHOOK_SECRET: {
    type: 'string',
    default: '',
    secret: true,
    doc:
      'Signing secret of tenants not in `WEBHOOK_SECRETS` (16+ characters). Empty: their webhooks are sent unsigned (a ' +
      'warning is logged once per tenant).',
  },
  WEBHOOK_ATTEMPTS: {
    type: 'integer',
    minimum: 1,
    maximum: 100,
    default: 8,
    doc: 'Delivery attempts per webhook; any answer but 2xx (a redirect too), a timeout or a network error is retried.',
  },
  WEBHOOK_BACKOFF_MS: {
    type: 'integer',
    minimum: 0,
    maximum: 3_600_000,
    default: 1000,
    doc: 'First retry delay of a webhook (exponential backoff).',
  },
  WEBHOOK_TIMEOUT_MS: {
    type: 'integer',
    minimum: 100,
    maximum: 120_000,
    default: 5000,
    doc: 'Time one webhook request may take, from connecting to the status line of the answer.',
  },
  WEBHOOK_ALLOW_HOSTS: {
    type: 'string',
    default: '',
    doc:
      'Comma-separated host names, IP addresses and CIDRs webhooks may reach although they are not public (loopback, private, ' +
      'link-local…). Empty: public addresses only.',
  },
  ENCRYPTION_KEY: {
    type: 'string',
    default: '',
    secret: true,
    doc:
      'AES-256 key (64 hex characters or base64 of 32 bytes) encrypting chunk inputs and results in Redis. Empty: stored in ' +
      'clear. Same key on every API, worker and scheduler; to change it, drain first.',
  },
  API_PROCESSES: {
    type: 'integer',
    minimum: 1,
    maximum: 256,
    default: Math.max(1, Math.floor(os.availableParallelism() / 2)),
    doc:
      'API processes sharing PORT on this host (node:cluster: a primary forks them, restarts one that crashes and stops them ' +
      'all on SIGTERM). Default: half the CPUs, at least 1, leaving cores to the workers, Redis and inference. 1 = one plain ' +
      'process. The image and the Kubernetes manifests set 1 (one process per container; scale with replicas).',
  },
  WORKERS: {
    type: 'integer',
    minimum: 0,
    maximum: 256,
    default: Math.min(256, os.availableParallelism()),
    doc: '`npm start` only: worker processes started beside the API (default: number of CPUs).',
  },
} as const satisfies Record<string, VariableSpec>;

interface VariableSpec {
  type: 'integer' | 'number' | 'string';
  default: number | string;
  doc: string;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  minLength?: number;
  pattern?: string;
  enum?: readonly string[];
  /** Never echoed in an error message. */
  secret?: boolean;
}

/** Checks JSON Schema cannot express; each throws an Error saying what is wrong with a (non-empty) value. */
const FORMAT_CHECKS: { readonly [K in keyof Vars]?: (value: string) => unknown } = {
  ENCRYPTION_KEY: parseEncryptionKey,
  WEBHOOK_SECRETS: parseWebhookSecrets,
  WEBHOOK_SECRET: checkWebhookSecret,
  WEBHOOK_ALLOW_HOSTS: parseAllowList,
  REDIS_CLUSTER_NODES: parseRedisEndpoints,
  REDIS_SENTINELS: parseRedisEndpoints,
};

/** Settings that are valid alone but not together; each answers what is wrong, or null. */
const COMBINATION_CHECKS: ((raw: Record<string, unknown>) => string | null)[] = [
  (raw) => (raw.REDIS_CLUSTER_NODES && raw.REDIS_SENTINELS ? 'REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set: use one' : null),
  (raw) =>
    raw.REDIS_CLUSTER_NODES && /[{}]/.test(String(raw.REDIS_PREFIX))
      ? `REDIS_PREFIX=${JSON.stringify(raw.REDIS_PREFIX)} has braces: on Redis Cluster every job would share its hash tag (one ` +
        `shard); give it without braces, queues are tagged by themselves`
      : null,
  (raw) =>
    raw.REDIS_CLUSTER_NODES && Number(raw.REDIS_WAIT_REPLICAS) > 0
      ? 'REDIS_WAIT_REPLICAS is not supported with REDIS_CLUSTER_NODES (a commit waits on one server: use Sentinel or REDIS_URL)'
      : null,
  (raw) =>
    Boolean(raw.TLS_CERT_FILE) !== Boolean(raw.TLS_KEY_FILE) ? 'TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither' : null,
  (raw) =>
    Number(raw.DRIFT_WARN_PSI) > Number(raw.DRIFT_ALERT_PSI)
      ? `DRIFT_WARN_PSI=${String(raw.DRIFT_WARN_PSI)} must not exceed DRIFT_ALERT_PSI=${String(raw.DRIFT_ALERT_PSI)}`
      : null,
];

/** A variable's value as error messages show it: secrets are not shown. */
function shown(env: NodeJS.ProcessEnv, variable: string): string {
  const spec = (CONFIG_VARIABLES as Record<string, VariableSpec>)[variable];
  return spec?.secret ? '<redacted>' : JSON.stringify(env[variable]);
}

type Vars = typeof CONFIG_VARIABLES;
type ValueOf<S> = S extends { type: 'integer' | 'number' } ? number : S extends { enum: readonly (infer E)[] } ? E : string;

export type Config = { readonly [K in keyof Vars]: ValueOf<Vars[K]> };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Where the checkout's `models/` sits relative to this compiled file (shared/dist/config.js). */
const DEFAULT_MODELS_DIR = path.resolve(__dirname, '..', '..', 'models');

/**
 * Reads, validates and freezes the configuration. Throws a ConfigError naming the variable
 * when one is malformed, so a process fails at start-up, not on first use.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const properties: Record<string, object> = {};
  for (const [name, spec] of Object.entries(CONFIG_VARIABLES)) {
    const { doc: _doc, secret: _secret, ...schema } = spec as VariableSpec;
    properties[name] = schema;
  }
  const validate = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: true }).compile({
    type: 'object',
    properties,
  });
  const raw: Record<string, unknown> = {};
  for (const name of Object.keys(CONFIG_VARIABLES)) {
    const value = env[name];
    if (value !== undefined && value !== '') raw[name] = value;
  }
  if (!validate(raw)) {
    const problems = (validate.errors ?? []).map((e) => {
      const variable = e.instancePath.replace(/^\//, '');
      return `${variable}=${shown(env, variable)} ${e.message ?? 'is invalid'}`;
    });
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const formatProblems = Object.entries(FORMAT_CHECKS).flatMap(([variable, check]) => {
    const value = raw[variable];
    if (typeof value !== 'string' || value === '') return [];
    try {
      check(value);
      return [];
    } catch (error) {
      return [`${variable}=${shown(env, variable)} ${error instanceof Error ? error.message : String(error)}`];
    }
  });
  if (formatProblems.length > 0) throw new ConfigError(`invalid configuration: ${formatProblems.join('; ')}`);
  const combinationProblems = COMBINATION_CHECKS.flatMap((check) => check(raw) ?? []);
  if (combinationProblems.length > 0) throw new ConfigError(`invalid configuration: ${combinationProblems.join('; ')}`);
  // A Sentinel set-up has replicas: by default a commit waits for one (see REDIS_WAIT_REPLICAS).
  if (raw.REDIS_SENTINELS && (env.REDIS_WAIT_REPLICAS === undefined || env.REDIS_WAIT_REPLICAS === '')) raw.REDIS_WAIT_REPLICAS = 1;
  if (raw.MODELS_DIR === '') raw.MODELS_DIR = DEFAULT_MODELS_DIR;
  raw.MODELS_DIR = path.resolve(String(raw.MODELS_DIR));
  raw.SCHEDULES_ROOT = typeof raw.SCHEDULES_ROOT === 'string' && raw.SCHEDULES_ROOT !== '' ? path.resolve(raw.SCHEDULES_ROOT) : '';
  return Object.freeze(raw) as unknown as Config;
}
