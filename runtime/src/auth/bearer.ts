/**
 * `middleware.http.bearer`: validates the bearer JWT of a request against an issuer's key set, as Dapr's component
 * does (metadata `issuer`, `audience`, `jwksURL` or OIDC discovery from the issuer), with jose.
 *
 * Checks, in order: a `Bearer` token is present and well formed; its `alg` is on the allow-list (asymmetric only:
 * never `none`, never HMAC, which would let anyone holding the public key mint tokens); the signature verifies
 * with the issuer's key for its `kid`; `iss` and `aud` match; `exp` is present and, like `nbf`, holds within a small
 * clock skew. Every failure has its own kind and answers 401 (Dapr's answer), with an RFC 6750 challenge.
 */
import { hash } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { ConfigError, SkeinError, type ErrorCode, parseDuration, decision, type Decision } from '@skein/core';
import type { ComponentResource } from '../config/types.js';
import { deepFreeze } from '../config/validate.js';
import { isTrustworthyUrl, JwksCache, JwksUnavailableError, UnknownKeyError, type JwksDependencies, type ResolvedKey } from './jwks.js';

/** The component type this module implements. */
export const BEARER_COMPONENT_TYPE = 'middleware.http.bearer';

/** Signature algorithms accepted unless the component narrows them: every asymmetric JWS algorithm. */
export const ASYMMETRIC_ALGORITHMS = Object.freeze(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);

/** Validated, frozen settings of one bearer component. */
export interface BearerOptions {
  /** The component's name; decisions report it as their rule. */
  readonly component: string;
  readonly issuer: string;
  readonly audience: string;
  /** Undefined: discovered from the issuer's OpenID configuration. */
  readonly jwksUrl: URL | undefined;
  readonly algorithms: readonly string[];
  readonly clockSkewSeconds: number;
  /** Time allowed for one JWKS (or discovery) fetch. */
  readonly fetchTimeoutMs: number;
  /** Keys older than this are refreshed in the background. */
  readonly jwksMaxAgeMs: number;
  /** Least time between refetches caused by unknown `kid`s or failed fetches. */
  readonly jwksCooldownMs: number;
}

/** Metadata names, lower-cased (Dapr decodes metadata case-insensitively), with Dapr's aliases. */
const METADATA: Readonly<Record<string, keyof typeof DEFAULTS | 'issuer' | 'audience' | 'jwksURL'>> = Object.freeze({
  issuer: 'issuer',
  issuerurl: 'issuer',
  audience: 'audience',
  clientid: 'audience',
  jwksurl: 'jwksURL',
  allowedalgorithms: 'allowedAlgorithms',
  clockskew: 'clockSkew',
  jwksrefreshinterval: 'jwksRefreshInterval',
  jwkscooldown: 'jwksCooldown',
  jwkstimeout: 'jwksTimeout',
});

