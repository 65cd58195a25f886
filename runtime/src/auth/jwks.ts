/**
 * A remote JSON Web Key Set, cached for the bearer validator. Keys are fetched once and shared by every concurrent
 * caller; they are refreshed in the background when older than `maxAgeMs` while the old keys keep serving (so a
 * JWKS outage does not fail tokens the cached keys can verify); an unknown `kid` causes at most one refetch per
 * `cooldownMs`, and a failed fetch is not retried before then either, so neither forged `kid`s nor an unreachable
 * endpoint can turn traffic into a fetch storm. Without a configured URL the JWKS location is discovered from the
 * issuer's OpenID configuration, whose `issuer` must equal the expected one.
 */
import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';

/** The JWKS could not be had: never fetched successfully, and the last attempt failed or timed out. */
export class JwksUnavailableError extends Error {
  override readonly name = 'JwksUnavailableError';
}

/** The token names a key (`kid`) the issuer's key set does not have, even after a refetch. */
export class UnknownKeyError extends Error {
  override readonly name = 'UnknownKeyError';
}

/** Where keys come from, and how patiently. */
export interface JwksSource {
  /** The JWKS URL; undefined to discover it from `${issuer}/.well-known/openid-configuration`. */
  readonly jwksUrl: URL | undefined;
  readonly issuer: string;
  /** One fetch may take this long before it counts as failed. */
  readonly timeoutMs: number;
  /** Keys older than this are refreshed in the background. */
  readonly maxAgeMs: number;
  /** Least time between two fetches caused by unknown `kid`s or failures. */
  readonly cooldownMs: number;
  /** Largest JWKS or discovery document accepted, in bytes. */
  readonly maxBytes: number;
}

/** What the cache needs from the outside world; tests replace the clock. */
export interface JwksDependencies {
  fetch?: typeof fetch;
  now?: () => number;
}

type KeyGetter = ReturnType<typeof createLocalJWKSet>;
/** A key resolved for one token, as jose's key getters return it. */
export type ResolvedKey = Awaited<ReturnType<KeyGetter>>;

