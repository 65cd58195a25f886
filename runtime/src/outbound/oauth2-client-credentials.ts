/**
 * `middleware.http.oauth2clientcredentials`, on the caller's side: gets an access token with the OAuth2
 * client-credentials grant (RFC 6749 §4.4), keeps it until shortly before it expires, refreshes it with one fetch
 * however many calls wait, and sends it to HTTPEndpoints in the configured header. Dapr's metadata: `clientId`,
 * `clientSecret`, `tokenURL`, `scopes`, `headerName` (default `Authorization`), `endpointParamsQuery`,
 * `authStyle` (0 auto-detect, 1 in the body, 2 HTTP Basic) and `pathFilter`.
 *
 * The client secret and every token are registered with the logger, so neither can reach a log line; errors name
 * the component and the token endpoint's address, never a secret or what the token endpoint answered.
 */
import { ConfigError, SkeinError, logger, registerSecretValue } from '@skein/core';
import { isTrustworthyUrl } from '../auth/jwks.js';
import type { ComponentResource } from '../config/types.js';
import { resolveNamedValue, type SecretStores } from '../secrets/secret-stores.js';
import type { Handler, Middleware, Call, CallResponse } from '../pipeline/pipeline.js';

const log = logger('oauth2');

/** The component type this module implements. */
export const OAUTH2_CLIENT_CREDENTIALS_TYPE = 'middleware.http.oauth2clientcredentials';

/** How the client authenticates to the token endpoint (Go's `oauth2.AuthStyle`, which Dapr exposes). */
export type AuthStyle = 'auto' | 'params' | 'header';

/** Validated, frozen settings of one component. */
export interface ClientCredentialsOptions {
  readonly component: string;
  readonly clientId: string;
  /** Secret: registered with the logger; never printed. */
  readonly clientSecret: string;
  readonly tokenUrl: URL;
  readonly scopes: readonly string[];
  /** Lower-cased header the token is sent in. */
  readonly headerName: string;
  /** Extra form parameters of the token request (`endpointParamsQuery`). */
  readonly endpointParams: ReadonlyArray<readonly [string, string]>;
  readonly authStyle: AuthStyle;
  /** Only calls whose path (`/` + method) matches get the token; undefined means every call to an HTTPEndpoint. */
  readonly pathFilter: RegExp | undefined;
  toJSON(): { component: string; tokenUrl: string };
}

const METADATA: Readonly<Record<string, string>> = Object.freeze({
  clientid: 'clientId',
  clientsecret: 'clientSecret',
  tokenurl: 'tokenURL',
  scopes: 'scopes',
  headername: 'headerName',
  endpointparamsquery: 'endpointParamsQuery',
  authstyle: 'authStyle',
  pathfilter: 'pathFilter',
});
const AUTH_STYLES: Readonly<Record<string, AuthStyle>> = Object.freeze({ '0': 'auto', '1': 'params', '2': 'header' });
/** Parameters the grant itself sets; Go's client refuses to let endpoint parameters replace them. */
const GRANT_PARAMS = new Set(['scope', 'client_id', 'client_secret']);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Reads a `middleware.http.oauth2clientcredentials` Component (validated against the Component schema) into frozen
 * options, resolving `secretKeyRef` and `envRef` values. Throws a ConfigError naming file, path and reason.
 */
