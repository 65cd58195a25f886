/** The benchmark's command line: which parts run and how long each phase lasts. `--quick` shortens everything. */
import { parseArgs } from 'node:util';

/** The parts of a run, in the order a full run measures them. */
export const PARTS = ['invoke', 'mcp-chain', 'tracing', 'actors', 'workflows', 'mcpserver', 'editor'] as const;
/** Parts a run without `--only` measures; `actors`, `workflows`, `mcpserver` and `editor` are opt-in. */
export const DEFAULT_PARTS: readonly Part[] = ['invoke', 'mcp-chain', 'tracing'];
/** One part: `invoke` (1 KB POST, MCP baseline, profile), `mcp-chain` (MCP governance chain), `tracing` (sampling 1 vs 0), `actors` (actor calls, reminders, placement), `workflows` (Dapr SDK workflows), `mcpserver` (MCPServer tool workflows), `editor` (the VS Code extension's view models at 10,000 spans). */
export type Part = (typeof PARTS)[number];

/** What each phase does. */
export interface Settings {
  /** Parts to run, in run order. */
  parts: Part[];
  quick: boolean;
  profile: boolean;
  mcp: boolean;
  rate: number;
  durationMs: number;
  connections: number;
  openLoopWarmupMs: number;
  sequentialWarmup: number;
  /** Sequential 1 KB POSTs per path in the invoke part. */
  sequentialCount: number;
  /** Sequential 1 KB POSTs per sampling rate in the tracing part (fewer by default, to keep a full run short). */
  tracingRequests: number;
  /** Discarded POSTs before the tracing part's first block: enough to warm the JIT of its fresh sidecars. */
  tracingWarmup: number;
  /** Sequential requests are sent in this many alternating blocks per path, so drift in background load hits every path. */
  sequentialBlocks: number;
  timeoutMs: number;
  mcpWarmup: number;
  /** Sequential MCP calls per path (every part). */
  mcpCount: number;
  mcpClients: number;
  mcpDurationMs: number;
  /** Further open-loop rates, run after the main phases, to show where the mesh stops keeping up. */
  alsoRates: number[];
  /** Concurrent client counts of the MCP governance chain's throughput phases. */
  chainClients: number[];
  /** Length of each of those phases. */
  chainDurationMs: number;
  /** Actors part: active actors the calls spread over. */
  actorIds: number;
  /** Sequential calls per path to active actors. */
  actorCalls: number;
  /** Sequential first calls (fresh ids) per path. */
  activations: number;
  /** Calls in flight of the throughput phases. */
  actorConcurrency: number[];
  actorDurationMs: number;
  reminders: number;
  reminderPeriodMs: number;
  reminderWindowMs: number;
  /** Simulated host counts of the dissemination measurement. */
  placementHosts: number[];
  /** Joins (and as many leaves) measured per host count. */
  disseminationSamples: number;
  lookupOps: number;
}

/** Reads the flags; throws on a bad value, an unknown part or a flag that does not apply to the chosen parts. */
export function readSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'no-mcp': { type: 'boolean', default: false },
      'also-rates': { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      requests: { type: 'string' },
      calls: { type: 'string' },
      clients: { type: 'string' },
      hosts: { type: 'string' },
    },
    strict: true,
  });
  const quick = values.quick ?? false;
  const number = (text: string | undefined, fallback: number, name: string): number => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, not "${text}"`);
    return value;
  };
  const list = (text: string | undefined, name: string): number[] => (text ?? '').split(',').filter(Boolean).map((item) => number(item, 0, name));
  const parts = values.only === undefined ? [...DEFAULT_PARTS] : values.only.split(',').filter(Boolean).map((name) => {
    const part = PARTS.find((known) => known === name);
    if (!part) throw new Error(`--only takes ${PARTS.join(', ')} (comma-separated), not "${name}"`);
    return part;
  });
  const settings: Settings = {
    parts: PARTS.filter((part) => parts.includes(part)),
    quick,
    profile: values.profile ?? false,
    mcp: !(values['no-mcp'] ?? false),
    rate: number(values.rate, 1000, 'rate'),
    durationMs: number(values.duration, quick ? 3 : 10, 'duration') * 1000,
    connections: number(values.connections, 32, 'connections'),
    openLoopWarmupMs: quick ? 500 : 2000,
    sequentialWarmup: quick ? 200 : 1000,
    sequentialCount: number(values.requests, quick ? 1000 : 5000, 'requests'),
    tracingRequests: number(values.requests, quick ? 1000 : 2000, 'requests'),
    tracingWarmup: quick ? 200 : 500,
    sequentialBlocks: 5,
    timeoutMs: 5000,
    mcpWarmup: quick ? 20 : 100,
    mcpCount: number(values.calls, quick ? 200 : 1000, 'calls'),
    mcpClients: 8,
    mcpDurationMs: quick ? 3000 : 10_000,
    alsoRates: list(values['also-rates'], 'also-rates'),
    chainClients: values.clients === undefined ? [8, 32] : list(values.clients, 'clients'),
    chainDurationMs: quick ? 2000 : 5000,
    actorIds: 1000,
    actorCalls: quick ? 1000 : 3000,
    activations: quick ? 300 : 1000,
    actorConcurrency: [32, 128],
    actorDurationMs: quick ? 2000 : 5000,
    reminders: quick ? 200 : 500,
    reminderPeriodMs: 100,
    reminderWindowMs: quick ? 3000 : 5000,
    placementHosts: values.hosts === undefined ? (quick ? [100, 250] : [100, 250, 500, 1000]) : list(values.hosts, 'hosts'),
    disseminationSamples: quick ? 2 : 3,
    lookupOps: quick ? 200_000 : 1_000_000,
  };
  if (settings.parts.length === 0) throw new Error('--only names no part');
  const invokeOnly = [['--also-rates', settings.alsoRates.length > 0], ['--no-mcp', !settings.mcp], ['--rate', values.rate !== undefined], ['--duration', values.duration !== undefined], ['--connections', values.connections !== undefined]] as const;
  if (!settings.parts.includes('invoke')) {
    const misplaced = invokeOnly.filter(([, given]) => given).map(([flag]) => flag);
    if (misplaced.length > 0) throw new Error(`${misplaced.join(', ')} apply to the invoke part, which --only leaves out`);
  }
  if (values.hosts !== undefined && !settings.parts.includes('actors')) throw new Error('--hosts applies to the actors part, which --only leaves out');
  if (values.clients !== undefined && !settings.parts.includes('mcp-chain')) throw new Error('--clients applies to the mcp-chain part, which --only leaves out');
  if (settings.profile && !settings.parts.includes('invoke') && !settings.parts.includes('mcp-chain')) throw new Error('--profile applies to the invoke and mcp-chain parts, which --only leaves out');
  return settings;
}