const DEFAULTS = Object.freeze({ allowedAlgorithms: '', clockSkew: '60s', jwksRefreshInterval: '10m', jwksCooldown: '30s', jwksTimeout: '5s' });
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/** How a metadata value held in a secret store or the environment is read; the sidecar supplies it. */
export interface MetadataSources {
  /** Resolves a `secretKeyRef`; undefined when the secret does not exist. */
  secret?: (ref: { store: string | undefined; name: string; key: string }) => string | undefined;
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Reads a `middleware.http.bearer` Component (already validated against the Component schema) into frozen options.
 * Throws ConfigError naming file, path and reason: another component type, unknown or repeated metadata, a
 * missing `issuer` or `audience`, an untrustworthy `jwksURL`, a disallowed algorithm, a bad duration.
 */
export function compileBearerOptions(component: ComponentResource, file: string, sources: MetadataSources = {}): BearerOptions {
  if (component.spec.type !== BEARER_COMPONENT_TYPE) throw new ConfigError(file, '/spec/type', `expected ${BEARER_COMPONENT_TYPE}, not ${component.spec.type}`);
  if (component.spec.version !== 'v1') throw new ConfigError(file, '/spec/version', `${BEARER_COMPONENT_TYPE} has version v1 only`);
  const values = new Map<string, { value: string; at: string }>();
  (component.spec.metadata ?? []).forEach((item, index) => {
    const at = `/spec/metadata/${index}`;
    const key = METADATA[item.name.toLowerCase()];
    if (!key) throw new ConfigError(file, `${at}/name`, `unknown metadata "${item.name}" for ${BEARER_COMPONENT_TYPE} (known: issuer, audience, jwksURL, allowedAlgorithms, clockSkew, jwksRefreshInterval, jwksCooldown, jwksTimeout)`);
    if (values.has(key)) throw new ConfigError(file, `${at}/name`, `metadata "${key}" is set twice (${values.get(key)?.at})`);
    values.set(key, { value: metadataValue(item, component, file, at, sources), at });
  });
  const read = (key: string): { value: string; at: string } | undefined => {
    const found = values.get(key);
    return found && found.value.trim() !== '' ? { value: found.value.trim(), at: found.at } : undefined;
  };

  const issuer = read('issuer');
  if (!issuer) throw new ConfigError(file, '/spec/metadata', 'missing required metadata "issuer"');
  const audience = read('audience');
  if (!audience) throw new ConfigError(file, '/spec/metadata', 'missing required metadata "audience"');
  const jwks = read('jwksURL');
  let jwksUrl: URL | undefined;
  if (jwks) {
    jwksUrl = trustworthyUrl(jwks.value, file, `${jwks.at}/value`, 'jwksURL');
  } else {
    trustworthyUrl(issuer.value, file, `${issuer.at}/value`, 'issuer (no jwksURL is set, so the keys are discovered from it)');
  }

  const algorithmsText = read('allowedAlgorithms');
  let algorithms: readonly string[] = ASYMMETRIC_ALGORITHMS;
  if (algorithmsText) {
    algorithms = algorithmsText.value.split(',').map((algorithm) => algorithm.trim()).filter(Boolean);
    for (const algorithm of algorithms) {
      if (ASYMMETRIC_ALGORITHMS.includes(algorithm)) continue;
      const why = algorithm.toLowerCase() === 'none'
        ? '"none" means an unsigned token and is never accepted'
        : /^HS/i.test(algorithm)
          ? `${algorithm} is an HMAC algorithm: a verifier holding a public key would accept tokens anyone can sign`
          : `${algorithm} is not a JWS signature algorithm Skein accepts (${ASYMMETRIC_ALGORITHMS.join(', ')})`;
      throw new ConfigError(file, `${algorithmsText.at}/value`, why);
    }
    if (algorithms.length === 0) throw new ConfigError(file, `${algorithmsText.at}/value`, 'allowedAlgorithms names no algorithm');
  }

  const duration = (key: keyof typeof DEFAULTS, max?: number): number => {
    const found = read(key);
    let ms: number;
    try {
      ms = parseDuration(found?.value ?? DEFAULTS[key]);
    } catch (error) {
      throw new ConfigError(file, `${found?.at ?? '/spec/metadata'}/value`, (error as Error).message);
    }
    if (max !== undefined && ms > max) throw new ConfigError(file, `${found?.at ?? '/spec/metadata'}/value`, `${key} may be at most ${max / 1000}s`);
    return ms;
  };

  return Object.freeze({
    component: component.metadata.name,
    issuer: issuer.value,
    audience: audience.value,
    jwksUrl,
    algorithms: Object.freeze([...algorithms]),
    clockSkewSeconds: Math.round(duration('clockSkew', MAX_CLOCK_SKEW_MS) / 1000),
    fetchTimeoutMs: duration('jwksTimeout', 60_000),
    jwksMaxAgeMs: duration('jwksRefreshInterval'),
    jwksCooldownMs: duration('jwksCooldown'),
  });
}

function metadataValue(item: NonNullable<ComponentResource['spec']['metadata']>[number], component: ComponentResource, file: string, at: string, sources: MetadataSources): string {
  if (item.value !== undefined) return String(item.value);
  if (item.envRef !== undefined) {
    const value = (sources.env ?? process.env)[item.envRef];
    if (value === undefined) throw new ConfigError(file, `${at}/envRef`, `environment variable ${item.envRef} is not set`);
    return value;
  }
  if (item.secretKeyRef !== undefined) {
    if (!sources.secret) throw new ConfigError(file, `${at}/secretKeyRef`, 'no secret store is available to resolve this reference');
    const value = sources.secret({ store: component.auth?.secretStore, name: item.secretKeyRef.name, key: item.secretKeyRef.key ?? item.secretKeyRef.name });
    if (value === undefined) throw new ConfigError(file, `${at}/secretKeyRef`, `secret "${item.secretKeyRef.name}" has no key "${item.secretKeyRef.key ?? item.secretKeyRef.name}"`);
    return value;
  }
  throw new ConfigError(file, at, 'a metadata entry needs value, envRef or secretKeyRef');
}

function trustworthyUrl(text: string, file: string, path: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(file, path, `${what} must be an absolute URL`);
  }
  if (!isTrustworthyUrl(url)) throw new ConfigError(file, path, `${what} must use https (plain http only to localhost): keys fetched in the clear could be replaced`);
  return url;
}

