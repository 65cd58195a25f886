/**
 * Replaying a recorded workflow instance through the app's own workflow code, for debugging: the history (read from
 * the instance's sidecar with `GetInstanceHistory`) is handed to the app's workflow SDK as one orchestration work
 * item by a stand-in sidecar that serves `TaskHubSidecarService` and never hands out an activity, so nothing the
 * workflow does runs again. What the code decides to do next is compared with what the record says it did: a
 * difference is the non-determinism that breaks a real replay.
 *
 * The planning and comparison are pure; `ReplaySidecar` is the gRPC adapter.
 */
import { Server, ServerCredentials, status as GrpcStatus, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { durabletask as dt, taskHubService } from '@skein/proto';

type HistoryEvent = dt.IHistoryEvent;

/** The work item a replay hands the app, and where the record goes on after it. */
export interface ReplayPlan {
  readonly request: dt.IOrchestratorRequest;
  /** How many history events the work item carries. */
  readonly replayed: number;
  /** The events recorded after those: the first of them show what the code did next. */
  readonly after: readonly HistoryEvent[];
}

/** True for the recorded events an orchestration's actions produce (the rest are its inputs: results, events). */
function isActionEvent(event: HistoryEvent): boolean {
  return Boolean(event.taskScheduled || event.timerCreated || event.subOrchestrationInstanceCreated || event.eventSent || event.executionCompleted);
}

/**
 * Plans a replay of `events` up to the event at `untilIndex` (default: all of them). A history is a run of steps,
 * each the inputs the instance received (its start, results, raised events, fired timers) then the actions its code
 * took. The work item ends on inputs: the recorded actions of the step being replayed are left out, to be compared
 * with what the code does now. The step's inputs are the work item's new events, after a step marker.
 */
export function planReplay(instanceId: string, events: readonly HistoryEvent[], untilIndex = events.length - 1): ReplayPlan {
  if (events.length === 0) throw new RangeError(`instance ${instanceId} has no recorded history to replay`);
  let cut = Math.min(Math.max(untilIndex, 0), events.length - 1) + 1;
  while (cut > 0 && isActionEvent(events[cut - 1] as HistoryEvent)) cut -= 1;
  let stepStart = cut;
  while (stepStart > 0 && !isActionEvent(events[stepStart - 1] as HistoryEvent)) stepStart -= 1;
  const newInputs = events.slice(stepStart, cut).filter((event) => !event.orchestratorStarted);
  const started = events.find((event) => event.executionStarted)?.executionStarted;
  const at = newInputs[0]?.timestamp ?? events[0]?.timestamp;
  return {
    request: {
      instanceId,
      ...(started?.orchestrationInstance?.executionId ? { executionId: started.orchestrationInstance.executionId } : {}),
      pastEvents: events.slice(0, stepStart),
      newEvents: [{ eventId: -1, ...(at ? { timestamp: at } : {}), orchestratorStarted: {} }, ...newInputs],
    },
    replayed: cut,
    after: events.slice(cut),
  };
}

/** An action and the recorded event it should match, side by side. */
export interface ReplayComparison {
  readonly lines: readonly string[];
  /** The first place the code and the record part ways; undefined when they agree. */
  readonly divergence?: string;
}

function describeAction(action: dt.IOrchestratorAction): string {
  if (action.scheduleTask) return `schedule activity ${action.scheduleTask.name ?? '?'}`;
  if (action.createTimer) return 'create a timer';
  if (action.createSubOrchestration) return `start child workflow ${action.createSubOrchestration.name ?? '?'}`;
  if (action.sendEvent) return `send event ${action.sendEvent.name ?? '?'}`;
  if (action.completeOrchestration) return `finish (${dt.OrchestrationStatus[action.completeOrchestration.orchestrationStatus ?? 0] ?? 'status ?'})`;
  if (action.terminateOrchestration) return 'terminate an instance';
  return 'an action Skein does not know';
}

function describeEvent(event: HistoryEvent): string {
  if (event.taskScheduled) return `schedule activity ${event.taskScheduled.name ?? '?'}`;
  if (event.timerCreated) return 'create a timer';
  if (event.subOrchestrationInstanceCreated) return `start child workflow ${event.subOrchestrationInstanceCreated.name ?? '?'}`;
  if (event.eventSent) return `send event ${event.eventSent.name ?? '?'}`;
  if (event.executionCompleted) return `finish (${dt.OrchestrationStatus[event.executionCompleted.orchestrationStatus ?? 0] ?? 'status ?'})`;
  return 'something else';
}

/**
 * Compares the actions the code produced for the replayed step with the actions the record has for that step (the
 * action events right after the replayed ones). Pure.
 */
export function compareReplay(actions: readonly dt.IOrchestratorAction[], after: readonly HistoryEvent[]): ReplayComparison {
  const inputs = after.findIndex((event) => !isActionEvent(event));
  const recorded = inputs === -1 ? after : after.slice(0, inputs);
  const lines: string[] = [];
  let divergence: string | undefined;
  const count = Math.max(actions.length, recorded.length);
  for (let index = 0; index < count; index += 1) {
    const action = actions[index];
    const event = recorded[index];
    const code = action ? describeAction(action) : 'nothing more';
    const record = event ? describeEvent(event) : 'nothing more';
    const same = code === record;
    lines.push(`${same ? '=' : '≠'} the code would ${code}; the record: ${record}`);
    if (!same && divergence === undefined) divergence = `the code would ${code}, but the recorded run did ${record === 'nothing more' ? 'nothing more in this step' : record}`;
  }
  if (count === 0) lines.push('= the code would do nothing more in this step, as recorded (it is waiting)');
  return divergence === undefined ? { lines } : { lines, divergence };
}

/** What a replay ended with. */
export interface ReplayOutcome {
  readonly actions: readonly dt.IOrchestratorAction[];
  readonly customStatus?: string;
}

/**
 * A stand-in sidecar for one replay: serves `TaskHubSidecarService` on loopback, hands the first worker that asks
 * the planned orchestration work item, and resolves `outcome` with the actions the app's code answers with. It
 * never sends an activity work item, and refuses every client call (start, raise, ...): a replay changes nothing.
 */
export class ReplaySidecar {
  private readonly server = new Server();
  private delivered = false;
  private settle!: (outcome: ReplayOutcome) => void;
  private fail!: (error: Error) => void;
  /** The app's answer to the replayed work item. */
  readonly outcome: Promise<ReplayOutcome>;

  constructor(private readonly plan: ReplayPlan) {
    this.outcome = new Promise<ReplayOutcome>((resolve, reject) => {
      this.settle = resolve;
      this.fail = reject;
    });
    // A caller may stop the replay before the app answers; the rejection is theirs to read, not unhandled.
    this.outcome.catch(() => undefined);
    const refuse = (_call: unknown, callback: (error: { code: number; details: string }) => void): void =>
      callback({ code: GrpcStatus.FAILED_PRECONDITION, details: 'this is a workflow replay for debugging: it changes nothing, so no instance can be started, raised or terminated here' });
    const handlers: UntypedServiceImplementation = {};
    for (const name of Object.keys(taskHubService)) handlers[name] = refuse;
    handlers['hello'] = (_call: unknown, callback: (error: null, value: object) => void) => callback(null, {});
    handlers['getWorkItems'] = (call: ServerWritableStream<dt.IGetWorkItemsRequest, dt.IWorkItem>) => {
      if (this.delivered) return;
      this.delivered = true;
      call.write({ orchestratorRequest: this.plan.request });
    };
    const complete = (call: { request: dt.IOrchestratorResponse }, callback: (error: null, value: object) => void): void => {
      callback(null, {});
      if (call.request.instanceId !== this.plan.request.instanceId) return;
      this.settle({ actions: call.request.actions ?? [], ...(call.request.customStatus?.value !== undefined && call.request.customStatus.value !== null ? { customStatus: call.request.customStatus.value } : {}) });
    };
    handlers['completeOrchestratorTask'] = complete;
    handlers['completeWorkflowTask'] = complete;
    handlers['abandonTaskOrchestratorWorkItem'] = (_call: unknown, callback: (error: null, value: object) => void) => {
      callback(null, {});
      this.fail(new Error('the app gave the replayed work item up (its workflow code threw, or it does not know the workflow)'));
    };
    this.server.addService(taskHubService, handlers);
  }

  /** Serves on 127.0.0.1 and a free port; resolves with the port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port)));
    });
  }

  /** Ends the replay: stops serving (answers in flight are sent first), and fails `outcome` when the app never answered. */
  close(reason = 'the replay was stopped before the app answered'): void {
    this.fail(new Error(reason));
    const force = setTimeout(() => this.server.forceShutdown(), 1000);
    force.unref();
    this.server.tryShutdown(() => clearTimeout(force));
  }
}
