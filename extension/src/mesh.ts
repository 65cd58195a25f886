/**
 * The editor's connection to a mesh: finds the local control plane (`<home>/up.json`) or a configured remote NATS,
 * connects read-only as an operator identity with mutual TLS, follows the telemetry stream (spans, decisions,
 * workflow events) through `@skein/core`'s reader, and counts the live apps from discovery. Reconnects by itself:
 * a restarted NATS is rejoined, and a new `skein up` (another port) is found again. No VS Code here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { BUCKETS, SUBJECTS, connectOperatorBus, operatorTls, parseDecisionEvent, parseSpanEvent, parseWorkflowEvent, readTelemetry, skeinHome, type BusTls, type DecisionEvent, type SpanEvent, type WorkflowEvent } from '@skein/core';
import { readControlPlane } from '@skein/runtime/editor';


/** Where and as whom to connect. */
export interface MeshSettings {
  /** The Skein home of the local mesh (its CA mints the editor's certificate when no cert file is given). */
  home: string;
  /** A remote mesh's NATS URLs; empty for the local mesh of `home`. */
  natsUrl?: string;
  trustBundle?: string;
  certFile?: string;
  keyFile?: string;
  /** How far back to read on connect, ms. */
  historyMs: number;
}

/** The connection's state, as the status bar shows it. */
export type MeshStatus =
  | { kind: 'connecting'; detail: string }
  | { kind: 'connected'; url: string; apps: number }
  | { kind: 'disconnected'; reason: string };

/** What the connection hands the views. */
export interface MeshListener {
  status(status: MeshStatus): void;
  span(span: SpanEvent): void;
  decision(event: DecisionEvent): void;
  workflow(event: WorkflowEvent): void;
}

/** The settings with `home` defaulted: `$SKEIN_HOME`, else `~/.skein`. */
export function meshHome(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return configured && configured.trim() !== '' ? configured : skeinHome(env);
}

/** Where to connect, or why there is nowhere yet. */
export function resolveTarget(settings: MeshSettings): { url: string; tls: () => BusTls } | { reason: string } {
  const tlsSource = {
    home: settings.home,
    appId: 'vscode',
    ...(settings.certFile ? { certFile: settings.certFile } : {}),
    ...(settings.keyFile ? { keyFile: settings.keyFile } : {}),
    ...(settings.trustBundle ? { trustAnchorsFile: settings.trustBundle } : {}),
  };
  if (settings.natsUrl && settings.natsUrl.trim() !== '') return { url: settings.natsUrl, tls: () => operatorTls(tlsSource) };
  const status = readControlPlane(settings.home);
  if (status.kind === 'absent') return { reason: `no \`skein up\` is running for ${settings.home}` };
  if (status.kind === 'starting') return { reason: `\`skein up\` (pid ${status.record.pid}) is still starting` };
  return { url: status.record.natsUrl, tls: () => operatorTls(tlsSource) };
}

/** How often the connection looks again for a control plane, and counts the live apps. */
const POLL_MS = 2000;

/** A sidecar of the local mesh, as `skein run` recorded it. */
export interface LocalSidecar {
  readonly appId: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  /** The app's command line (empty when `skein run` started no app). */
  readonly command: readonly string[];
}

/** The sidecars of the local mesh that `skein run` recorded in `<home>/runs/`, by App ID (live processes only). */
export function localSidecars(home: string): Map<string, LocalSidecar> {
  const out = new Map<string, LocalSidecar>();
  let names: string[];
  try {
    names = readdirSync(join(home, 'runs'));
  } catch {
    return out;
  }
  for (const name of names.filter((entry) => entry.endsWith('.json')).sort()) {
    try {
      const record = JSON.parse(readFileSync(join(home, 'runs', name), 'utf8')) as { appId?: unknown; httpPort?: unknown; grpcPort?: unknown; pid?: unknown; command?: unknown };
      if (typeof record.appId !== 'string' || !Number.isInteger(record.httpPort) || !Number.isInteger(record.grpcPort) || !Number.isInteger(record.pid)) continue;
      try {
        process.kill(record.pid as number, 0);
      } catch {
        continue;
      }
      const command = Array.isArray(record.command) ? record.command.filter((part): part is string => typeof part === 'string') : [];
      out.set(record.appId, { appId: record.appId, httpPort: record.httpPort as number, grpcPort: record.grpcPort as number, command });
    } catch {
      // A record being written, or not one: skipped.
    }
  }
  return out;
}

/** One connection, kept up until `close()`. */
export class MeshConnection {
  private readonly settings: MeshSettings;
  private readonly listener: MeshListener;
  private readonly stopped = new AbortController();
  private nc: NatsConnection | undefined;
  private current: MeshStatus = { kind: 'connecting', detail: 'starting' };
  private running: Promise<void> | undefined;
  /** Per subject filter, the stream sequence of the last message handed on: a new connection resumes after it. */
  private readonly sequences = new Map<string, number>();
  private servedUrl: string | undefined;

  constructor(settings: MeshSettings, listener: MeshListener) {
    this.settings = settings;
    this.listener = listener;
  }

  get status(): MeshStatus {
    return this.current;
  }

  /** Starts connecting; resolves at once (the connection is made, lost and remade in the background). */
  start(): void {
    this.running ??= this.loop();
  }

