import { Writable } from 'node:stream';
import winston from 'winston';
import type { Logger } from '@onnx-batch/shared';

/** A logger whose JSON lines a test can read back (and the lines so far, parsed). */
export interface CapturedLogger {
  logger: Logger;
  lines: Record<string, unknown>[];
  /** Lines whose message matches. */
  matching(pattern: RegExp): Record<string, unknown>[];
}

/** A winston logger like the services' own (JSON, one line each), written into memory. */
export function capturedLogger(level = 'info'): CapturedLogger {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString('utf8').split('\n'))
        if (text.trim() !== '') lines.push(JSON.parse(text) as Record<string, unknown>);
      callback();
    },
  });
  const logger = winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream })],
  });
  return { logger, lines, matching: (pattern) => lines.filter((line) => pattern.test(String(line.message))) };
}
