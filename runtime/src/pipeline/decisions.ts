import type { NatsConnection } from '@nats-io/transport-node';
import { logger } from '../logger.js';
import type { Decision, DecisionEvent } from '../policy/decision.js';
import { decisionSubject } from '../bus/names.js';
import type { PipelineRequest } from './pipeline.js';

const log = logger('decisions');

/** Where the pipeline hands every decision it makes. */
export interface DecisionSink {
  record(decision: Decision, request: PipelineRequest, extra?: Pick<DecisionEvent, 'requestId' | 'batchIndex'>): void;
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

  constructor(nc: NatsConnection, appId: string, namespace: string) {
    this.nc = nc;
    this.appId = appId;
    this.namespace = namespace;
    this.subject = decisionSubject(namespace, appId);
  }

  record(decision: Decision, _request: PipelineRequest, extra: Pick<DecisionEvent, 'requestId' | 'batchIndex'> = {}): void {
    const event: DecisionEvent = { version: 1, time: new Date().toISOString(), appId: this.appId, namespace: this.namespace, ...extra, decision };
    if (decision.allowed) log.debug('allowed', { ...decision });
    else log.info('denied', { ...decision });
    try {
      this.nc.publish(this.subject, JSON.stringify(event));
    } catch (error) {
      log.warn('could not publish a decision', { reason: (error as Error).message });
    }
  }
}
