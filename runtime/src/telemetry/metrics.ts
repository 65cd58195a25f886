/**
 * A small Prometheus registry (counters and histograms, text exposition format 0.0.4) and the pipeline stage that
 * counts and times every call. The registry does no I/O; `MetricsServer` serves it.
 */
import { performance } from 'node:perf_hooks';
import { SkeinError, asSkeinError, logger, truncate } from '@skein/core';
import type { Handler, Middleware, Call, CallResponse } from '../pipeline/pipeline.js';

const log = logger('metrics');

/** The `Content-Type` of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Label values of one series, by label name; a missing label is the empty string (Prometheus: absent). */
export type LabelValues = Readonly<Record<string, string | number | undefined>>;

/** Upper bounds (seconds) for request durations: loopback calls take about a millisecond, tool calls seconds. */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]);

/** Value every label of a series gets once a metric has too many series (a client inventing tool names, say). */
export const OVERFLOW_LABEL_VALUE = '_overflow';

/**
 * Longest label value kept; longer ones are truncated. The series limit bounds how many series there are, this
 * bounds how large each one is, so a caller-chosen value can never make a scrape large or slow.
 */
export const MAX_LABEL_VALUE_LENGTH = 128;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatNumber(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return Number.isNaN(value) ? 'NaN' : String(value);
}

function formatLabels(pairs: ReadonlyArray<readonly [string, string]>): string {
  const shown = pairs.filter(([, value]) => value !== '');
  return shown.length === 0 ? '' : `{${shown.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',')}}`;
}

/** What every metric shares: its name, help, label names and a bounded map of series. */
abstract class Metric<Series> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: 'counter' | 'histogram';
  private readonly constantLabels: ReadonlyArray<readonly [string, string]>;
  private readonly maxSeries: number;
  private readonly series = new Map<string, { labels: string[]; value: Series }>();
  private overflowWarned = false;

  constructor(name: string, help: string, labelNames: readonly string[], constantLabels: ReadonlyArray<readonly [string, string]>, maxSeries: number) {
    if (!METRIC_NAME.test(name)) throw new SkeinError('ERR_INTERNAL', `invalid metric name "${name}"`);
    for (const label of [...labelNames, 'le']) {
      if (!LABEL_NAME.test(label) || label.startsWith('__')) throw new SkeinError('ERR_INTERNAL', `invalid label name "${label}" on metric ${name}`);
    }
    this.name = name;
    this.help = help;
    this.labelNames = Object.freeze([...labelNames]);
    this.constantLabels = constantLabels;
    this.maxSeries = maxSeries;
  }

  protected abstract empty(): Series;
  protected abstract sampleLines(labels: ReadonlyArray<readonly [string, string]>, value: Series): string[];

  private labelValues(labels: LabelValues): string[] {
    return this.labelNames.map((name) => truncate(String(labels[name] ?? ''), MAX_LABEL_VALUE_LENGTH));
  }

  /**
   * The map key of a label set: each value with its length in front, so no two label sets share a key whatever
   * their values contain. Built on every recorded call, so it allocates nothing but the string.
   */
  private key(labels: LabelValues): string {
    let key = '';
    for (const name of this.labelNames) {
      const value = labels[name];
      const text = value === undefined ? '' : truncate(String(value), MAX_LABEL_VALUE_LENGTH);
      key += `${text.length}:${text}`;
    }
    return key;
  }

  /** The series for `labels` if it exists; reading never creates one. */
  protected peek(labels: LabelValues): Series | undefined {
    return this.series.get(this.key(labels))?.value;
  }

  /** The series for `labels`, created on first use; past the limit, the one overflow series. */
  protected seriesFor(labels: LabelValues): Series {
    let key = this.key(labels);
    let entry = this.series.get(key);
    if (entry) return entry.value;
    let values = this.labelValues(labels);
    if (this.series.size >= this.maxSeries) {
      if (!this.overflowWarned) {
        this.overflowWarned = true;
        log.warn('metric has too many series; further label combinations are counted together', { metric: this.name, limit: this.maxSeries });
      }
      values = this.labelNames.map(() => OVERFLOW_LABEL_VALUE);
      key = this.key(Object.fromEntries(this.labelNames.map((name) => [name, OVERFLOW_LABEL_VALUE])));
      entry = this.series.get(key);
      if (entry) return entry.value;
    }
    entry = { labels: values, value: this.empty() };
    this.series.set(key, entry);
    return entry.value;
  }

  /** `# HELP`, `# TYPE` and one line per sample. */
  exposition(): string[] {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, value } of this.series.values()) {
      lines.push(...this.sampleLines([...this.constantLabels, ...this.labelNames.map((name, index) => [name, labels[index] ?? ''] as const)], value));
    }
    return lines;
  }
}