/** Why a token was refused. */
export type BearerFailure =
  | 'missing'
  | 'malformed'
  | 'disallowed-algorithm'
  | 'unknown-kid'
  | 'bad-signature'
  | 'bad-issuer'
  | 'bad-audience'
  | 'expired'
  | 'not-yet-valid'
  | 'jwks-unavailable';

/** The outcome of validating one request's token. */
export type BearerResult =
  | { readonly ok: true; readonly claims: Readonly<JWTPayload>; readonly decision: Decision }
  | {
      readonly ok: false;
      readonly failure: BearerFailure;
      /** 401 `ERR_UNAUTHENTICATED` (or `ERR_JWKS_UNAVAILABLE`); its message is the decision's reason. */
      readonly error: SkeinError;
      readonly decision: Decision;
      /** RFC 6750 `WWW-Authenticate` value; add `resource_metadata` with `bearerChallenge` for MCP servers. */
      readonly wwwAuthenticate: string;
    };

/** Who and what the token is presented for; only reported in the decision. */
export interface BearerContext {
  caller?: string;
  target?: string;
  method?: string;
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_TOKEN_LENGTH = 16 * 1024;
/** Tokens whose verification is remembered per component; the oldest is forgotten first. */
const MAX_VERIFIED_TOKENS = 10_000;

/** A token that verified: what a later request presenting the same token is answered with, while it holds. */
interface VerifiedToken {
  readonly claims: Readonly<JWTPayload>;
  readonly reason: string;
  /** `exp` and `nbf` in seconds (`nbf` -Infinity when absent). */
  readonly exp: number;
  readonly nbf: number;
  /** The key set generation the signature was checked against. */
  readonly generation: number;
}

/**
 * Verified tokens by SHA-256 of the token (a token is up to 16 KiB; its digest is 43 characters). An entry answers
 * only while the token's `exp`/`nbf` hold within the clock skew and the issuer's key set is the one it was checked
 * against; signature, `iss`, `aud` and the algorithm are properties of the token and the component, checked once.
 */
class VerifiedTokens {
  private readonly entries = new Map<string, VerifiedToken>();

  static keyOf(token: string): string {
    return hash('sha256', token, 'base64url');
  }

  get(key: string, generation: number, nowSeconds: number, skewSeconds: number): VerifiedToken | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    // The same tests jose makes: expired once exp <= now - skew, early while nbf > now + skew.
    if (entry.generation !== generation || entry.exp <= nowSeconds - skewSeconds || entry.nbf > nowSeconds + skewSeconds) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  set(key: string, entry: VerifiedToken): void {
    if (this.entries.size >= MAX_VERIFIED_TOKENS) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, entry);
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Validates bearer tokens for one component; holds its JWKS cache. Create once per component. */
export class BearerValidator {
  private readonly jwks: JwksCache;
  private readonly now: () => number;
  private readonly verified = new VerifiedTokens();
  private signatureChecks = 0;

  constructor(
    readonly options: BearerOptions,
    dependencies: JwksDependencies = {},
  ) {
    this.now = dependencies.now ?? Date.now;
    this.jwks = new JwksCache(
      { jwksUrl: options.jwksUrl, issuer: options.issuer, timeoutMs: options.fetchTimeoutMs, maxAgeMs: options.jwksMaxAgeMs, cooldownMs: options.jwksCooldownMs, maxBytes: 512 * 1024 },
      dependencies,
    );
  }

