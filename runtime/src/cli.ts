#!/usr/bin/env node
/** The `skein` command line: init, sentry, up, run, list, stop, token, decisions, traces, workflows. */
import { SkeinError } from '@skein/core';
import { CommandFailed, UsageError } from './cli/args.js';

const USAGE = `Usage: skein <command> [flags]

Commands (and --version):
  init      create a development root CA and trust bundle (~/.skein/certs)
  up        start the local control plane: NATS (JetStream, mTLS), sentry and placement, each restarted
            with backoff if it exits
  run       start a sidecar beside an app: skein run --app-id ID [--app-port P] [flags] -- <command>
            or every app of a multi-app run file: skein run -f <file>
  list      the apps running under skein run on this machine: skein list [--json]
  stop      stop an app's skein run (sidecar and app): skein stop --app-id ID [--timeout 10s]
  sentry    run the certificate authority on its own
  token     print a join token for a production sentry: skein token --app-id ID [--namespace N]
  decisions list policy decisions: skein decisions [--app ID] [--source acl|tool-policy|jwt] [--denied]
            [--since 10m] [--limit N] [--json] [--follow]
  traces    list recent traces: skein traces [--app ID] [--tool T] [--status ok|error] [--since 10m] [--limit N] [--json]
            or show one as a waterfall: skein traces <traceId>
  workflows list, show, steer and rerun the workflow instances of a sidecar (through its HTTP API):
            skein workflows list|show|history|start|raise|suspend|resume|terminate|purge|stuck|rerun|replay
            [--dapr-http-port P | --sidecar-url URL]; skein workflows --help for each one's flags

Flags of run: --app-id, --app-port, --dapr-http-port, --dapr-grpc-port, --dapr-internal-grpc-port,
  --resources-path (repeatable), --config, --namespace, --nats-url, --sentry-address, --placement-address,
  --advertise-address, --trust-anchors-file, --join-token, --max-body-size, --log-level, --log-as-json,
  -f/--run-file, --metrics-port (default 0: a free port), --metrics-address (default 127.0.0.1),
  --control-plane-timeout (default 60s: how long to wait for the control plane of skein up),
  --workflow-work-item-timeout (default 60s: how long a workflow worker has to answer a work item)
Flags of up: --home, --host, --nats-port, --sentry-port, --placement-port, --advertise-address, --mode
  development|production, --trust-domain, --workload-cert-ttl, and for the telemetry stream --telemetry-max-age
  (default 24h), --telemetry-max-bytes (default 1Gi)
Flags of init: --home, --trust-domain (default public), --ca-ttl (default 8760h)
Flags of token: --app-id, --namespace, --ttl (default 1h)
Flags of decisions and traces: --nats-url, --home, --namespace, --cert-file, --key-file, --trust-anchors-file
`;

/** Commands that print a usage of their own for --help. */
const COMMANDS_WITH_USAGE = new Set(['decisions', 'traces', 'workflows']);

// Commands load on demand: a short-lived `skein traces` should not pay for loading the whole sidecar.
async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  // `skein <command> --help`: the usage above, for the commands without one of their own. After `--` it is the app's.
  const own = rest.indexOf('--') === -1 ? rest : rest.slice(0, rest.indexOf('--'));
  if (!COMMANDS_WITH_USAGE.has(command ?? '') && (own.includes('--help') || own.includes('-h'))) {
    process.stdout.write(USAGE);
    return undefined;
  }
  switch (command) {
    case 'init':
      return (await import('./cli/init.js')).initCommand(rest);
    case 'sentry':
      return (await import('./cli/sentry.js')).sentryCommand(rest);
    case 'up':
      return (await import('./cli/up.js')).upCommand(rest);
    case 'run':
      return (await import('./cli/run.js')).runCommand(rest);
    case 'list':
      return (await import('./cli/list.js')).listCommand(rest);
    case 'stop':
      return (await import('./cli/stop.js')).stopCommand(rest);
    case 'token':
      return (await import('./cli/token.js')).tokenCommand(rest);
    case 'decisions':
      return (await import('./cli/decisions.js')).decisionsCommand(rest);
    case 'traces':
      return (await import('./cli/traces.js')).tracesCommand(rest);
    case 'workflows':
      return (await import('./cli/workflows.js')).workflowsCommand(rest);
    case 'version':
    case '--version':
    case '-v':
      process.stdout.write(`skein ${(await import('./api/universal.js')).RUNTIME_VERSION}\n`);
      return undefined;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return undefined;
    default:
      throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`skein: ${error.message}\n`);
    process.exit(2);
  }
  if (error instanceof CommandFailed) {
    process.stderr.write(`skein: ${error.message}\n`);
    process.exit(1);
  }
  if (error instanceof SkeinError) {
    process.stderr.write(`skein: ${error.code}: ${error.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`skein: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
