/** Header handling shared by both sides of an invocation. Pure functions. */

/** Hop-by-hop headers (RFC 9110 §7.6.1) never cross a proxy hop. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);

/** Identity headers only the callee's sidecar may set, from the verified peer certificate. */
export const IDENTITY_HEADERS = ['dapr-caller-app-id', 'dapr-caller-namespace', 'dapr-callee-app-id'] as const;

/** Headers addressed to the sidecar itself, never forwarded. */
const SIDECAR_HEADERS = new Set(['dapr-app-id', 'dapr-api-token']);

/** A header list, order kept, names lower-cased. */
export type HeaderList = Array<[name: string, value: string]>;

/** Flattens Node's raw header array into a list, dropping hop-by-hop headers and any named in `connection`. */
export function forwardableHeaders(rawHeaders: string[]): HeaderList {
  const list: HeaderList = [];
  const named = new Set<string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (name === 'connection') for (const token of (rawHeaders[i + 1] as string).split(',')) named.add(token.trim().toLowerCase());
  }
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(name) || named.has(name)) continue;
    list.push([name, rawHeaders[i + 1] as string]);
  }
  return list;
}

/** What the callee's sidecar sends its app: the caller's headers minus identity and sidecar headers, plus stamped identity. */
export function stampIdentity(
  headers: HeaderList,
  identity: { callerAppId: string; callerNamespace: string; calleeAppId: string },
  appApiToken: string | undefined,
): HeaderList {
  const out: HeaderList = headers.filter(([name]) => !SIDECAR_HEADERS.has(name) && !(IDENTITY_HEADERS as readonly string[]).includes(name));
  out.push(['dapr-caller-app-id', identity.callerAppId], ['dapr-caller-namespace', identity.callerNamespace], ['dapr-callee-app-id', identity.calleeAppId]);
  if (appApiToken) out.push(['dapr-api-token', appApiToken]);
  return out;
}

/** Converts a header list to the object form Node's `http.request` and `writeHead` accept (repeats become arrays). */
export function headersObject(list: HeaderList): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of list) {
    const existing = out[name];
    if (existing === undefined) out[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[name] = [existing, value];
  }
  return out;
}
