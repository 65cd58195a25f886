import type { NatsConnection } from '@nats-io/transport-node';
import { decisionSubject, logger, systemClock, toDecisionEvent, type Clock, type Decision, type DecisionEvent } from '@skein/core';
import type { Call } from './pipeline.js';

const log = logger('decisions');

/** Where the pipeline hands every decision it makes. */
export interface DecisionSink {
  record(decision: Decision, request: Call, extra?: Pick<DecisionEvent, 'requestId' | 'batchIndex'>): void;
}

/**
 * Publishes each decision as a `DecisionEvent` on `skein.decisions.<namespace>.<appId>` (schema:
 * `@skein/proto/schemas/decision-event.schema.json`). Fire-and-forget: a slow or absent bus never delays a call.
 * Denials are also logged; allows only at debug level.
 */
export class NatsDecisionSink implements DecisionSink {
  private readonly nc: NatsConnection;
  private readonly appId: string;
  private readonly namespace: string;
  private readonly subject: string;

  private readonly clock: Clock;

  constructor(nc: NatsConnection, appId: string, namespace: string, clock: Clock = systemClock) {
    this.nc = nc;
    this.clock = clock;
    this.appId = appId;
    this.namespace = namespace;
    this.subject = decisionSubject(namespace, appId);
  }

  record(decision: Decision, request: Call, extra: Pick<DecisionEvent, 'requestId' | 'batchIndex'> = {}): void {
    const spanContext = request.trace?.span.spanContext();
    const traced = spanContext && spanContext.traceFlags & 1 ? { traceId: spanContext.traceId, spanId: spanContext.spanId } : {};
    const event = toDecisionEvent(decision, { time: new Date(this.clock.now()), appId: this.appId, namespace: this.namespace, ...traced, ...extra });
    // The decision also goes on the span of the stage that made it, so a trace shows why a call was refused.
    request.trace?.span.addEvent('skein.decision', {
      'skein.decision.allowed': decision.allowed,
      'skein.decision.source': decision.source,
      'skein.decision.rule': decision.rule,
      'skein.decision.reason': decision.reason,
      'skein.decision.caller': decision.caller,
      ...(decision.tool ? { 'gen_ai.tool.name': decision.tool } : {}),
    });
    this.send(decision, event);
  }

  /** Publishes a decision made outside the pipeline (a workflow access check on an actor call): no trace to join. */
  publish(decision: Decision): void {
    this.send(decision, toDecisionEvent(decision, { time: new Date(this.clock.now()), appId: this.appId, namespace: this.namespace }));
  }

  private send(decision: Decision, event: DecisionEvent): void {
    if (decision.allowed) log.debug('allowed', { ...decision });
    else log.info('denied', { ...decision });
    try {
      this.nc.publish(this.subject, JSON.stringify(event));
    } catch (error) {
      log.warn('could not publish a decision', { reason: (error as Error).message });
    }
  }
}
