import parsePrometheusTextFormat, { type PromFamily, type PromSample } from 'parse-prometheus-text-format';

/**
 * Scraping a daemon's `/metrics` in tests, parsed by a real Prometheus text-format parser
 * (parse-prometheus-text-format, prom2json's shape), so a malformed exposition fails the test.
 */
export type Families = ReadonlyMap<string, PromFamily>;

export function parseMetrics(text: string): Families {
  return new Map(parsePrometheusTextFormat(withHistogramCounts(text)).map((f) => [f.name, f]));
}

/**
 * The parser flattens a histogram family into one sample (its flattenMetrics), losing the labels
 * and counts of labelled histograms. So each histogram's `<name>_count` series are also given to
 * it as a counter family of their own, which it parses like any other.
 */
function withHistogramCounts(text: string): string {
  const histograms = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) histogram$/gm)) histograms.add(m[1]!);
  const extra: string[] = [];
  for (const h of histograms) {
    const lines = text.split('\n').filter((l) => l.startsWith(`${h}_count{`) || l.startsWith(`${h}_count `));
    if (lines.length > 0)
      extra.push(`# HELP ${h}_count observations of ${h}`, `# TYPE ${h}_count counter`, ...lines);
  }
  return extra.length === 0 ? text : `${text.trimEnd()}\n${extra.join('\n')}\n`;
}

export async function scrape(port: number, host = '127.0.0.1'): Promise<Families> {
  const res = await fetch(`http://${host}:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`GET /metrics on ${host}:${port}: HTTP ${res.status}`);
  const type = res.headers.get('content-type') ?? '';
  if (!type.startsWith('text/plain')) throw new Error(`GET /metrics: content-type ${type}`);
  return parseMetrics(await res.text());
}

function matches(s: PromSample, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(labels).every(([k, v]) => s.labels?.[k] === v);
}

/** The samples of a family whose labels include `labels`; throws when the family is missing. */
export function samples(
  f: Families,
  name: string,
  type: PromFamily['type'],
  labels: Readonly<Record<string, string>> = {},
): PromSample[] {
  const fam = f.get(name);
  if (fam === undefined) throw new Error(`metric ${name} not exposed`);
  if (fam.type !== type) throw new Error(`metric ${name} is a ${fam.type}, expected ${type}`);
  return fam.metrics.filter((s) => matches(s, labels));
}

/** The one value of a gauge or counter with these labels (NaN for "NaN"). */
export function value(
  f: Families,
  name: string,
  type: 'COUNTER' | 'GAUGE',
  labels: Readonly<Record<string, string>> = {},
): number {
  const xs = samples(f, name, type, labels);
  if (xs.length !== 1) throw new Error(`metric ${name}${JSON.stringify(labels)}: ${xs.length} samples`);
  return Number(xs[0]!.value);
}

/** A histogram's observation count over the series whose labels include `labels`. */
export function histogramCount(
  f: Families,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  samples(f, name, 'HISTOGRAM');
  if (!f.has(`${name}_count`)) return 0;
  return samples(f, `${name}_count`, 'COUNTER', labels).reduce((a, s) => a + Number(s.value ?? 0), 0);
}

/** The label values a histogram has series for (e.g. the steps timed). */
export function histogramLabelValues(f: Families, name: string, label: string): string[] {
  samples(f, name, 'HISTOGRAM');
  if (!f.has(`${name}_count`)) return [];
  return samples(f, `${name}_count`, 'COUNTER').map((s) => s.labels?.[label] ?? '');
}
