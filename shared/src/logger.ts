import winston from 'winston';

export type Logger = winston.Logger;

/**
 * One JSON object a line on stdout. Lines about a job carry `jobId`, request lines carry
 * `requestId`: pass them with `logger.child({ jobId })`.
 */
export function createLogger(level: string, service: string): Logger {
  return winston.createLogger({
    level,
    defaultMeta: { service, pid: process.pid },
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
}
