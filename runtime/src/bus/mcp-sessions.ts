import { createHash } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { KvBucket, logger } from '@skein/core';

const log = logger('mcp-sessions');

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
  private readonly bucket: KvBucket;
  private readonly cache = new Map<string, string>();

  constructor(nc: NatsConnection) {
    this.bucket = new KvBucket(nc, 'mcpSessions');
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
      await this.bucket.use((kv) => kv.put(key, instanceId));
    } catch (error) {
      log.warn('could not record an MCP session owner', { appId, reason: (error as Error).message });
    }
  }

  /** Forgets a session (its DELETE went through). */
  async forget(namespace: string, appId: string, sessionId: string): Promise<void> {
    const key = keyOf(namespace, appId, sessionId);
    this.cache.delete(key);
    await this.bucket.use((kv) => kv.delete(key)).catch(() => undefined);
  }

  /** The instance that owns the session, if any is recorded (caller side). */
  async ownerOf(namespace: string, appId: string, sessionId: string): Promise<string | undefined> {
    const key = keyOf(namespace, appId, sessionId);
    const cached = this.cache.get(key);
    if (cached) return cached;
    try {
      const entry = await this.bucket.use((kv) => kv.get(key));
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
