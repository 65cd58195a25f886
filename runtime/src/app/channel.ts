import { Agent, request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';
import { connect } from 'node:net';
import { SkeinError, headersObject, type HeaderList } from '@skein/core';

/** How a keep-alive connection the app closed while a request was being written fails. */
const STALE_CONNECTION = new Set(['ECONNRESET', 'EPIPE']);

/** Where a sidecar's app listens. */
export interface AppChannelOptions {
  appId: string;
  host: string;
  port: number;
}

/** The HTTP channel from a sidecar to its own app on loopback (keep-alive, streamed both ways). */
export class AppChannel {
  private readonly options: AppChannelOptions;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 10_000 });

  constructor(options: AppChannelOptions) {
    this.options = options;
  }

  get port(): number {
    return this.options.port;
  }

  /**
   * Starts a request to the app. The caller writes the body to the returned request and ends it; the promise
   * resolves with the response head as soon as it arrives, its body still streaming. When `signal` aborts before the
   * exchange is over, the request (and with it the response) is destroyed: one listener per call, removed at the end.
   */
  send(verb: string, pathAndQuery: string, headers: HeaderList, signal?: AbortSignal): { request: ClientRequest; response: Promise<IncomingMessage> } {
    return this.open(verb, pathAndQuery, headers, signal, this.agent);
  }

  /**
   * Sends a request whose body is whole and resolves with the response head. An app server closes idle keep-alive
   * connections on its own clock (Node's after 5 s); a request written just as that happens meets a reset before
   * the app read it. Such a call — reset on a reused connection before any answer — is sent once more on a new
   * connection. Any other failure, and any failure on a new connection, is the caller's.
   */
  async exchange(verb: string, pathAndQuery: string, headers: HeaderList, body: Buffer | undefined, signal?: AbortSignal): Promise<IncomingMessage> {
    const first = this.open(verb, pathAndQuery, headers, signal, this.agent);
    first.request.end(body);
    try {
      return await first.response;
    } catch (error) {
      if (signal?.aborted || !first.request.reusedSocket || !STALE_CONNECTION.has(((error as SkeinError).cause as NodeJS.ErrnoException | undefined)?.code ?? '')) throw error;
    }
    const again = this.open(verb, pathAndQuery, headers, signal, false);
    again.request.end(body);
    return again.response;
  }

  private open(verb: string, pathAndQuery: string, headers: HeaderList, signal: AbortSignal | undefined, agent: Agent | false): { request: ClientRequest; response: Promise<IncomingMessage> } {
    const request = httpRequest({
      host: this.options.host,
      port: this.options.port,
      method: verb,
      path: pathAndQuery,
      headers: headersObject(headers),
      agent,
    });
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      request.once('response', resolve);
      request.once('error', (error: NodeJS.ErrnoException) => {
        reject(
          new SkeinError('ERR_DIRECT_INVOKE_APP_UNAVAILABLE', `app ${this.options.appId} is not reachable at ${this.options.host}:${this.options.port}: ${error.code ?? error.message}`, { cause: error }),
        );
      });
    });
    if (signal) {
      const onAbort = (): void => void request.destroy();
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        request.once('close', () => signal.removeEventListener('abort', onAbort));
      }
    }
    return { request, response };
  }

  /** Resolves once the app accepts TCP connections; rejects when `signal` aborts first. */
  async waitUntilListening(signal: AbortSignal, intervalMs = 50): Promise<void> {
    while (!signal.aborted) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect({ host: this.options.host, port: this.options.port });
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (ok) return;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    throw new SkeinError('ERR_HEALTH_NOT_READY', `app ${this.options.appId} never listened on port ${this.options.port}`);
  }

  close(): void {
    this.agent.destroy();
  }
}