export function compileClientCredentialsOptions(component: ComponentResource, file: string, stores: SecretStores, env?: Readonly<Record<string, string | undefined>>): ClientCredentialsOptions {
  if (component.spec.type !== OAUTH2_CLIENT_CREDENTIALS_TYPE) throw new ConfigError(file, '/spec/type', `expected ${OAUTH2_CLIENT_CREDENTIALS_TYPE}, not ${component.spec.type}`);
  if (component.spec.version !== 'v1') throw new ConfigError(file, '/spec/version', `${OAUTH2_CLIENT_CREDENTIALS_TYPE} has version v1 only`);
  const values = new Map<string, { value: string; at: string }>();
  (component.spec.metadata ?? []).forEach((item, index) => {
    const at = `/spec/metadata/${index}`;
    const key = METADATA[item.name.toLowerCase()];
    if (!key) throw new ConfigError(file, `${at}/name`, `unknown metadata "${item.name}" for ${OAUTH2_CLIENT_CREDENTIALS_TYPE} (known: ${Object.values(METADATA).join(', ')})`);
    if (values.has(key)) throw new ConfigError(file, `${at}/name`, `metadata "${key}" is set twice (${values.get(key)?.at})`);
    const value = resolveNamedValue(item, { file, path: at }, { stores, secretStore: component.auth?.secretStore, sensitive: key === 'clientSecret', ...(env ? { env } : {}) });
    values.set(key, { value: value.trim(), at });
  });
  const required = (key: string): { value: string; at: string } => {
    const found = values.get(key);
    if (!found || found.value === '') throw new ConfigError(file, '/spec/metadata', `missing required metadata "${key}"`);
    return found;
  };

  const clientId = required('clientId');
  const clientSecret = required('clientSecret');
  const tokenUrlText = required('tokenURL');
  let tokenUrl: URL;
  try {
    tokenUrl = new URL(tokenUrlText.value);
  } catch {
    throw new ConfigError(file, `${tokenUrlText.at}/value`, 'tokenURL must be an absolute URL');
  }
  // The client secret travels to this URL: never in the clear beyond this machine.
  if (!isTrustworthyUrl(tokenUrl)) throw new ConfigError(file, `${tokenUrlText.at}/value`, 'tokenURL must use https (plain http only to localhost): the client secret is sent to it');

  // Dapr splits on commas; its documentation says spaces. Either works here.
  const scopes = (values.get('scopes')?.value ?? '').split(/[\s,]+/).filter(Boolean);

  const headerText = values.get('headerName');
  const headerName = (headerText?.value || 'Authorization').toLowerCase();
  if (!HEADER_NAME.test(headerName)) throw new ConfigError(file, `${headerText?.at ?? '/spec/metadata'}/value`, `headerName "${headerName}" is not a valid HTTP header name`);

  const paramsText = values.get('endpointParamsQuery');
  const endpointParams: Array<readonly [string, string]> = [];
  for (const [name, value] of new URLSearchParams(paramsText?.value ?? '')) {
    if (GRANT_PARAMS.has(name)) throw new ConfigError(file, `${paramsText?.at ?? '/spec/metadata'}/value`, `endpointParamsQuery cannot set "${name}": the grant sets it`);
    endpointParams.push(Object.freeze([name, value] as const));
  }

  const styleText = values.get('authStyle');
  const authStyle = AUTH_STYLES[styleText?.value || '0'];
  if (!authStyle) throw new ConfigError(file, `${styleText?.at ?? '/spec/metadata'}/value`, 'authStyle must be 0 (auto-detect), 1 (client_id and client_secret in the body) or 2 (HTTP Basic)');

  const filterText = values.get('pathFilter');
  let pathFilter: RegExp | undefined;
  if (filterText && filterText.value !== '') {
    try {
      pathFilter = new RegExp(filterText.value);
    } catch (error) {
      throw new ConfigError(file, `${filterText.at}/value`, `pathFilter is not a valid regular expression: ${(error as Error).message}`);
    }
  }

  const componentName = component.metadata.name;
  return Object.freeze({
    component: componentName,
    clientId: clientId.value,
    clientSecret: clientSecret.value,
    tokenUrl,
    scopes: Object.freeze(scopes),
    headerName,
    endpointParams: Object.freeze(endpointParams),
    authStyle,
    pathFilter,
    toJSON: () => ({ component: componentName, tokenUrl: printable(tokenUrl) }),
  });
}