  private report(status: MeshStatus): void {
    this.current = status;
    this.listener.status(status);
  }

  /** Sleeps `ms`, or less when the connection is closed (or `signal` aborts) meanwhile. */
  private async wait(ms: number, signal?: AbortSignal): Promise<void> {
    const signals = [this.stopped.signal, ...(signal ? [signal] : [])];
    if (signals.some((one) => one.aborted)) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        for (const one of signals) one.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      for (const one of signals) one.addEventListener('abort', done, { once: true });
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped.signal.aborted) {
      const target = resolveTarget(this.settings);
      if ('reason' in target) {
        this.report({ kind: 'disconnected', reason: target.reason });
        await this.wait(POLL_MS);
        continue;
      }
      let nc: NatsConnection;
      try {
        this.report({ kind: 'connecting', detail: target.url });
        nc = await connectOperatorBus(target.url, target.tls(), 'skein vscode', true);
      } catch (error) {
        this.report({ kind: 'disconnected', reason: (error as Error).message });
        await this.wait(POLL_MS);
        continue;
      }
      this.nc = nc;
      // Another NATS (a new `skein up`) has a stream of its own: read it from the start of the history window.
      if (target.url !== this.servedUrl) this.sequences.clear();
      this.servedUrl = target.url;
      await this.serve(nc, target.url);
      this.nc = undefined;
    }
  }

  /** Reads the stream and counts apps until the connection closes, or the control plane moved elsewhere. */
  private async serve(nc: NatsConnection, url: string): Promise<void> {
    const serving = new AbortController();
    const stopServing = (): void => serving.abort();
    this.stopped.signal.addEventListener('abort', stopServing, { once: true });
    let apps = 0;
    let reconnecting = false;
    let readers = this.startReaders(nc);
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect' || status.type === 'reconnecting') {
          if (!reconnecting) this.report({ kind: 'disconnected', reason: `lost NATS at ${url}; reconnecting` });
          reconnecting = true;
        } else if (status.type === 'reconnect') {
          reconnecting = false;
          // The consumers of the old server session are gone with it: read again, after the last message seen.
          readers.stop();
          readers = this.startReaders(nc);
          this.report({ kind: 'connected', url, apps });
        }
      }
    })();
    this.report({ kind: 'connected', url, apps });
    while (!serving.signal.aborted && !nc.isClosed()) {
      if (!reconnecting) {
        const counted = await countApps(nc);
        if (counted !== undefined && counted !== apps && !reconnecting) {
          apps = counted;
          this.report({ kind: 'connected', url, apps });
        }
      } else if (!this.settings.natsUrl) {
        // A new `skein up` serves NATS on another port: follow it.
        const target = resolveTarget(this.settings);
        if (!('reason' in target) && target.url !== url) break;
      }
      await this.wait(POLL_MS, serving.signal);
    }
    readers.stop();
    this.stopped.signal.removeEventListener('abort', stopServing);
    await nc.close().catch(() => undefined);
    await readers.done;
  }

  /** Follows the three telemetry families on `nc`, each resuming after the last message it handed on. */
  private startReaders(nc: NatsConnection): { stop(): void; done: Promise<unknown> } {
    const reading = new AbortController();
    const since = new Date(Date.now() - this.settings.historyMs);
    const follow = async (subject: string, take: (data: unknown) => void): Promise<void> => {
      while (!reading.signal.aborted && !this.stopped.signal.aborted) {
        const last = this.sequences.get(subject);
        try {
          for await (const item of readTelemetry(nc, { subject, ...(last === undefined ? { since } : { afterSequence: last }), follow: true, signal: reading.signal })) {
            if (item.kind !== 'message') continue;
            this.sequences.set(subject, item.sequence);
            take(item.data);
          }
        } catch {
          // No stream yet (no sidecar ran), or the server went away: look again shortly.
        }
        await this.wait(POLL_MS, reading.signal);
      }
    };
    const done = Promise.allSettled([
      follow(`${SUBJECTS.spans}.>`, (data) => {
        const span = parseSpanEvent(data);
        if (span) this.listener.span(span);
      }),
      follow(`${SUBJECTS.decisions}.>`, (data) => {
        const event = parseDecisionEvent(data);
        if (event) this.listener.decision(event);
      }),
      follow(`${SUBJECTS.workflows}.>`, (data) => {
        const event = parseWorkflowEvent(data);
        if (event) this.listener.workflow(event);
      }),
    ]);
    return { stop: () => reading.abort(), done };
  }

  /** The NATS connection while connected (for the workflow view's reads). */
  connection(): NatsConnection | undefined {
    return this.nc;
  }

  async close(): Promise<void> {
    this.stopped.abort();
    await this.nc?.close().catch(() => undefined);
    await this.running;
  }
}

/** Distinct apps (`<namespace>.<appId>`) with a live instance in discovery; undefined when it cannot be read. */
async function countApps(nc: NatsConnection): Promise<number | undefined> {
  try {
    const kv = await new Kvm(nc).open(BUCKETS.discovery);
    const apps = new Set<string>();
    for await (const key of await kv.keys()) apps.add(key.split('.').slice(0, 2).join('.'));
    return apps.size;
  } catch {
    return undefined;
  }
}
