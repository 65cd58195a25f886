/**
 * A `fetch` whose response headers must arrive within a bound (5 s for MCPServers): a server that accepts the
 * connection and then says nothing fails fast. Once the headers are in, the body (an SSE stream) is not bounded.
 */

/** Time allowed until the response headers of every request to an MCPServer arrive. */
export const FIRST_BYTE_TIMEOUT_MS = 5_000;

/** A request whose response headers did not arrive in time. */
export class FirstByteTimeoutError extends Error {
  override readonly name = 'FirstByteTimeoutError';
}

/** Wraps `base` so that each request is aborted when its response headers take longer than `timeoutMs`. */
export function firstByteTimeoutFetch(base: typeof fetch, timeoutMs = FIRST_BYTE_TIMEOUT_MS): (url: string | URL, init?: RequestInit) => Promise<Response> {
  return async (url, init) => {
    const controller = new AbortController();
    const outer = init?.signal;
    if (outer?.aborted) controller.abort(outer.reason);
    else outer?.addEventListener('abort', () => controller.abort(outer.reason), { once: true });
    const timer = setTimeout(() => controller.abort(new FirstByteTimeoutError(`no response headers from ${String(url)} within ${timeoutMs} ms`)), timeoutMs);
    try {
      return await base(url, { ...init, signal: controller.signal });
    } catch (error) {
      const reason: unknown = controller.signal.reason;
      throw reason instanceof FirstByteTimeoutError ? reason : error;
    } finally {
      clearTimeout(timer);
    }
  };
}
