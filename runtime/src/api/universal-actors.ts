import { Readable } from 'node:stream';
import { SkeinError } from '@skein/core';
import type { ResiliencyMiddleware } from '../resiliency/resiliency-middleware.js';
import type { Call } from '../pipeline/pipeline.js';
import { readWhole } from '../pipeline/read-body.js';
import type { ActorCall, ActorReply, ActorRuntime, ActorRuntimeStatus } from '../actors/actor-runtime.js';
import { checkName, parseStateTransaction } from '../actors/requests.js';

/**
 * Actor types the sidecar's own engines host: workflow instances (`dapr.internal.<namespace>.<appId>.workflow`) and
 * the `dapr.internal.mcp.` family. Their methods, state and reminders are the engine's contract, not an app's.
 */
const ENGINE_TYPE = /^dapr\.internal\.(?:[^.]+\.[^.]+\.workflow$|mcp\.)/;

/**
 * A valid actor type an app may address. The engines' types are refused: a call, reminder or state write on a
 * workflow instance's actor would bypass the workflow API and its access policy (forged activity results or timer
 * fires, a deleted wake-up reminder).
 */
function checkPublicType(actorType: string): void {
  checkName('actorType', actorType);
  if (ENGINE_TYPE.test(actorType)) {
    throw new SkeinError('ERR_PERMISSION_DENIED', `actor type "${actorType}" is internal to the sidecar: use the workflow API for workflow instances`);
  }
}

/** What `actorRuntime` reads in the metadata of a sidecar without actors. */
const DISABLED: ActorRuntimeStatus = { runtimeStatus: 'DISABLED', activeActors: [], hostReady: false, placement: '' };

/**
 * The actor operations of the Dapr API, written once for every front end: names are validated, bodies decoded into
 * typed requests, and the work handed to the actor runtime. Without a runtime (no placement address), every
 * operation fails with Dapr's ERR_ACTOR_RUNTIME_NOT_FOUND.
 */
export class ActorOperations {
  private readonly runtime: ActorRuntime | undefined;
  private readonly resiliency: ResiliencyMiddleware | undefined;

  constructor(runtime: ActorRuntime | undefined, resiliency?: ResiliencyMiddleware) {
    this.runtime = runtime;
    this.resiliency = resiliency;
  }

  private enabled(): ActorRuntime {
    if (!this.runtime) {
      throw new SkeinError('ERR_ACTOR_RUNTIME_NOT_FOUND', 'the actor runtime is not enabled on this sidecar: start it with --placement-address (skein run finds the placement of a running skein up)');
    }
    return this.runtime;
  }

  /** `POST|PUT|GET|DELETE /v1.0/actors/<type>/<id>/method/<method>` */
  async invoke(actorType: string, actorId: string, call: ActorCall, signal: AbortSignal): Promise<ActorReply> {
    checkPublicType(actorType);
    checkName('actorId', actorId);
    checkName('method', call.method);
    const runtime = this.enabled();
    const resiliency = this.resiliency;
    if (!resiliency?.hasActorPolicies(actorType)) return runtime.invoke(actorType, actorId, call, signal);
    // The call runs as a pipeline request so the one resiliency loop (timeouts, retries, breakers) applies to it.
    const request: Call = { caller: undefined, target: { appId: actorType, namespace: '' }, verb: call.verb, method: call.method, query: '', headers: call.headers, body: call.body, decisions: [], signal };
    const response = await resiliency.runActor(actorType, actorId, request, async (attempt) => {
      const reply = await runtime.invoke(actorType, actorId, call, attempt.signal);
      return { status: reply.status, headers: reply.headers, body: Readable.from([reply.body]) };
    });
    return { status: response.status, headers: response.headers, body: await readWhole(response.body, Number.MAX_SAFE_INTEGER) };
  }

  /** `POST|PUT /v1.0/actors/<type>/<id>/state`: one atomic transaction. */
  async stateTransaction(actorType: string, actorId: string, body: Buffer): Promise<void> {
    checkPublicType(actorType);
    checkName('actorId', actorId);
    const runtime = this.enabled();
    await runtime.transactState(actorType, actorId, parseStateTransaction(body));
  }

  /** `GET /v1.0/actors/<type>/<id>/state/<key>`: the value's JSON, or undefined (204). */
  getState(actorType: string, actorId: string, key: string): Promise<string | undefined> {
    checkPublicType(actorType);
    checkName('actorId', actorId);
    if (key.length === 0) throw new SkeinError('ERR_BAD_REQUEST', 'invalid request: the state key is empty');
    return this.enabled().getState(actorType, actorId, key);
  }

  /** `POST|PUT /v1.0/actors/<type>/<id>/reminders/<name>` */
  createReminder(actorType: string, actorId: string, name: string, body: Buffer): Promise<void> {
    this.checkTimed(actorType, actorId, 'reminder name', name);
    return this.enabled().createReminder(actorType, actorId, name, body);
  }

  /** `GET /v1.0/actors/<type>/<id>/reminders/<name>` */
  async getReminder(actorType: string, actorId: string, name: string): Promise<Record<string, unknown>> {
    this.checkTimed(actorType, actorId, 'reminder name', name);
    const reminder = await this.enabled().getReminder(actorType, actorId, name);
    if (!reminder) throw new SkeinError('ERR_ACTOR_REMINDER_NOT_FOUND', `actor reminder not found: ${name}`);
    return reminder;
  }

  /** `DELETE /v1.0/actors/<type>/<id>/reminders/<name>` */
  deleteReminder(actorType: string, actorId: string, name: string): Promise<void> {
    this.checkTimed(actorType, actorId, 'reminder name', name);
    return this.enabled().deleteReminder(actorType, actorId, name);
  }

  /** `POST|PUT /v1.0/actors/<type>/<id>/timers/<name>` */
  createTimer(actorType: string, actorId: string, name: string, body: Buffer, signal: AbortSignal): Promise<void> {
    this.checkTimed(actorType, actorId, 'timer name', name);
    return this.enabled().createTimer(actorType, actorId, name, body, signal);
  }

  /** `DELETE /v1.0/actors/<type>/<id>/timers/<name>` */
  deleteTimer(actorType: string, actorId: string, name: string, signal: AbortSignal): Promise<void> {
    this.checkTimed(actorType, actorId, 'timer name', name);
    return this.enabled().deleteTimer(actorType, actorId, name, signal);
  }

  /** `actorRuntime` of `/v1.0/metadata`. */
  status(): ActorRuntimeStatus {
    return this.runtime ? this.runtime.status() : { ...DISABLED };
  }

  private checkTimed(actorType: string, actorId: string, kind: string, name: string): void {
    checkPublicType(actorType);
    checkName('actorId', actorId);
    checkName(kind, name);
  }
}