  /** Fetches the issuer's keys ahead of the first request, as Dapr does when the component starts. */
  warmUp(): Promise<void> {
    return this.jwks.refresh();
  }

  /** How many tokens had their signature checked (a remembered token is not checked again); for tests and metrics. */
  get signaturesChecked(): number {
    return this.signatureChecks;
  }

  /** How many verified tokens are remembered (at most 10,000). */
  get verifiedTokens(): number {
    return this.verified.size;
  }

  /** How many times the key set was fetched. */
  get jwksFetches(): number {
    return this.jwks.fetchCount;
  }

  /** Validates the `Authorization` header of one request. Never throws for a bad token; the result says why. */
  async validate(authorization: string | readonly string[] | undefined, context: BearerContext = {}): Promise<BearerResult> {
    const refuse = (failure: BearerFailure, reason: string): BearerResult => {
      const code: ErrorCode = failure === 'jwks-unavailable' ? 'ERR_JWKS_UNAVAILABLE' : 'ERR_UNAUTHENTICATED';
      const made = this.decide(false, reason, context);
      return Object.freeze({ ok: false, failure, error: new SkeinError(code, reason), decision: made, wwwAuthenticate: bearerChallenge(failure, reason) });
    };
    if (Array.isArray(authorization)) return refuse('malformed', 'the request carries more than one Authorization header');
    const header = typeof authorization === 'string' ? authorization.trim() : '';
    const match = /^Bearer +(\S+)$/i.exec(header);
    if (!match) return refuse('missing', header === '' ? 'the request carries no bearer token' : 'the Authorization header does not hold a Bearer token');
    const token = match[1] as string;
    if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) return refuse('malformed', 'the bearer token is not a compact JWS');

    // A token that verified before answers from memory while it holds: no header decode, no signature check.
    const tokenKey = VerifiedTokens.keyOf(token);
    const nowMs = this.now();
    const known = this.verified.get(tokenKey, this.jwks.generation, Math.floor(nowMs / 1000), this.options.clockSkewSeconds);
    if (known) {
      this.jwks.refreshIfStale();
      return Object.freeze({ ok: true, claims: known.claims, decision: this.decide(true, known.reason, context) });
    }

    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return refuse('malformed', 'the bearer token header cannot be decoded');
    }
    if (alg === undefined || !this.options.algorithms.includes(alg)) {
      return refuse('disallowed-algorithm', `the bearer token is signed with ${alg === undefined ? 'no algorithm' : `"${alg}"`}, which is not accepted (${this.options.algorithms.join(', ')})`);
    }

    const verifyOptions: JWTVerifyOptions = {
      issuer: this.options.issuer,
      audience: this.options.audience,
      algorithms: [...this.options.algorithms],
      clockTolerance: this.options.clockSkewSeconds,
      currentDate: new Date(nowMs),
      requiredClaims: ['exp'],
    };
    try {
      const { payload, generation } = await this.verify(token, verifyOptions);
      const subject = typeof payload.sub === 'string' ? ` for subject "${payload.sub}"` : '';
      const reason = `the bearer token from ${this.options.issuer}${subject} is valid`;
      const claims = deepFreeze({ ...payload });
      if (generation !== undefined && typeof payload.exp === 'number') {
        this.verified.set(tokenKey, { claims, reason, exp: payload.exp, nbf: typeof payload.nbf === 'number' ? payload.nbf : Number.NEGATIVE_INFINITY, generation });
      }
      return Object.freeze({ ok: true, claims, decision: this.decide(true, reason, context) });
    } catch (error) {
      const [failure, reason] = this.classify(error);
      return refuse(failure, reason);
    }
  }