/** A monotonically increasing count. */
export class Counter extends Metric<{ value: number }> {
  readonly type = 'counter';

  protected empty(): { value: number } {
    return { value: 0 };
  }

  /** Adds `by` (default 1; never negative) to the series of `labels`. */
  inc(labels: LabelValues = {}, by = 1): void {
    if (!(by >= 0)) throw new SkeinError('ERR_INTERNAL', `counter ${this.name} cannot be increased by ${by}`);
    this.seriesFor(labels).value += by;
  }

  /** Current value of the series of `labels` (0 when it has none yet). */
  get(labels: LabelValues = {}): number {
    return this.peek(labels)?.value ?? 0;
  }

  protected sampleLines(labels: ReadonlyArray<readonly [string, string]>, series: { value: number }): string[] {
    return [`${this.name}${formatLabels(labels)} ${formatNumber(series.value)}`];
  }
}

interface HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into cumulative buckets, with their sum and count. */
export class Histogram extends Metric<HistogramSeries> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[], constantLabels: ReadonlyArray<readonly [string, string]>, maxSeries: number) {
    super(name, help, labelNames, constantLabels, maxSeries);
    const sorted = [...new Set(buckets)].filter((bound) => Number.isFinite(bound)).sort((a, b) => a - b);
    if (sorted.length === 0) throw new SkeinError('ERR_INTERNAL', `histogram ${name} needs at least one finite bucket`);
    this.buckets = Object.freeze(sorted);
  }

  protected empty(): HistogramSeries {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  /** Records one observation in the series of `labels`. */
  observe(labels: LabelValues, value: number): void {
    const series = this.seriesFor(labels);
    const index = this.buckets.findIndex((bound) => value <= bound);
    const slot = index === -1 ? this.buckets.length : index;
    series.counts[slot] = (series.counts[slot] ?? 0) + 1;
    series.sum += value;
    series.count += 1;
  }

  protected sampleLines(labels: ReadonlyArray<readonly [string, string]>, series: HistogramSeries): string[] {
    const lines: string[] = [];
    let cumulative = 0;
    [...this.buckets, Infinity].forEach((bound, index) => {
      cumulative += series.counts[index] ?? 0;
      lines.push(`${this.name}_bucket${formatLabels([...labels, ['le', formatNumber(bound)]])} ${cumulative}`);
    });
    lines.push(`${this.name}_sum${formatLabels(labels)} ${formatNumber(series.sum)}`);
    lines.push(`${this.name}_count${formatLabels(labels)} ${series.count}`);
    return lines;
  }
}

/** Options of a registry. */
export interface MetricsOptions {
  /** Labels put on every series, e.g. `{ app_id, namespace }` of the sidecar. */
  constantLabels?: Readonly<Record<string, string>>;
  /** Series per metric before further label combinations are folded into one overflow series. */
  maxSeriesPerMetric?: number;
}

/**
 * A Prometheus registry. Instruments are get-or-create by name, so every stage (and every pipeline rebuilt on a
 * policy reload) that asks for `skein_requests_total` adds to the same counter.
 */
export class Metrics {
  private readonly metrics = new Map<string, Counter | Histogram>();
  private readonly constantLabels: ReadonlyArray<readonly [string, string]>;
  private readonly maxSeries: number;

  constructor(options: MetricsOptions = {}) {
    this.constantLabels = Object.freeze(Object.entries(options.constantLabels ?? {}).map(([name, value]) => [name, value] as const));
    this.maxSeries = options.maxSeriesPerMetric ?? 2000;
  }

