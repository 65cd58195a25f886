import type { NatsConnection } from '@nats-io/transport-node';

/** A decision event as the tests read it off `skein.decisions.<namespace>.<appId>`. */
export interface DecisionEvent {
  appId: string;
  decision: { allowed: boolean; source: string; rule: string; caller: string; target: string; method?: string; tool?: string; reason?: string };
}

/**
 * The next `count` decisions an app publishes. Resolves once the server has the subscription, so whatever the test
 * does next is seen; `events()` resolves when all `count` have arrived (or the timeout ends the subscription).
 */
export async function nextDecisions(nc: NatsConnection, subject: string, count: number, timeoutMs?: number): Promise<{ events(): Promise<DecisionEvent[]> }> {
  const sub = nc.subscribe(subject, { max: count, ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }) });
  await nc.flush();
  return {
    events: async () => {
      const out: DecisionEvent[] = [];
      for await (const message of sub) out.push(message.json<DecisionEvent>());
      return out;
    },
  };
}
