import { SkeinError, type Decision } from '@skein/core';
import { durabletask as dt } from '@skein/proto';
import type { ActorMethodCall } from '../actors/actor-host.js';
import { evaluateWorkflowAccess, workflowOperationOf, type CompiledWorkflowAccess } from './access-policy.js';

/** What the engine asks before it runs an actor call to one of its instances. */
export interface WorkflowAccessCheck {
  /** Throws ERR_WORKFLOW_ACCESS_DENIED when the call's verified caller may not do what it asks. */
  check(call: ActorMethodCall, workflowName: () => string | undefined): void;
}

/**
 * The WorkflowAccessPolicies of one app, applied to the actor calls its instances receive. The app's own calls
 * pass untouched (they are most of the traffic: activity results, timers, children); every call from another app
 * is judged on `call.caller`, the identity the actor runtime read from the caller's mTLS certificate, and each
 * such decision is published like an access-control decision.
 */
export class WorkflowAccessGuard implements WorkflowAccessCheck {
  private readonly target: { appId: string; namespace: string };
  private policies: CompiledWorkflowAccess;
  private readonly publish: (decision: Decision) => void;

  constructor(target: { appId: string; namespace: string }, policies: CompiledWorkflowAccess, publish: (decision: Decision) => void) {
    this.target = target;
    this.policies = policies;
    this.publish = publish;
  }

  /** Swaps in reloaded policies. */
  use(policies: CompiledWorkflowAccess): void {
    this.policies = policies;
  }

  check(call: ActorMethodCall, workflowName: () => string | undefined): void {
    const { caller } = call;
    if (caller.appId === this.target.appId && caller.namespace === this.target.namespace) return;
    const event = call.method === 'event' ? decodeEvent(call.body) : undefined;
    const operation = workflowOperationOf(call.method, event);
    const name = (operation === 'schedule' ? event?.executionStarted?.name : workflowName()) ?? '';
    const decision = evaluateWorkflowAccess(this.policies, { caller, target: this.target, operation, kind: 'workflow', name });
    this.publish(decision);
    if (!decision.allowed) {
      // The reason names the caller, the operation and the workflow.
      throw new SkeinError('ERR_WORKFLOW_ACCESS_DENIED', `workflow access denied: ${decision.reason}`);
    }
  }
}

function decodeEvent(body: Buffer): dt.HistoryEvent | undefined {
  try {
    return dt.HistoryEvent.decode(body);
  } catch {
    return undefined;
  }
}
