import parsePrometheusTextFormat, { type PromFamily, type PromSample } from 'parse-prometheus-text-format';

/**
 * Scraping a daemon's `/metrics` in tests, parsed by a real Prometheus text-format parser
 * (parse-prometheus-text-format, prom2json's shape), so a malformed exposition fails the test.
 */
export type Families = ReadonlyMap<string, PromFamily>;

export function parseMetrics(text: string): Families {
  return new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
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

/** A histogram's observation count with these labels (summed over the matching series). */
export function histogramCount(
  f: Families,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  return samples(f, name, 'HISTOGRAM', labels).reduce((a, s) => a + Number(s.count ?? 0), 0);
}
