import { UsageError } from './args.js';
import { TELEMETRY_READER_FLAGS, connectReader, limitFlag, parseFlagsAndPositionals, sinceFlag, subjectTokens, writeLine } from './telemetry-common.js';
import { SUBJECTS, SkeinError, parseSpanEvent, type SpanEvent, readTelemetry, TraceSummaries, formatTraceSummary, matchTraceIds, renderWaterfall, traceListHeader } from '@skein/core';

/** Usage of `skein traces`. */
export const TRACES_USAGE = `Usage: skein traces [--app ID] [--tool NAME] [--status ok|error] [--namespace NS] [--since 10m|<time>]
                    [--limit N] [--json]
       skein traces <traceId or a unique prefix of it> [--since ...] [--json]
  Lists the most recent traces kept in the telemetry stream (default --limit 20), or shows one as a waterfall.
  Connection: --nats-url (default: the running skein up), --home, --cert-file/--key-file, --trust-anchors-file.
`;

const TRACE_QUERY = /^[0-9a-f]{4,32}$/;

/** `skein traces`: recent traces, or one trace as an indented waterfall. */
export async function tracesCommand(argv: string[]): Promise<void> {
  const { values: flags, positionals } = parseFlagsAndPositionals(argv, { ...TELEMETRY_READER_FLAGS, tool: { type: 'string' }, status: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (flags.help) {
    process.stdout.write(TRACES_USAGE);
    return;
  }
  if (positionals.length > 1) throw new UsageError(`skein traces takes at most one trace id, not ${positionals.length} arguments`);
  const query = positionals[0]?.toLowerCase();
  if (query !== undefined && !TRACE_QUERY.test(query)) throw new UsageError(`"${positionals[0] ?? ''}" is not a trace id: expected 4 to 32 hex digits`);
  if (flags.status !== undefined && flags.status !== 'ok' && flags.status !== 'error') throw new UsageError(`--status must be ok or error, not "${flags.status}"`);
  const { namespace } = subjectTokens({ namespace: flags.namespace });
  if (flags.app !== undefined) subjectTokens({ app: flags.app });
  const since = sinceFlag(flags.since, Date.now());
  const limit = limitFlag(flags.limit, 20);
  // A trace crosses apps, so the subject narrows by namespace only; --app selects traces any span of which it recorded.
  const subject = `${SUBJECTS.spans}.${namespace}.>`;

  const nc = await connectReader(flags, 'traces', false);
  try {
    const spans = readTelemetry(nc, { subject, ...(since ? { since } : {}) });
    if (query === undefined) {
      const summaries = new TraceSummaries();
      for await (const item of spans) {
        const span = item.kind === 'message' ? parseSpanEvent(item.data) : undefined;
        if (span) summaries.add(span);
      }
      const listed = summaries.list({ ...(flags.app ? { app: flags.app } : {}), ...(flags.tool ? { tool: flags.tool } : {}), ...(flags.status ? { status: flags.status } : {}) }, limit);
      if (listed.length === 0) {
        if (!flags.json) process.stderr.write('no traces match\n');
        return;
      }
      if (!flags.json) await writeLine(traceListHeader());
      for (const summary of listed) await writeLine(flags.json ? JSON.stringify(summary) : formatTraceSummary(summary));
      return;
    }
    const byTrace = new Map<string, SpanEvent[]>();
    for await (const item of spans) {
      const span = item.kind === 'message' ? parseSpanEvent(item.data) : undefined;
      if (!span || !span.traceId.startsWith(query)) continue;
      const known = byTrace.get(span.traceId) ?? [];
      known.push(span);
      byTrace.set(span.traceId, known);
    }
    const matches = matchTraceIds(byTrace.keys(), query);
    if (matches.length === 0) throw new SkeinError('ERR_NOT_FOUND', `no spans of trace ${query} in the telemetry stream${since ? ` since ${since.toISOString()}` : ''}`);
    if (matches.length > 1) throw new UsageError(`"${query}" matches ${matches.length} traces (${matches.slice(0, 5).join(', ')}${matches.length > 5 ? ', ...' : ''}): give more of the id`);
    const trace = byTrace.get(matches[0] as string) ?? [];
    if (flags.json) {
      for (const span of trace) await writeLine(JSON.stringify(span));
      return;
    }
    for (const line of renderWaterfall(trace, { barWidth: Math.max(20, Math.min(60, (process.stdout.columns ?? 160) - 100)) })) await writeLine(line);
  } finally {
    await nc.close().catch(() => undefined);
  }
}
