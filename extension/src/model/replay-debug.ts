/**
 * "Debug this instance": the launch configuration that runs `skein workflows replay` under the Node debugger, with
 * the app's own command as its child process (the debugger attaches to it), so breakpoints in the workflow code hit
 * while the recorded history replays and nothing runs again. Pure.
 */

/** What a replay under the debugger needs. */
export interface ReplayDebugTarget {
  readonly instanceId: string;
  readonly workflowName: string;
  /** gRPC API port of the instance's sidecar (its history is read there). */
  readonly grpcPort: number;
  /** Replay up to this history event (from 1, as the instance view numbers them); all when absent. */
  readonly until?: number;
  /** The app's command line, as `skein run` started it. */
  readonly appCommand: readonly string[];
  /** The `skein` CLI script (a JavaScript file) the debugger launches. */
  readonly cliPath: string;
  readonly cwd: string;
}

/** A Node launch configuration, as `vscode.debug.startDebugging` takes it. */
export interface NodeLaunchConfiguration {
  readonly type: 'node';
  readonly request: 'launch';
  readonly name: string;
  readonly program: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly autoAttachChildProcesses: true;
  readonly console: 'integratedTerminal';
  readonly skipFiles: readonly string[];
}

export function replayLaunchConfiguration(target: ReplayDebugTarget): NodeLaunchConfiguration {
  if (target.appCommand.length === 0) throw new Error(`the app of ${target.instanceId} was not started by skein run, so its command is unknown`);
  return {
    type: 'node',
    request: 'launch',
    name: `Replay ${target.workflowName} ${target.instanceId}${target.until === undefined ? '' : ` to event ${target.until}`}`,
    program: target.cliPath,
    args: ['workflows', 'replay', target.instanceId, '--dapr-grpc-port', String(target.grpcPort), ...(target.until === undefined ? [] : ['--until', String(target.until)]), '--', ...target.appCommand],
    cwd: target.cwd,
    autoAttachChildProcesses: true,
    console: 'integratedTerminal',
    skipFiles: ['<node_internals>/**', '**/node_modules/@skein/**', '**/runtime/dist/**'],
  };
}