/** Scheme, host and path of a URL: its query may carry credentials. */
function printable(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** A token as the endpoint issued it. */
export interface IssuedToken {
  readonly accessToken: string;
  /** Normalised as Go's client does: `Bearer`, `MAC`, `Basic`, or as sent. */
  readonly tokenType: string;
  /** Lifetime the server announced; undefined when it said nothing. */
  readonly expiresInMs: number | undefined;
}

/**
 * Parses a token response body (JSON, or the form encoding some providers still send). Returns the reason it is
 * not a token response as a string, which never quotes the body: it may echo credentials.
 */
export function parseTokenResponse(contentType: string, body: string): IssuedToken | string {
  let fields: Record<string, unknown>;
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/x-www-form-urlencoded' || type === 'text/plain') {
    fields = Object.fromEntries(new URLSearchParams(body));
  } else {
    try {
      const parsed: unknown = JSON.parse(body);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return 'the answer is not a JSON object';
      fields = parsed as Record<string, unknown>;
    } catch {
      return 'the answer is not JSON';
    }
  }
  const accessToken = fields['access_token'];
  if (typeof accessToken !== 'string' || accessToken === '') return 'the answer has no access_token';
  // The token goes into a header: anything that could end the header line is refused.
  if (!/^[\x21-\x7e]+$/.test(accessToken)) return 'the access_token holds characters a header cannot carry';
  const rawType = fields['token_type'];
  if (rawType !== undefined && (typeof rawType !== 'string' || !/^[\x21-\x7e]*$/.test(rawType))) return 'the token_type is not a word';
  const rawExpiry = fields['expires_in'];
  let expiresInMs: number | undefined;
  if (rawExpiry !== undefined && rawExpiry !== '' && rawExpiry !== null) {
    const seconds = typeof rawExpiry === 'number' ? rawExpiry : typeof rawExpiry === 'string' ? Number(rawExpiry) : Number.NaN;
    if (!Number.isFinite(seconds) || seconds < 0) return 'the expires_in is not a number of seconds';
    expiresInMs = seconds * 1000;
  }
  return Object.freeze({ accessToken, tokenType: normaliseTokenType(typeof rawType === 'string' ? rawType : ''), expiresInMs });
}

function normaliseTokenType(type: string): string {
  const lower = type.toLowerCase();
  if (lower === '' || lower === 'bearer') return 'Bearer';
  if (lower === 'mac') return 'MAC';
  if (lower === 'basic') return 'Basic';
  return type;
}

/** How long a token without `expires_in` is used before it is fetched again. */
export const DEFAULT_TOKEN_LIFETIME_MS = 60 * 60_000;
/** Most a token is refreshed ahead of its expiry (Go's client uses the same 10 s). */
const MAX_REFRESH_MARGIN_MS = 10_000;

/**
 * When a token obtained at `obtainedAt` stops being handed out and a new one is fetched: 10 s before it expires,
 * or a fifth of its life before for short-lived tokens, so a token is never sent just as it lapses. Pure.
 */
export function refreshAt(obtainedAt: number, expiresInMs: number | undefined): number {
  const lifetime = expiresInMs ?? DEFAULT_TOKEN_LIFETIME_MS;
  return obtainedAt + lifetime - Math.min(MAX_REFRESH_MARGIN_MS, lifetime / 5);
}

/** The form body and headers of a token request in one auth style. Pure. */
export function tokenRequest(options: ClientCredentialsOptions, style: 'params' | 'header'): { body: string; headers: Record<string, string> } {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (options.scopes.length > 0) form.set('scope', options.scopes.join(' '));
  // Go's client lets endpoint parameters replace grant_type only; the others were refused at load.
  for (const [name, value] of options.endpointParams) form.set(name, value);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (style === 'params') {
    form.set('client_id', options.clientId);
    form.set('client_secret', options.clientSecret);
  } else {
    // RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
    const encode = (text: string): string => new URLSearchParams({ v: text }).toString().slice(2);
    headers['authorization'] = `Basic ${Buffer.from(`${encode(options.clientId)}:${encode(options.clientSecret)}`).toString('base64')}`;
  }
  return { body: form.toString(), headers };
}

