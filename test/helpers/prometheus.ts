/** Reading the Prometheus text exposition format in tests. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = SAMPLE.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(LABEL)) labels[key as string] = (value as string).replace(/\\(.)/g, '$1');
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the sample with exactly these labels (undefined when there is none). */
export function sampleValue(samples: readonly Sample[], name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels);
  return samples.find(
    (s) => s.name === name && Object.keys(s.labels).length === wanted.length && wanted.every(([k, v]) => s.labels[k] === v),
  )?.value;
}

/**
 * Every series name a scrape can carry, from its `# TYPE` lines: a histogram `x` exports
 * `x_bucket`, `x_sum` and `x_count`; a summary `x`, `x_sum` and `x_count`; the rest `x` itself.
 * Declared families count even before their first observation.
 */
export function exportedSeriesNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const n = name as string;
    names.add(n);
    if (type === 'histogram') ['_bucket', '_sum', '_count'].forEach((s) => names.add(n + s));
    if (type === 'summary') ['_sum', '_count'].forEach((s) => names.add(n + s));
  }
  return names;
}