/** True for an https URL, or http to this machine (development identity providers). */
export function isTrustworthyUrl(url: URL): boolean {
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

/** The cache of one issuer's key set. */
export class JwksCache {
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private keys: KeyGetter | undefined;
  private fetchedAt = 0;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  private lastError: string | undefined;
  private inflight: Promise<void> | undefined;
  private resolvedUrl: URL | undefined;
  private fetches = 0;
  private keySetGeneration = 0;
  private keySetText: string | undefined;

  constructor(
    private readonly source: JwksSource,
    dependencies: JwksDependencies = {},
  ) {
    this.fetchImpl = dependencies.fetch ?? fetch;
    this.now = dependencies.now ?? Date.now;
    this.resolvedUrl = source.jwksUrl;
  }

  /** How many fetches of the key set (not of the discovery document) were started; for tests and metrics. */
  get fetchCount(): number {
    return this.fetches;
  }

  /** Fetches the keys now (sharing a fetch already under way); resolves even when the fetch fails. */
  refresh(): Promise<void> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** The key for a token header: jose's key-getter contract, with unknown `kid` and outage turned into our errors. */
  async getKey(header: JWSHeaderParameters): Promise<ResolvedKey> {
    return (await this.keyFor(header)).key;
  }

  /**
   * The key for a token header and the generation of the key set it came from: a result verified with it holds
   * for as long as `generation` stays the same.
   */
  async keyFor(header: JWSHeaderParameters): Promise<{ key: ResolvedKey; generation: number }> {
    if (!this.keys) {
      // Join a fetch under way; start one unless the last attempt failed too recently.
      if (this.inflight) await this.inflight;
      else if (!this.coolingDown()) await this.refresh();
      if (!this.keys) throw new JwksUnavailableError(this.unavailableReason());
    } else {
      this.refreshIfStale();
    }
    try {
      return await this.resolve(this.keys, header);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;
    }
    // The issuer may have rotated keys since the last fetch: look once more, unless we just did.
    if (this.inflight) await this.inflight;
    else if (!this.coolingDown()) await this.refresh();
    try {
      return await this.resolve(this.keys, header);
    } catch (error) {
      if (error instanceof joseErrors.JWKSNoMatchingKey) throw new UnknownKeyError(`no key${header.kid === undefined ? '' : ` with kid "${header.kid}"`} for ${header.alg ?? 'this algorithm'} in the issuer's key set`);
      throw error;
    }
  }

  /** Starts a background refresh when the keys are older than the refresh interval (and no cooldown holds). */
  refreshIfStale(): void {
    if (this.keys && this.now() - this.fetchedAt > this.source.maxAgeMs && !this.coolingDown()) void this.refresh();
  }

  /**
   * Changes whenever the published key set does (a refresh that fetches the same keys leaves it alone): a token
   * verified under one generation is re-verified under the next, so a key the issuer withdraws stops working.
   */
  get generation(): number {
    return this.keySetGeneration;
  }

  private async resolve(keys: KeyGetter, header: JWSHeaderParameters): Promise<{ key: ResolvedKey; generation: number }> {
    const generation = this.keySetGeneration;
    return { key: await keys(header), generation };
  }

  private coolingDown(): boolean {
    return this.now() - this.lastAttemptAt < this.source.cooldownMs;
  }

  private unavailableReason(): string {
    return `the issuer's key set could not be fetched${this.lastError ? ` (${this.lastError})` : ''}`;
  }

  private async load(): Promise<void> {
    this.lastAttemptAt = this.now();
    try {
      const url = this.resolvedUrl ?? (await this.discover());
      this.resolvedUrl = url;
      this.fetches += 1;
      const document = await this.getJson(url, 'JWKS');
      const keys = createLocalJWKSet(document as JSONWebKeySet);
      const text = JSON.stringify(document);
      if (text !== this.keySetText) {
        this.keySetText = text;
        this.keySetGeneration += 1;
      }
      this.keys = keys;
      this.fetchedAt = this.now();
      this.lastError = undefined;
    } catch (error) {
      this.lastError = error instanceof Error ? error.message : String(error);
    }
  }

  private async discover(): Promise<URL> {
    const base = this.source.issuer.replace(/\/+$/, '');
    const document = await this.getJson(new URL(`${base}/.well-known/openid-configuration`), 'OpenID configuration');
    const record = typeof document === 'object' && document !== null ? (document as Record<string, unknown>) : {};
    if (record['issuer'] !== this.source.issuer) {
      throw new Error(`the OpenID configuration names issuer ${JSON.stringify(record['issuer'])}, not ${JSON.stringify(this.source.issuer)}`);
    }
    const jwksUri = record['jwks_uri'];
    if (typeof jwksUri !== 'string') throw new Error('the OpenID configuration has no jwks_uri');
    let url: URL;
    try {
      url = new URL(jwksUri);
    } catch {
      throw new Error(`the OpenID configuration's jwks_uri ${JSON.stringify(jwksUri)} is not a URL`);
    }
    if (!isTrustworthyUrl(url)) throw new Error(`the OpenID configuration's jwks_uri ${url.href} is neither https nor local`);
    return url;
  }

  private async getJson(url: URL, what: string): Promise<unknown> {
    let response: Response;
    try {
      response = await this.fetchImpl(url, { signal: AbortSignal.timeout(this.source.timeoutMs), redirect: 'error', headers: { accept: 'application/json' } });
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      throw new Error(timedOut ? `${what} at ${url.href} did not answer within ${this.source.timeoutMs} ms` : `${what} at ${url.href} is unreachable`);
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      throw new Error(`${what} at ${url.href} answered HTTP ${response.status}`);
    }
    const text = await readLimited(response, this.source.maxBytes, `${what} at ${url.href}`, this.source.timeoutMs);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new Error(`${what} at ${url.href} is not JSON`);
    }
  }
}

async function readLimited(response: Response, maxBytes: number, what: string, timeoutMs: number): Promise<string> {
  const reader: ReadableStreamDefaultReader<Uint8Array> | undefined = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const deadline = setTimeout(() => void reader.cancel().catch(() => undefined), timeoutMs);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new Error(`${what} is larger than ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
  } finally {
    clearTimeout(deadline);
  }
  return Buffer.concat(chunks).toString('utf8');
}
