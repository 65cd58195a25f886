#!/usr/bin/env node
/** `skein-placement`: runs one placement replica in the foreground until SIGINT or SIGTERM. */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { SkeinError, parseDuration, skeinHome } from '@skein/core';
import { mintFromHome, readFromFiles } from './identity.js';
import { Placement, PLACEMENT_DEFAULTS, type PlacementOptions } from './placement.js';

const USAGE = `Usage: skein-placement [flags]

  --port N                   gRPC port (default ${PLACEMENT_DEFAULTS.port}; 0 picks a free one)
  --host ADDR                address to listen on (default ${PLACEMENT_DEFAULTS.host})
  --advertise-address H:P    address sidecars and other replicas reach this one at (default host:port)
  --nats-url URL             NATS server(s), comma-separated (default tls://127.0.0.1:4222)
  --home DIR                 Skein home whose CA mints placement's certificate (default $SKEIN_HOME or ~/.skein)
  --cert-file, --key-file, --trust-anchors-file
                             use this certificate (SPIFFE ID spiffe://<td>/ns/skein-system/placement) instead
  --id, --replication-id ID  this replica's id in the leader election (default <hostname>-<pid>-<random>)
  --host-ttl DUR             drop a host not heard from for this long (default ${PLACEMENT_DEFAULTS.hostTtlMs}ms)
  --dissemination-timeout DUR  drop a host that does not ack a round step within this (default ${PLACEMENT_DEFAULTS.disseminationTimeoutMs}ms)
  --batch-window DUR         membership changes within this share one round (default ${PLACEMENT_DEFAULTS.batchWindowMs}ms)
  --lease-ttl DUR            a follower takes over this long after the leader stops renewing (default ${PLACEMENT_DEFAULTS.leaseTtlMs}ms)
  --vnodes N                 virtual nodes per host on every ring (default ${PLACEMENT_DEFAULTS.virtualNodes})
`;

/** A mistake in the command line: printed with the usage, exit code 2. */
class UsageError extends SkeinError {
  constructor(message: string) {
    super('ERR_CONFIG_INVALID', message);
  }
}

function duration(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  try {
    return parseDuration(value);
  } catch (error) {
    throw new UsageError(`--${name}: ${(error as Error).message}`);
  }
}

function integer(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not "${value}"`);
  return parsed;
}

/** Parses the command line into options; throws UsageError on anything wrong. */
function optionsFromArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): PlacementOptions {
  let values;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'advertise-address': { type: 'string' },
        'nats-url': { type: 'string' },
        home: { type: 'string' },
        'cert-file': { type: 'string' },
        'key-file': { type: 'string' },
        'trust-anchors-file': { type: 'string' },
        id: { type: 'string' },
        'replication-id': { type: 'string' },
        'host-ttl': { type: 'string' },
        'dissemination-timeout': { type: 'string' },
        'batch-window': { type: 'string' },
        'lease-ttl': { type: 'string' },
        vnodes: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const host = values.host ?? PLACEMENT_DEFAULTS.host;
  const port = integer('port', values.port, PLACEMENT_DEFAULTS.port, 0, 65535);
  // Every flag is checked before the certificate is minted: a typo should not cost a key generation.
  const tuning = {
    virtualNodes: integer('vnodes', values.vnodes, PLACEMENT_DEFAULTS.virtualNodes, 1, 10_000),
    hostTtlMs: duration('host-ttl', values['host-ttl'], PLACEMENT_DEFAULTS.hostTtlMs),
    disseminationTimeoutMs: duration('dissemination-timeout', values['dissemination-timeout'], PLACEMENT_DEFAULTS.disseminationTimeoutMs),
    batchWindowMs: duration('batch-window', values['batch-window'], PLACEMENT_DEFAULTS.batchWindowMs),
    leaseTtlMs: duration('lease-ttl', values['lease-ttl'], PLACEMENT_DEFAULTS.leaseTtlMs),
  };
  const id = values.id ?? values['replication-id'] ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(id)) throw new UsageError(`--id "${id}" must be 1 to 128 letters, digits, '.', '_' or '-'`);
  const files = [values['cert-file'], values['key-file'], values['trust-anchors-file']];
  let tls;
  if (files.some((file) => file !== undefined)) {
    const [certFile, keyFile, trustAnchorsFile] = files;
    if (!certFile || !keyFile || !trustAnchorsFile) throw new UsageError('--cert-file, --key-file and --trust-anchors-file go together');
    tls = readFromFiles({ certFile, keyFile, trustAnchorsFile });
  } else {
    const advertisedHost = values['advertise-address']?.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    tls = mintFromHome(values.home ?? skeinHome(env), [host, ...(advertisedHost ? [advertisedHost] : [])]);
  }
  return {
    id,
    host,
    port,
    ...(values['advertise-address'] ? { advertiseAddress: values['advertise-address'] } : {}),
    natsUrl: values['nats-url'] ?? 'tls://127.0.0.1:4222',
    tls,
    ...tuning,
  };
}

async function main(): Promise<void> {
  const placement = new Placement(optionsFromArgs(process.argv.slice(2)));
  const shutdown = new AbortController();
  process.once('SIGINT', () => shutdown.abort());
  process.once('SIGTERM', () => shutdown.abort());
  await placement.run(shutdown.signal);
  process.exit(0);
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`skein-placement: ${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  const message = error instanceof SkeinError ? `${error.code}: ${error.message}` : ((error as Error).stack ?? String(error));
  process.stderr.write(`skein-placement: ${message}\n`);
  process.exit(1);
});
