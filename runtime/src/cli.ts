#!/usr/bin/env node
/** The `skein` command line: init, sentry, up, run, token. */
import { SkeinError } from './errors.js';
import { UsageError } from './cli/args.js';
import { initCommand } from './cli/init.js';
import { sentryCommand } from './cli/sentry.js';
import { upCommand } from './cli/up.js';
import { runCommand } from './cli/run.js';
import { tokenCommand } from './cli/token.js';

const USAGE = `Usage: skein <command> [flags]

Commands:
  init      create a development root CA and trust bundle (~/.skein/certs)
  up        start the local control plane: NATS (JetStream, mTLS) and sentry
  run       start a sidecar beside an app: skein run --app-id ID [--app-port P] [flags] -- <command>
            or every app of a multi-app run file: skein run -f <file>
  sentry    run the certificate authority on its own
  token     print a join token for a production sentry: skein token --app-id ID [--namespace N]

Flags of run: --app-id, --app-port, --dapr-http-port, --dapr-grpc-port, --dapr-internal-grpc-port,
  --resources-path (repeatable), --config, --namespace, --nats-url, --sentry-address, --advertise-address,
  --trust-anchors-file, --join-token, --max-body-size, --log-level, --log-as-json, -f/--run-file
`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'init':
      return initCommand(rest);
    case 'sentry':
      return sentryCommand(rest);
    case 'up':
      return upCommand(rest);
    case 'run':
      return runCommand(rest);
    case 'token':
      return tokenCommand(rest);
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
  if (error instanceof SkeinError) {
    process.stderr.write(`skein: ${error.code}: ${error.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`skein: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