  /** The counter `name`, created on first use. Asking again with another type or other labels is a bug and throws. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    const existing = this.existing(name, 'counter', labelNames);
    if (existing) return existing as Counter;
    const created = new Counter(name, help, labelNames, this.constantLabels, this.maxSeries);
    this.metrics.set(name, created);
    return created;
  }

  /** The histogram `name`, created on first use (see `counter`). */
  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets: readonly number[] = DEFAULT_DURATION_BUCKETS): Histogram {
    const existing = this.existing(name, 'histogram', labelNames);
    if (existing) return existing as Histogram;
    const created = new Histogram(name, help, labelNames, buckets, this.constantLabels, this.maxSeries);
    this.metrics.set(name, created);
    return created;
  }

  private existing(name: string, type: 'counter' | 'histogram', labelNames: readonly string[]): Counter | Histogram | undefined {
    const found = this.metrics.get(name);
    if (!found) return undefined;
    if (found.type !== type || found.labelNames.join(',') !== labelNames.join(',')) {
      throw new SkeinError('ERR_INTERNAL', `metric ${name} is already registered as a ${found.type} with labels [${found.labelNames.join(', ')}]`);
    }
    return found;
  }

  /** Every metric in the text exposition format 0.0.4. */
  exposition(): string {
    const lines: string[] = [];
    for (const metric of this.metrics.values()) lines.push(...metric.exposition());
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  }
}

/** Labels of the request metrics (besides the registry's constant ones). */
export const REQUEST_LABELS = ['direction', 'peer_app_id', 'verb', 'mcp_method', 'mcp_tool'] as const;

/** The three request instruments, shared by the inbound and the outbound stage. */
export interface RequestInstruments {
  /** `skein_requests_total`: every call, by its final HTTP status. */
  requests: Counter;
  /** `skein_request_errors_total`: calls that failed or were refused (status ≥ 400), by error code. */
  errors: Counter;
  /** `skein_request_duration_seconds`: time from entering the pipeline to the response head. */
  duration: Histogram;
}

/** The request instruments of `metrics`, registering them on first use. */
export function requestInstruments(metrics: Metrics): RequestInstruments {
  return {
    requests: metrics.counter('skein_requests_total', 'Calls through the sidecar pipeline, by direction, peer app, verb, MCP method and tool, and HTTP status.', [...REQUEST_LABELS, 'status']),
    errors: metrics.counter(
      'skein_request_errors_total',
      'Calls that failed or were refused (HTTP status 400 or more, denials included), by Skein error code or HTTP_<status> for answers of the app.',
      [...REQUEST_LABELS, 'error'],
    ),
    duration: metrics.histogram('skein_request_duration_seconds', 'Time from entering the pipeline to the response head (streamed bodies continue after), in seconds.', REQUEST_LABELS),
  };
}

/**
 * Counts and times every call that passes, including those a later stage refuses: the first stage of a
 * pipeline. Labels come from the request after the rest of the pipeline ran, so MCP method and tool are known
 * once a stage has read the JSON-RPC body (`request.mcp`).
 */
export class MetricsMiddleware implements Middleware {
  readonly name = 'metrics';
  private readonly instruments: RequestInstruments;
  private readonly direction: 'inbound' | 'outbound';

  constructor(metrics: Metrics, direction: 'inbound' | 'outbound') {
    this.instruments = requestInstruments(metrics);
    this.direction = direction;
  }

  async handle(request: Call, next: Handler): Promise<CallResponse> {
    const started = performance.now();
    try {
      const response = await next(request);
      this.record(request, started, response.status, response.status >= 400 ? `HTTP_${response.status}` : undefined);
      return response;
    } catch (error) {
      const failure = asSkeinError(error);
      this.record(request, started, failure.httpStatus, failure.code);
      throw error;
    }
  }

  private record(request: Call, started: number, status: number, error: string | undefined): void {
    const labels = {
      direction: this.direction,
      // Inbound, the peer is the verified caller; outbound, the app or endpoint being called.
      peer_app_id: this.direction === 'inbound' ? (request.caller?.appId ?? 'unknown') : request.target.appId,
      verb: request.verb.toUpperCase(),
      mcp_method: request.mcp?.method,
      mcp_tool: request.mcp?.tool,
    };
    this.instruments.requests.inc({ ...labels, status });
    if (error) this.instruments.errors.inc({ ...labels, error });
    this.instruments.duration.observe(labels, (performance.now() - started) / 1000);
  }
}
