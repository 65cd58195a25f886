import type { NatsConnection } from '@nats-io/transport-node';
import { logger, workflowEventSubject } from '@skein/core';
import type { Tracing } from '../telemetry/tracing.js';
import type { RecordTelemetry } from './telemetry.js';

const log = logger('workflow');

/** Where the engine hands the telemetry of every record it appended. */
export interface WorkflowTelemetrySink {
  publish(telemetry: RecordTelemetry): void;
}

/**
 * Publishes workflow events as `WorkflowEvent` JSON on `skein.workflows.<namespace>.<appId>` (schema:
 * `@skein/proto/schemas/workflow-event.schema.json`) and hands ended spans to the sidecar's tracing. Fire-and-forget
 * like decisions and spans: core NATS publishes and a batching span processor, so a slow or absent bus or collector
 * never delays or fails a workflow step.
 */
export class NatsWorkflowTelemetry implements WorkflowTelemetrySink {
  private readonly nc: NatsConnection;
  private readonly subject: string;
  private readonly tracing: () => Tracing;

  /** `tracing` is read at each publish: the sidecar sets its tracing up after the engine exists. */
  constructor(nc: NatsConnection, source: { appId: string; namespace: string }, tracing: () => Tracing) {
    this.nc = nc;
    this.subject = workflowEventSubject(source.namespace, source.appId);
    this.tracing = tracing;
  }

  publish(telemetry: RecordTelemetry): void {
    try {
      for (const event of telemetry.events) this.nc.publish(this.subject, JSON.stringify(event));
      for (const span of telemetry.spans) this.tracing().record(span);
    } catch (error) {
      log.warn('could not publish workflow telemetry', { reason: (error as Error).message });
    }
  }
}
