import type { Server as TlsServer } from 'node:tls';
import { Server, status, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { localAddresses, serveGrpcOverTls, SkeinError, asSkeinError, logger, issueServerCertificate, signSvid, type KeyPair, formatSpiffeId, isValidAppId, isValidNamespace, isValidTrustDomain, spiffeIdOfCertificate, type SpiffeId } from '@skein/core';
import { sentryService, type skein } from '@skein/proto';
import { JoinTokenLedger, verifyJoinToken, joinTokenKey } from './join-token.js';

const log = logger('sentry');

/** Validated options of the sentry. */
export interface SentryOptions {
  ca: KeyPair;
  trustDomain: string;
  /** `development` signs any well-formed CSR; `production` requires a join token for the claimed identity. */
  mode: 'development' | 'production';
  workloadCertTtlMs: number;
  host: string;
  port: number;
  /** Extra names or addresses the sentry is reached at (its serving certificate covers them). */
  advertiseAddresses: string[];
  /** Where the join tokens already used are kept (so a restart refuses them too); in memory when absent. */
  usedTokensFile?: string;
}

/** The SPIFFE ID of the sentry's own serving certificate; sidecars verify it instead of a host name. */
export function sentrySpiffeId(trustDomain: string): SpiffeId {
  return { trustDomain, namespace: 'skein-system', appId: 'sentry' };
}

/** The certificate authority service: signs CSRs into short-lived X.509 SVIDs. Create, then `start()`. */
export class Sentry {
  private readonly options: SentryOptions;
  private readonly server = new Server();
  private readonly tokenKey;
  private readonly ledger: JoinTokenLedger;
  private tlsServer: TlsServer | undefined;
  port = 0;

  constructor(options: SentryOptions) {
    if (!isValidTrustDomain(options.trustDomain)) throw new SkeinError('ERR_CONFIG_INVALID', `invalid trust domain "${options.trustDomain}"`);
    this.options = options;
    this.tokenKey = joinTokenKey(options.ca.keyPem);
    this.ledger = new JoinTokenLedger(options.usedTokensFile);
  }

  /** Listens; resolves with the bound port. */
  async start(): Promise<number> {
    const { ca, trustDomain, host, port, advertiseAddresses } = this.options;
    // The SPIFFE URI lets sidecars verify the sentry by identity, whatever address they dialled.
    const serving = issueServerCertificate(ca, 'skein-sentry', [...localAddresses(), ...advertiseAddresses], 365 * 24 * 3_600_000, sentrySpiffeId(trustDomain));
    this.server.addService(sentryService, {
      signCertificate: (call: ServerUnaryCall<skein.sentry.v1.ISignCertificateRequest, skein.sentry.v1.ISignCertificateResponse>, callback: sendUnaryData<skein.sentry.v1.ISignCertificateResponse>) => {
        this.sign(call.request, renewingIdentity(call)).then(
          (response) => callback(null, response),
          (error: unknown) => {
            const skeinError = asSkeinError(error);
            log.warn('refused a certificate request', { appId: call.request.appId, namespace: call.request.namespace, reason: skeinError.message });
            callback({ code: skeinError.grpcStatus ?? status.INTERNAL, details: `${skeinError.code}: ${skeinError.message}` });
          },
        );
      },
    });
    // Client certificates are asked for but optional: a first request has none (it brings a join token); a renewal
    // presents the workload's current SVID, which proves the identity it renews.
    const served = await serveGrpcOverTls(this.server, { tls: { key: serving.keyPem, cert: serving.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: false }, host, port, log });
    this.tlsServer = served.server;
    this.port = served.port;
    log.info('sentry listening', { address: `${host}:${this.port}`, trustDomain, mode: this.options.mode });
    return this.port;
  }

  private async sign(request: skein.sentry.v1.ISignCertificateRequest, presented: SpiffeId | undefined): Promise<skein.sentry.v1.ISignCertificateResponse> {
    const appId = request.appId ?? '';
    const namespace = request.namespace ?? '';
    if (!isValidAppId(appId)) throw new SkeinError('ERR_MALFORMED_REQUEST', `invalid App ID "${appId}"`);
    if (!isValidNamespace(namespace)) throw new SkeinError('ERR_MALFORMED_REQUEST', `invalid namespace "${namespace}"`);
    if (namespace === 'skein-system') throw new SkeinError('ERR_SENTRY_REFUSED', 'namespace skein-system is reserved for the control plane');
    const id: SpiffeId = { trustDomain: this.options.trustDomain, namespace, appId };
    const renewal = presented !== undefined && formatSpiffeId(presented) === formatSpiffeId(id);
    if (this.options.mode === 'production' && !renewal) {
      if (!request.token) throw new SkeinError('ERR_SENTRY_REFUSED', `a join token is required for ${formatSpiffeId(id)}`);
      const token = await verifyJoinToken(request.token, this.tokenKey, id);
      if (!this.ledger.claim(token)) {
        log.warn('join token replayed', { spiffeId: formatSpiffeId(id), jti: token.jti });
        throw new SkeinError('ERR_SENTRY_REFUSED', `this join token (jti ${token.jti}) was used already: a join token is good for one identity, once; make a new one with \`skein token\``);
      }
    }
    const certificatePem = signSvid(this.options.ca, request.csrPem ?? '', id, this.options.workloadCertTtlMs);
    log.info('issued SVID', { spiffeId: formatSpiffeId(id) });
    return { certificatePem, trustBundlePem: this.options.ca.certPem, spiffeId: formatSpiffeId(id) };
  }

  /** Stops accepting and ends open connections. */
  async stop(): Promise<void> {
    this.server.forceShutdown();
    await new Promise<void>((resolve) => (this.tlsServer ? this.tlsServer.close(() => resolve()) : resolve()));
  }
}

/** The identity of a still-valid SVID the caller presented (verified against our CA), if any. */
function renewingIdentity(call: ServerUnaryCall<skein.sentry.v1.ISignCertificateRequest, skein.sentry.v1.ISignCertificateResponse>): SpiffeId | undefined {
  const cert = call.getAuthContext().sslPeerCertificate;
  return cert ? spiffeIdOfCertificate(cert) : undefined;
}
