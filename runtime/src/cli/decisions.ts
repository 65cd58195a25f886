import { parseFlags, UsageError } from './args.js';
import { TELEMETRY_READER_FLAGS, abortOnSignal, connectReader, limitFlag, sinceFlag, subjectTokens, writeLine } from './telemetry-common.js';
import { SUBJECTS, type DecisionEvent, type DecisionSource, DECISION_SOURCES, decisionHeader, formatDecisionLine, matchesDecision, parseDecisionEvent, type DecisionFilter, readTelemetry } from '@skein/core';

/** Usage of `skein decisions`. */
export const DECISIONS_USAGE = `Usage: skein decisions [--app ID] [--namespace NS] [--source acl|tool-policy|jwt|workflow-policy|mcp-hook] [--denied]
                       [--since 10m|<time>] [--limit N] [--json] [--follow]
  Lists the policy decisions kept in the telemetry stream, oldest first: the last --limit (default 50) that match.
  Connection: --nats-url (default: the running skein up), --home, --cert-file/--key-file, --trust-anchors-file.
`;

/** `skein decisions`: the ACL, tool-policy and JWT decisions sidecars published, one line each. */
export async function decisionsCommand(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, { ...TELEMETRY_READER_FLAGS, source: { type: 'string' }, denied: { type: 'boolean' }, follow: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (flags.help) {
    process.stdout.write(DECISIONS_USAGE);
    return;
  }
  if (flags.source !== undefined && !DECISION_SOURCES.includes(flags.source as DecisionSource)) {
    throw new UsageError(`--source must be one of ${DECISION_SOURCES.join(', ')}, not "${flags.source}"`);
  }
  const filter: DecisionFilter = { ...(flags.source ? { source: flags.source as DecisionSource } : {}), deniedOnly: flags.denied ?? false };
  const { app, namespace } = subjectTokens(flags);
  const limit = limitFlag(flags.limit, 50);
  const since = sinceFlag(flags.since, Date.now());
  const follow = flags.follow ?? false;
  const show = (event: DecisionEvent): Promise<void> => writeLine(flags.json ? JSON.stringify(event) : formatDecisionLine(event));

  const nc = await connectReader(flags, 'decisions', follow);
  const interrupt = abortOnSignal();
  // The stored backlog is cut to the last `limit` before printing; in --follow, later decisions print as they come.
  const backlog: DecisionEvent[] = [];
  let live = false;
  let shown = 0;
  try {
    for await (const item of readTelemetry(nc, { subject: `${SUBJECTS.decisions}.${namespace}.${app}`, ...(since ? { since } : {}), follow, signal: interrupt.signal })) {
      if (item.kind === 'caught-up') {
        const recent = backlog.slice(-limit);
        if (!flags.json && recent.length > 0) await writeLine(decisionHeader());
        for (const event of recent) await show(event);
        shown += recent.length;
        backlog.length = 0;
        live = true;
        if (follow) process.stderr.write('following new decisions (Ctrl-C to stop)\n');
        continue;
      }
      const event = parseDecisionEvent(item.data);
      if (!event || !matchesDecision(event, filter)) continue;
      if (live) {
        if (!flags.json && shown === 0) await writeLine(decisionHeader());
        await show(event);
        shown += 1;
      } else {
        backlog.push(event);
        // Trimmed in bulk, so keeping the last `limit` of a long backlog stays linear.
        if (backlog.length >= 2 * limit) backlog.splice(0, backlog.length - limit);
      }
    }
  } finally {
    interrupt.dispose();
    await nc.close().catch(() => undefined);
  }
  if (shown === 0 && !flags.json) process.stderr.write('no decisions match\n');
}