/** What a token source needs from the world; tests replace them. */
export interface TokenSourceDependencies {
  fetch?: typeof fetch;
  now?: () => number;
  /** Time allowed for one token request. */
  timeoutMs?: number;
}

interface HeldToken {
  readonly header: string;
  readonly refreshAt: number;
  /** Past this the token is not sent even when a refresh failed. */
  readonly expiresAt: number;
  used: boolean;
  readonly forget: () => void;
}

const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;

/**
 * The token of one component: fetched on first use, reused until `refreshAt`, refreshed ahead of time while it is
 * being used, and fetched once for any number of concurrent callers.
 */
export class ClientCredentialsTokenSource {
  readonly options: ClientCredentialsOptions;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private held: HeldToken | undefined;
  private inflight: Promise<HeldToken> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Settled by auto-detection: the style that worked. */
  private style: AuthStyle;
  /** Token requests sent (each auth style tried counts). */
  fetchCount = 0;

  constructor(options: ClientCredentialsOptions, dependencies: TokenSourceDependencies = {}) {
    this.options = options;
    this.fetchImpl = dependencies.fetch ?? fetch;
    this.now = dependencies.now ?? Date.now;
    this.timeoutMs = dependencies.timeoutMs ?? 10_000;
    this.style = options.authStyle;
  }

  /** The header value to send (`Bearer <token>`). Throws ERR_OAUTH2_TOKEN_UNAVAILABLE when no token can be had. */
  async headerValue(): Promise<string> {
    const held = this.held;
    if (held && this.now() < held.refreshAt) {
      held.used = true;
      return held.header;
    }
    try {
      const fresh = await this.refresh();
      fresh.used = true;
      return fresh.header;
    } catch (error) {
      // A token past its refresh time but not yet expired still serves while the endpoint is failing.
      const current = this.held;
      if (current && this.now() < current.expiresAt) {
        current.used = true;
        return current.header;
      }
      throw error;
    }
  }

  /** Fetches a new token, joining a fetch already under way. */
  private refresh(): Promise<HeldToken> {
    if (this.inflight) return this.inflight;
    const pending = this.fetchToken().finally(() => {
      if (this.inflight === pending) this.inflight = undefined;
    });
    this.inflight = pending;
    return pending;
  }

