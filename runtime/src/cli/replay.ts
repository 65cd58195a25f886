/**
 * `skein workflows replay <id> [--until N] -- <app command>`: runs the app's own workflow code over the recorded
 * history of one instance, with nothing run again (no activity, no timer, no write): the app is started against a
 * stand-in sidecar that hands it the history as one work item. Run under a debugger (the editor's "Debug this
 * instance" does), the app's breakpoints hit as the code replays. Prints what the code would do next beside what
 * the record says it did, and exits 3 when they differ (a non-deterministic workflow).
 */
import { spawn } from 'node:child_process';
import { credentials, makeGenericClientConstructor, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { durabletask as dt, taskHubService } from '@skein/proto';
import { CommandFailed, UsageError } from './args.js';
import { parseFlagsAndPositionals, writeLine } from './telemetry-common.js';
import { compareReplay, planReplay, ReplaySidecar } from '../workflow/replay.js';

export const REPLAY_USAGE = `Usage: skein workflows replay <instance id> [--until N] [--dapr-grpc-port P] [--timeout 10m] -- <app command...>

  Starts <app command> (the app that runs the workflow, e.g. node dist/worker.js) against a stand-in sidecar that
  hands it the recorded history of <instance id>, read from the instance's sidecar (gRPC on 127.0.0.1:P; default
  $DAPR_GRPC_PORT, else 50001). Nothing runs again: no activity is handed out and nothing is written. Prints what
  the code would do after the replayed events beside what the record says it did; exit code 3 when they differ.

  --until N       replay up to history event N (from 1; default: all): the code runs the step that took event N
                  in, and what it does is compared with the actions recorded after it
  --timeout D     give up when the app has not answered after D (default 10m; a debugger may pause it long)
`;

/** The history of an instance, read from its sidecar with `GetInstanceHistory`. */
export async function fetchHistory(address: string, instanceId: string, apiToken: string | undefined): Promise<dt.IHistoryEvent[]> {
  const TaskHub = makeGenericClientConstructor(taskHubService, 'TaskHubSidecarService');
  const client = new TaskHub(address, credentials.createInsecure()) as Client & Record<string, (request: unknown, metadata: Metadata, options: object, callback: (error: ServiceError | null, value?: dt.IGetInstanceHistoryResponse) => void) => void>;
  const metadata = new Metadata();
  if (apiToken) metadata.set('dapr-api-token', apiToken);
  try {
    const answer = await new Promise<dt.IGetInstanceHistoryResponse>((resolve, reject) => {
      const call = client['getInstanceHistory'];
      if (!call) throw new Error('no GetInstanceHistory in the service definition');
      call.call(client, { instanceId }, metadata, { deadline: Date.now() + 30_000 }, (error, value) => (error ? reject(error) : resolve(value ?? {})));
    });
    return answer.events ?? [];
  } catch (error) {
    const failed = error as ServiceError;
    throw new CommandFailed(`cannot read the history of ${instanceId} from the sidecar at ${address}: ${failed.details || failed.message}`);
  } finally {
    client.close();
  }
}

/** Runs `skein workflows replay`. */
export async function replayCommand(argv: string[]): Promise<void> {
  const dashes = argv.indexOf('--');
  const own = dashes === -1 ? argv : argv.slice(0, dashes);
  const command = dashes === -1 ? [] : argv.slice(dashes + 1);
  const { values, positionals } = parseFlagsAndPositionals(own, { until: { type: 'string' }, 'dapr-grpc-port': { type: 'string' }, timeout: { type: 'string' }, help: { type: 'boolean' } });
  if (values['help']) {
    process.stdout.write(REPLAY_USAGE);
    return;
  }
  const [instanceId, ...extra] = positionals;
  if (instanceId === undefined || extra.length > 0) throw new UsageError(`skein workflows replay takes one <instance id>\n\n${REPLAY_USAGE}`);
  if (command.length === 0) throw new UsageError(`give the app's command after --, e.g. -- node dist/worker.js\n\n${REPLAY_USAGE}`);
  const port = Number(values['dapr-grpc-port'] ?? process.env['DAPR_GRPC_PORT'] ?? 50001);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--dapr-grpc-port must be a port, not ${String(values['dapr-grpc-port'])}`);
  const until = values['until'] === undefined ? undefined : Number(values['until']);
  if (until !== undefined && (!Number.isInteger(until) || until < 1)) throw new UsageError(`--until must be a history event number from 1, not ${String(values['until'])}`);
  const { parseDuration } = await import('@skein/core');
  const timeoutMs = parseDuration(String(values['timeout'] ?? '10m'));

  const history = await fetchHistory(`127.0.0.1:${port}`, instanceId, process.env['DAPR_API_TOKEN'] || undefined);
  if (history.length === 0) throw new CommandFailed(`instance ${instanceId} has no history on the sidecar at 127.0.0.1:${port} (purged, or never started there)`);
  // Events are numbered as `skein workflows history` and the editor show them: without the step markers.
  const shown = history.flatMap((event, index) => (event.orchestratorStarted ? [] : [index]));
  if (until !== undefined && until > shown.length) throw new UsageError(`--until ${until}: instance ${instanceId} has ${shown.length} history events`);
  const plan = planReplay(instanceId, history, until === undefined ? undefined : shown[until - 1]);
  const sidecar = new ReplaySidecar(plan);
  const replayPort = await sidecar.listen();
  const replayedShown = shown.filter((index) => index < plan.replayed).length;
  await writeLine(`replaying ${replayedShown} of ${shown.length} history events of ${instanceId} (then comparing the step that followed) through: ${command.join(' ')}`);

  const env: NodeJS.ProcessEnv = { ...process.env, DAPR_GRPC_PORT: String(replayPort) };
  // The app must reach nothing but the stand-in: its HTTP API port points nowhere.
  delete env['DAPR_HTTP_PORT'];
  const [file, ...args] = command as [string, ...string[]];
  const app = spawn(file, args, { stdio: 'inherit', env, detached: true });
  const stopApp = (): void => {
    if (app.exitCode === null && app.pid !== undefined) {
      try {
        process.kill(-app.pid, 'SIGTERM');
      } catch {
        // Gone already.
      }
    }
  };
  app.once('exit', (code, signal) => sidecar.close(`the app exited (${signal ?? `code ${code}`}) before it answered the replayed work item`));
  app.once('error', (error) => sidecar.close(`the app could not start: ${error.message}`));
  const timer = setTimeout(() => sidecar.close(`the app did not answer within ${values['timeout'] ?? '10m'}`), timeoutMs);
  try {
    const outcome = await sidecar.outcome;
    const comparison = compareReplay(outcome.actions, plan.after);
    for (const line of comparison.lines) await writeLine(line);
    if (outcome.customStatus) await writeLine(`custom status: ${outcome.customStatus}`);
    if (comparison.divergence) {
      await writeLine(`the replay diverged: ${comparison.divergence}; the workflow code is not deterministic for this history`);
      process.exitCode = 3;
    } else {
      await writeLine('the replay matches the record');
    }
  } catch (error) {
    throw new CommandFailed(`the replay did not finish: ${(error as Error).message}`);
  } finally {
    clearTimeout(timer);
    stopApp();
    sidecar.close();
  }
}