  /** Verifies `token`; `generation` is the key set's when one key was found for it (undefined: several were tried). */
  private async verify(token: string, verifyOptions: JWTVerifyOptions): Promise<{ payload: JWTPayload; generation: number | undefined }> {
    let generation: number | undefined;
    this.signatureChecks += 1;
    try {
      const { payload } = await jwtVerify(token, async (header) => {
        const found = await this.jwks.keyFor(header);
        generation = found.generation;
        return found.key;
      }, verifyOptions);
      return { payload, generation };
    } catch (error) {
      // Several keys fit a token without kid: try each, and report a signature failure only if none verifies.
      if (!(error instanceof joseErrors.JWKSMultipleMatchingKeys)) throw error;
      let last: unknown = error;
      for await (const key of error as unknown as AsyncIterable<ResolvedKey>) {
        try {
          return { payload: (await jwtVerify(token, key, verifyOptions)).payload, generation: undefined };
        } catch (inner) {
          last = inner;
          if (!(inner instanceof joseErrors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw last;
    }
  }

  private classify(error: unknown): [BearerFailure, string] {
    const issuer = this.options.issuer;
    if (error instanceof JwksUnavailableError) return ['jwks-unavailable', `the bearer token cannot be verified: ${error.message}`];
    if (error instanceof UnknownKeyError) return ['unknown-kid', `the bearer token names a key the issuer does not publish: ${error.message}`];
    if (error instanceof joseErrors.JWTExpired) return ['expired', `the bearer token expired${expiry(error.payload.exp)}`];
    if (error instanceof joseErrors.JWTClaimValidationFailed) {
      switch (error.claim) {
        case 'nbf':
          return ['not-yet-valid', `the bearer token is not valid before${expiry(error.payload.nbf)}`];
        case 'iss':
          return ['bad-issuer', `the bearer token was issued by ${JSON.stringify(error.payload.iss ?? null)}, not ${issuer}`];
        case 'aud':
          return ['bad-audience', `the bearer token is for audience ${JSON.stringify(error.payload.aud ?? null)}, not "${this.options.audience}"`];
        default:
          return ['malformed', `the bearer token's "${error.claim}" claim is ${error.reason === 'missing' ? 'missing' : 'invalid'}`];
      }
    }
    if (error instanceof joseErrors.JWSSignatureVerificationFailed) return ['bad-signature', 'the bearer token signature does not verify with the issuer\'s key'];
    if (error instanceof joseErrors.JOSEAlgNotAllowed) return ['disallowed-algorithm', 'the bearer token algorithm is not accepted'];
    if (error instanceof joseErrors.JWKSNoMatchingKey) return ['unknown-kid', 'the bearer token names a key the issuer does not publish'];
    return ['malformed', 'the bearer token is not a valid JWT'];
  }

  private decide(allowed: boolean, reason: string, context: BearerContext): Decision {
    return decision({ allowed, source: 'jwt', rule: this.options.component, reason, caller: context.caller ?? 'anonymous', target: context.target ?? '', method: context.method });
  }
}

function expiry(seconds: unknown): string {
  return typeof seconds === 'number' && Number.isFinite(seconds) ? ` ${new Date(seconds * 1000).toISOString()}` : '';
}

/** Quotes a value for an auth-param (RFC 9110 quoted-string). */
function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, (char) => `\\${char}`).replace(/[\x00-\x1f\x7f]/g, ' ')}"`;
}

/**
 * The `WWW-Authenticate` value for a refused token (RFC 6750 section 3): no error code when no token was sent,
 * `invalid_token` otherwise. `resourceMetadata` adds the RFC 9728 pointer MCP clients follow to find the
 * authorization server.
 */
export function bearerChallenge(failure: BearerFailure, description: string, resourceMetadata?: string): string {
  const params: string[] = [];
  if (resourceMetadata !== undefined) params.push(`resource_metadata=${quoted(resourceMetadata)}`);
  if (failure !== 'missing') params.push('error="invalid_token"', `error_description=${quoted(description)}`);
  return params.length === 0 ? 'Bearer' : `Bearer ${params.join(', ')}`;
}

/** The `WWW-Authenticate` value for a token that lacks scopes a rule requires (403, RFC 6750 `insufficient_scope`). */
export function insufficientScopeChallenge(scopes: readonly string[], resourceMetadata?: string): string {
  const params = ['error="insufficient_scope"', `scope=${quoted(scopes.join(' '))}`];
  if (resourceMetadata !== undefined) params.unshift(`resource_metadata=${quoted(resourceMetadata)}`);
  return `Bearer ${params.join(', ')}`;
}
