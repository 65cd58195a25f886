import { createHash } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { logger } from '../logger.js';
import { BUCKETS } from './names.js';

const log = logger('mcp-sessions');

/** How long a session's owner is remembered after it was last recorded. */
const SESSION_TTL_MS = 24 * 3_600_000;
/** Owners remembered locally, most recent first; beyond this the bucket is asked again. */
const CACHE_SIZE = 10_000;

/** KV key of a session: session ids are opaque client-visible strings, so they are hashed into a safe token. */
function keyOf(namespace: string, appId: string, sessionId: string): string {
  return `${namespace}.${appId}.${createHash('sha256').update(sessionId).digest('hex').slice(0, 40)}`;
}

/**
 * Which instance of an MCP server created each streamable-HTTP session. A scaled MCP server keeps sessions in the
 * memory of the replica that answered `initialize`; the callee's sidecar records that replica here when its app
 * hands out an `Mcp-Session-Id`, and callers' sidecars send every later request of the session to it, so agents
 * never see "session not found" behind a scaled server.
 */
export class McpSessionRegistry {
  private readonly nc: NatsConnection;
  private kv: KV | undefined;
  private readonly cache = new Map<string, string>();

  constructor(nc: NatsConnection) {
    this.nc = nc;
  }

  private async bucket(): Promise<KV> {
    this.kv ??= await new Kvm(this.nc).create(BUCKETS.mcpSessions, { history: 1, ttl: SESSION_TTL_MS });
    return this.kv;
  }

  private remember(key: string, instanceId: string): void {
    this.cache.delete(key);
    this.cache.set(key, instanceId);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
  }

  /** Records that `instanceId` owns the session (callee side, when its app answered with a new session id). */
  async record(namespace: string, appId: string, sessionId: string, instanceId: string): Promise<void> {
    const key = keyOf(namespace, appId, sessionId);
    this.remember(key, instanceId);
    try {
      await (await this.bucket()).put(key, instanceId);
    } catch (error) {
      log.warn('could not record an MCP session owner', { appId, reason: (error as Error).message });
    }
  }

  /** Forgets a session (its DELETE went through). */
  async forget(namespace: string, appId: string, sessionId: string): Promise<void> {
    const key = keyOf(namespace, appId, sessionId);
    this.cache.delete(key);
    await (await this.bucket()).delete(key).catch(() => undefined);
  }

  /** The instance that owns the session, if any is recorded (caller side). */
  async ownerOf(namespace: string, appId: string, sessionId: string): Promise<string | undefined> {
    const key = keyOf(namespace, appId, sessionId);
    const cached = this.cache.get(key);
    if (cached) return cached;
    try {
      const entry = await (await this.bucket()).get(key);
      if (entry?.operation !== 'PUT') return undefined;
      const owner = entry.string();
      this.remember(key, owner);
      return owner;
    } catch (error) {
      log.debug('MCP session owner lookup failed', { appId, reason: (error as Error).message });
      return undefined;
    }
  }
}
