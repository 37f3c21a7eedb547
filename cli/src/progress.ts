import { SingleBar } from 'cli-progress';
import type { JobStatusAnswer } from './types';

/**
 * Rate and ETA of a count that grows over time, from the samples of the last `windowMs`
 * (so a job that speeds up or stalls shows it within seconds). Pure: time is passed in.
 */
export class RateMeter {
  private readonly samples: { at: number; done: number }[] = [];

  constructor(private readonly windowMs = 15_000) {}

  sample(done: number, at: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && done < last.done) this.samples.length = 0; // a restart of the count
    this.samples.push({ at, done });
    while (this.samples.length > 2 && at - (this.samples[1]?.at ?? at) >= this.windowMs) this.samples.shift();
  }

  /** Units per second over the window; null until two samples span some time. */
  rate(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at <= first.at) return null;
    return ((last.done - first.done) * 1000) / (last.at - first.at);
  }

  /** Seconds left at the current rate; null when unknown (no rate yet, or nothing moving). */
  eta(done: number, total: number): number | null {
    const rate = this.rate();
    if (done >= total) return 0;
    if (rate === null || rate <= 0) return null;
    return (total - done) / rate;
  }
}

/** `1h02m`, `3m05s`, `12s`; `?` when unknown. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `950`, `12.3k`, `4.5M` (rates and counts for people). */
export function formatCount(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return '?';
  if (n < 1000) return String(Math.round(n));
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

/** `812 B`, `3.4 MiB`, `1.20 GiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** One plain progress line of a job (non-TTY output, logs). */
export function jobProgressLine(status: JobStatusAnswer, meter: RateMeter): string {
  const { done, total, failed } = status.progress;
  const percent = total > 0 ? ((100 * done) / total).toFixed(1) : '0.0';
  const parts = [`job ${status.jobId}: ${status.status}`, `${done}/${total} rows (${percent}%)`];
  if (failed > 0) parts.push(`${failed} failed`);
  if (status.status === 'running') parts.push(`${formatCount(meter.rate())} rows/s`, `ETA ${formatDuration(meter.eta(done, total))}`);
  return parts.join(', ');
}

/** Shows how a job gets on: a bar on a terminal, a line every few seconds elsewhere. */
export interface JobProgress {
  update(status: JobStatusAnswer): void;
  stop(): void;
}

/** Something to write progress to: process.stderr, or a test's buffer. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** Plain lines, at most one per `intervalMs`, plus the first and the last; for logs, cron mail and journald. */
export class PlainJobProgress implements JobProgress {
  private readonly meter = new RateMeter();
  private lastLine: number | null = null;
  private lastText = '';

  constructor(
    private readonly stream: ProgressStream,
    private readonly intervalMs = 2000,
    private readonly now: () => number = Date.now,
  ) {}

  update(status: JobStatusAnswer): void {
    const at = this.now();
    this.meter.sample(status.progress.done, at);
    const finished = status.status !== 'queued' && status.status !== 'running';
    const text = jobProgressLine(status, this.meter);
    if (!finished && this.lastLine !== null && at - this.lastLine < this.intervalMs) return;
    if (finished && text === this.lastText) return;
    this.lastLine = at;
    this.lastText = text;
    this.stream.write(`${text}\n`);
  }

  stop(): void {
    // lines are complete as written
  }
}

/** A cli-progress bar: rows done/total, rate, ETA. */
export class BarJobProgress implements JobProgress {
  private readonly meter = new RateMeter();
  private readonly bar: SingleBar;
  private started = false;

  constructor(stream: NodeJS.WritableStream) {
    this.bar = new SingleBar({
      stream,
      format: '{status} |{bar}| {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {etaText}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 1,
      fps: 5,
    });
  }

  update(status: JobStatusAnswer): void {
    const { done, total } = status.progress;
    this.meter.sample(done, Date.now());
    const payload = {
      status: status.status.padEnd(9),
      rate: formatCount(this.meter.rate()),
      etaText: formatDuration(this.meter.eta(done, total)),
    };
    if (!this.started) {
      this.bar.start(Math.max(total, 1), done, payload);
      this.started = true;
    } else {
      this.bar.setTotal(Math.max(total, 1));
      this.bar.update(done, payload);
    }
  }

  stop(): void {
    if (this.started) this.bar.stop();
    this.started = false;
  }
}

/** Counts bytes of an upload as they pass, reporting through `onBytes`. */
export async function* countingBytes(source: AsyncIterable<Uint8Array>, onBytes: (sent: number) => void): AsyncGenerator<Uint8Array> {
  let sent = 0;
  for await (const chunk of source) {
    sent += chunk.byteLength;
    onBytes(sent);
    yield chunk;
  }
}

/** Upload progress: a bar of bytes on a terminal, a line every `intervalMs` elsewhere. */
export class UploadProgress {
  private readonly bar: SingleBar | null;
  private lastLine = 0;
  private sent = 0;
  private readonly startedAt = Date.now();

  constructor(
    private readonly stream: ProgressStream,
    private readonly size: number | null,
    private readonly intervalMs = 2000,
  ) {
    this.bar =
      stream.isTTY && size !== null
        ? new SingleBar({
            stream: stream as NodeJS.WritableStream,
            format: 'uploading |{bar}| {percentage}% | {sentText} of {sizeText} | {speed}/s',
            barsize: 30,
            hideCursor: true,
            fps: 5,
          })
        : null;
    this.bar?.start(Math.max(size ?? 1, 1), 0, this.payload());
  }

  private payload(): Record<string, string> {
    const seconds = Math.max(0.001, (Date.now() - this.startedAt) / 1000);
    return {
      sentText: formatBytes(this.sent),
      sizeText: this.size === null ? '?' : formatBytes(this.size),
      speed: formatBytes(Math.round(this.sent / seconds)),
    };
  }

  update(sent: number): void {
    this.sent = sent;
    if (this.bar) {
      this.bar.update(sent, this.payload());
      return;
    }
    const now = Date.now();
    if (now - this.lastLine < this.intervalMs) return;
    if (this.lastLine === 0) {
      this.lastLine = now; // nothing for quick uploads
      return;
    }
    this.lastLine = now;
    const p = this.payload();
    this.stream.write(`uploading: ${p.sentText} of ${p.sizeText} (${p.speed}/s)\n`);
  }

  stop(): void {
    this.bar?.stop();
  }
}
