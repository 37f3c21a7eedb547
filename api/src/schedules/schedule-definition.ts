// The body of POST and PUT /v1/schedules and how it is checked; the schedule itself (what the
// scheduler runs) is shared/src/schedules/schedule.ts.
import Ajv2020 from 'ajv/dist/2020';
import { CronExpressionParser } from 'cron-parser';
import {
  DEFAULT_TIMEZONE,
  fileMatcher,
  invalidField,
  OUTPUT_FORMATS,
  SCHEDULE_NAME_PATTERN,
  type OutputFormat,
  type ScheduleSpec,
} from '@onnx-batch/shared';
import { checkEnvelope } from '../http/envelope';

const DIR_SCHEMA = {
  type: 'string',
  minLength: 1,
  maxLength: 1024,
  pattern: '^[^\\u0000]+$',
  description:
    'Directory, relative to SCHEDULES_ROOT (or absolute inside it); it must exist and stay inside SCHEDULES_ROOT after symlinks.',
} as const;

export const SCHEDULE_BODY_SCHEMA = {
  type: 'object',
  required: ['name', 'cron', 'model', 'input', 'output'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: SCHEDULE_NAME_PATTERN.source, description: '1–64 of a-z, 0-9, `_`, `-`; unique per tenant.' },
    cron: { type: 'string', minLength: 1, maxLength: 256, description: 'Cron pattern of 5 fields, or 6 with seconds first.' },
    timezone: {
      type: 'string',
      minLength: 1,
      maxLength: 64,
      default: DEFAULT_TIMEZONE,
      description: 'IANA time zone of the cron pattern.',
    },
    model: { type: 'string', minLength: 1, maxLength: 64 },
    version: { type: ['string', 'integer'], description: "Model version; the model's default at each run when absent." },
    input: {
      type: 'object',
      required: ['dir', 'pattern'],
      additionalProperties: false,
      properties: {
        dir: DIR_SCHEMA,
        pattern: {
          type: 'string',
          minLength: 1,
          maxLength: 256,
          pattern: '^[^/\\\\\\u0000]+$',
          description:
            'Glob over file names (`*.csv`, `day-*.ndjson`, `*.parquet`); no directory part. Files are read by extension: ' +
            '.csv, .ndjson/.jsonl, .arrow/.arrows (an Arrow IPC stream), .parquet.',
        },
      },
    },
    output: {
      type: 'object',
      required: ['dir', 'format'],
      additionalProperties: false,
      properties: {
        dir: DIR_SCHEMA,
        format: {
          enum: OUTPUT_FORMATS,
          description:
            'Format of the results files (`<input name>.<tick>.results.<format>`), as the results download writes it: csv, ndjson, ' +
            'parquet (one row group per stored chunk) or arrow (an Arrow IPC stream, one record batch per stored chunk).',
        },
      },
    },
  },
} as const;

const validateBody = new Ajv2020({ allErrors: false, strict: false, useDefaults: true }).compile(SCHEDULE_BODY_SCHEMA);

interface ScheduleBody {
  name: string;
  cron: string;
  timezone: string;
  model: string;
  version?: string | number;
  input: { dir: string; pattern: string };
  output: { dir: string; format: OutputFormat };
}

/**
 * Checks a schedule body on its own (schema, cron, time zone, glob): 400 naming the field.
 * The model and the directories are checked against the repository and the disk by the service.
 * `pathName` is the name in the URL of a PUT, which the body may repeat but not change.
 */
export function parseScheduleSpec(body: unknown, pathName?: string): ScheduleSpec {
  const withName =
    pathName !== undefined && typeof body === 'object' && body !== null && !Array.isArray(body) && !('name' in body)
      ? { ...body, name: pathName }
      : body;
  const parsed = checkEnvelope<ScheduleBody>(validateBody, withName);
  if (pathName !== undefined && parsed.name !== pathName)
    throw invalidField('name', `must be '${pathName}', the name in the URL (a schedule cannot be renamed)`);
  checkTimezone(parsed.timezone);
  checkCron(parsed.cron, parsed.timezone);
  checkPattern(parsed.input.pattern);
  return {
    name: parsed.name,
    cron: parsed.cron.trim().split(/\s+/).join(' '),
    timezone: parsed.timezone,
    model: parsed.model,
    version: parsed.version === undefined ? null : String(parsed.version),
    input: { dir: parsed.input.dir, pattern: parsed.input.pattern },
    output: { dir: parsed.output.dir, format: parsed.output.format },
  };
}

function checkTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw invalidField('timezone', 'is not an IANA time zone (e.g. UTC, Europe/Berlin)');
  }
}

/** `H` picks a random value each time a pattern is parsed; BullMQ parses at every tick, so it is refused. */
const HASHED_VALUE = /(^|[^A-Za-z])H([^A-Za-z]|$)/;

export function checkCron(cron: string, timezone: string): void {
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    throw invalidField(
      'cron',
      `has ${fields.length} field${fields.length === 1 ? '' : 's'}; expected 5 (minute hour day month weekday) or 6 (second first)`,
    );
  }
  if (HASHED_VALUE.test(cron)) throw invalidField('cron', "uses 'H' (hashed values), which is not supported");
  try {
    CronExpressionParser.parse(cron, { tz: timezone }).next();
  } catch (error) {
    throw invalidField('cron', `is not a valid cron pattern: ${(error as Error).message}`);
  }
}

function checkPattern(pattern: string): void {
  try {
    fileMatcher(pattern);
  } catch (error) {
    throw invalidField('input.pattern', `is not a valid glob: ${(error as Error).message}`);
  }
}