  /** Stops refreshing; tokens are forgotten. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.held?.forget();
    this.held = undefined;
  }

  private async fetchToken(): Promise<HeldToken> {
    const started = this.now();
    let token: IssuedToken;
    try {
      token = await this.requestToken();
    } catch (error) {
      log.warn('token request failed', { component: this.options.component, reason: (error as Error).message });
      throw error;
    }
    const header = `${token.tokenType} ${token.accessToken}`;
    const forgetToken = registerSecretValue(token.accessToken);
    const held: HeldToken = {
      header,
      refreshAt: refreshAt(started, token.expiresInMs),
      expiresAt: started + (token.expiresInMs ?? DEFAULT_TOKEN_LIFETIME_MS),
      used: false,
      forget: forgetToken,
    };
    const previous = this.held;
    this.held = held;
    // The old token may still be on its way in a request that is being logged; forget it a little later.
    if (previous) setTimeout(previous.forget, 60_000).unref();
    log.debug('token acquired', { component: this.options.component, expiresInMs: token.expiresInMs ?? null });
    this.schedule(held);
    return held;
  }

  /** Refreshes ahead of time, but only a token that was used: an idle endpoint costs no token requests. */
  private schedule(held: HeldToken): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.closed) return;
    this.timer = setTimeout(() => {
      if (this.held !== held || !held.used || this.closed) return;
      // Already logged; the current token serves until it expires, and the next call tries again.
      this.refresh().catch(() => undefined);
    }, Math.max(0, held.refreshAt - this.now()));
    this.timer.unref();
  }

  private async requestToken(): Promise<IssuedToken> {
    if (this.style !== 'auto') return this.attempt(this.style);
    // Go's auto-detection: HTTP Basic first, then the body, and remember what worked.
    try {
      const token = await this.attempt('header');
      this.style = 'header';
      return token;
    } catch (error) {
      if (!(error instanceof TokenRefused)) throw error;
      const token = await this.attempt('params');
      this.style = 'params';
      return token;
    }
  }

  private async attempt(style: 'params' | 'header'): Promise<IssuedToken> {
    const { options } = this;
    const where = `the ${OAUTH2_CLIENT_CREDENTIALS_TYPE} component "${options.component}" could not get a token from ${printable(options.tokenUrl)}`;
    const { body, headers } = tokenRequest(options, style);
    this.fetchCount += 1;
    let response: Response;
    try {
      response = await this.fetchImpl(options.tokenUrl, { method: 'POST', headers, body, redirect: 'error', signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      throw new SkeinError('ERR_OAUTH2_TOKEN_UNAVAILABLE', `${where}: the token endpoint is unreachable (${networkReason(error)})`);
    }
    const text = await readLimited(response).catch(() => undefined);
    if (response.status === 400 || response.status === 401) throw new TokenRefused(`${where}: the token endpoint refused the client credentials (HTTP ${response.status})`);
    if (response.status < 200 || response.status > 299) throw new SkeinError('ERR_OAUTH2_TOKEN_UNAVAILABLE', `${where}: the token endpoint answered HTTP ${response.status}`);
    if (text === undefined) throw new SkeinError('ERR_OAUTH2_TOKEN_UNAVAILABLE', `${where}: the token response is larger than ${MAX_TOKEN_RESPONSE_BYTES} bytes or was cut off`);
    const parsed = parseTokenResponse(response.headers.get('content-type') ?? '', text);
    if (typeof parsed === 'string') throw new SkeinError('ERR_OAUTH2_TOKEN_UNAVAILABLE', `${where}: ${parsed}`);
    return parsed;
  }
}

/** The token endpoint answered 400 or 401: with auto-detection, the other auth style is tried. */
class TokenRefused extends SkeinError {
  constructor(message: string) {
    super('ERR_OAUTH2_TOKEN_UNAVAILABLE', message);
  }
}

async function readLimited(response: Response): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > MAX_TOKEN_RESPONSE_BYTES) {
    await response.body?.cancel();
    throw new Error('too large');
  }
  const buffer = Buffer.from(await response.arrayBuffer());
  if (buffer.length > MAX_TOKEN_RESPONSE_BYTES) throw new Error('too large');
  return buffer.toString('utf8');
}

/** A network failure's code (ECONNREFUSED, a timeout), not its message: that may quote the URL's query. */
function networkReason(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'timed out';
  const cause = (error as { cause?: { code?: unknown } }).cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  return 'network error';
}

/**
 * The outbound stage: puts the component's token in its header on calls to HTTPEndpoints (matching `pathFilter`),
 * replacing whatever the app sent under that name. Calls within the mesh are left alone: they are authenticated
 * by mTLS, and a token minted for an outside service must not reach every app the caller talks to.
 */
export class ClientCredentialsMiddleware implements Middleware {
  readonly name: string;
  private readonly source: ClientCredentialsTokenSource;
  private readonly leavesMesh: (request: Call) => boolean;

  constructor(source: ClientCredentialsTokenSource, leavesMesh: (request: Call) => boolean) {
    this.source = source;
    this.leavesMesh = leavesMesh;
    this.name = `oauth2clientcredentials:${source.options.component}`;
  }

  async handle(request: Call, next: Handler): Promise<CallResponse> {
    const { headerName, pathFilter } = this.source.options;
    if (!this.leavesMesh(request) || (pathFilter && !pathFilter.test(`/${request.method}`))) return next(request);
    const value = await this.source.headerValue();
    request.headers = [...request.headers.filter(([name]) => name !== headerName), [headerName, value]];
    return next(request);
  }
}
