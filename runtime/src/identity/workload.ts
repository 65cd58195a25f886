import { X509Certificate } from 'node:crypto';
import { credentials, Client, experimental, status, type ServiceError } from '@grpc/grpc-js';
import { sentryService, type skein } from '@skein/proto';
import { SkeinError, logger, createCsr, generateKeyPem, certificateValidity, formatSpiffeId, spiffeIdOfCertificate, type SpiffeId } from '@skein/core';
import { sentrySpiffeId } from './sentry.js';

const log = logger('identity');

type CertificateProvider = experimental.CertificateProvider;
type CaCertificateUpdateListener = experimental.CaCertificateUpdateListener;
type IdentityCertificateUpdateListener = experimental.IdentityCertificateUpdateListener;

/** One issued SVID with its key and the trust bundle it verifies against. */
export interface Svid {
  certPem: string;
  keyPem: string;
  bundlePem: string;
  id: SpiffeId;
  notBefore: number;
  notAfter: number;
}

/** Options of a workload's identity. */
export interface WorkloadIdentityOptions {
  sentryAddress: string;
  /** PEM bundle that verifies the sentry (the development CA, or production roots). */
  trustAnchorsPem: string;
  appId: string;
  namespace: string;
  /** Join token for production sentries. */
  token?: string;
  /** Smallest delay before retrying a failed renewal. */
  retryMs?: number;
}

/**
 * A workload's X.509 SVID, obtained from sentry and renewed at half its lifetime. Listeners are told of every
 * rotation so TLS servers and clients pick the new certificate up for new handshakes without dropping live ones.
 */
export class WorkloadIdentity {
  private readonly options: WorkloadIdentityOptions;
  private svid: Svid | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly rotationListeners = new Set<(svid: Svid) => void>();
  private readonly caListeners = new Set<CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<IdentityCertificateUpdateListener>();

  constructor(options: WorkloadIdentityOptions) {
    this.options = options;
  }

  /** The current SVID; throws before `start()` resolved. */
  get current(): Svid {
    if (!this.svid) throw new SkeinError('ERR_CERTIFICATE', 'the workload has no SVID yet');
    return this.svid;
  }

  /** Fetches the first SVID and schedules renewal. */
  async start(): Promise<Svid> {
    const svid = await this.fetch();
    this.install(svid);
    return svid;
  }

  /** Calls `listener` after every rotation. */
  onRotate(listener: (svid: Svid) => void): () => void {
    this.rotationListeners.add(listener);
    return () => this.rotationListeners.delete(listener);
  }

  /** Renews now (used by tests and by `SIGHUP`). */
  async renew(): Promise<Svid> {
    const svid = await this.fetch();
    this.install(svid);
    return svid;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** grpc-js provider of the trust bundle. */
  readonly caProvider: CertificateProvider = {
    addCaCertificateListener: (listener) => {
      this.caListeners.add(listener);
      if (this.svid) listener({ caCertificate: Buffer.from(this.svid.bundlePem) });
    },
    removeCaCertificateListener: (listener) => void this.caListeners.delete(listener),
    addIdentityCertificateListener: () => undefined,
    removeIdentityCertificateListener: () => undefined,
  };

  /** grpc-js provider of the SVID and its key. */
  readonly identityProvider: CertificateProvider = {
    addCaCertificateListener: () => undefined,
    removeCaCertificateListener: () => undefined,
    addIdentityCertificateListener: (listener) => {
      this.identityListeners.add(listener);
      if (this.svid) listener({ certificate: Buffer.from(this.svid.certPem), privateKey: Buffer.from(this.svid.keyPem) });
    },
    removeIdentityCertificateListener: (listener) => void this.identityListeners.delete(listener),
  };

  private install(svid: Svid): void {
    this.svid = svid;
    for (const listener of this.caListeners) listener({ caCertificate: Buffer.from(svid.bundlePem) });
    for (const listener of this.identityListeners) listener({ certificate: Buffer.from(svid.certPem), privateKey: Buffer.from(svid.keyPem) });
    for (const listener of this.rotationListeners) listener(svid);
    this.schedule(Math.max(1000, (svid.notAfter - svid.notBefore) / 2 - (Date.now() - svid.notBefore)));
    log.info('SVID installed', { spiffeId: formatSpiffeId(svid.id), notAfter: new Date(svid.notAfter).toISOString() });
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    // setTimeout caps at ~24.8 days; renewals are far sooner than that.
    this.timer = setTimeout(() => void this.renewInBackground(), Math.min(delayMs, 2_000_000_000));
    this.timer.unref();
  }

  private async renewInBackground(): Promise<void> {
    try {
      await this.renew();
    } catch (error) {
      const remaining = (this.svid?.notAfter ?? 0) - Date.now();
      const retry = Math.max(this.options.retryMs ?? 2000, Math.min(60_000, remaining / 10));
      log.error('SVID renewal failed; retrying', { reason: (error as Error).message, retryInMs: Math.round(retry), validForMs: remaining });
      this.schedule(retry);
    }
  }

  private async fetch(): Promise<Svid> {
    const { appId, namespace, sentryAddress, trustAnchorsPem, token } = this.options;
    const { privateKeyPem } = generateKeyPem();
    const csrPem = createCsr(privateKeyPem, appId);
    // Renewals present the current SVID, which the sentry accepts in place of a (by now perhaps expired) join token.
    const current = this.svid && this.svid.notAfter > Date.now() ? { certPem: this.svid.certPem, keyPem: this.svid.keyPem } : undefined;
    const response = await requestCertificate(sentryAddress, trustAnchorsPem, { csrPem, appId, namespace, token: token ?? '' }, 10_000, current);
    const certPem = response.certificatePem ?? '';
    const id = spiffeIdOfCertificate(new X509Certificate(certPem));
    if (!id || id.appId !== appId || id.namespace !== namespace) {
      throw new SkeinError('ERR_CERTIFICATE', `sentry returned a certificate for ${id ? formatSpiffeId(id) : 'no SPIFFE ID'}, not ${appId}/${namespace}`);
    }
    const { notBefore, notAfter } = certificateValidity(certPem);
    return { certPem, keyPem: privateKeyPem, bundlePem: response.trustBundlePem ?? trustAnchorsPem, id, notBefore, notAfter };
  }
}

/** Sends one CSR to sentry over TLS, verifying the sentry by its SPIFFE ID. */
export async function requestCertificate(
  sentryAddress: string,
  trustAnchorsPem: string,
  request: skein.sentry.v1.ISignCertificateRequest,
  deadlineMs = 10_000,
  clientSvid?: { certPem: string; keyPem: string },
): Promise<skein.sentry.v1.ISignCertificateResponse> {
  const channelCredentials = credentials.createSsl(Buffer.from(trustAnchorsPem), clientSvid ? Buffer.from(clientSvid.keyPem) : null, clientSvid ? Buffer.from(clientSvid.certPem) : null, {
    checkServerIdentity: (_host, cert) => {
      const id = spiffeIdOfCertificate(cert);
      if (!id || id.appId !== 'sentry' || id.namespace !== sentrySpiffeId(id.trustDomain).namespace) {
        return new Error(`the server at ${sentryAddress} is not a Skein sentry (certificate SAN: ${cert.subjectaltname ?? 'none'})`);
      }
      return undefined;
    },
  });
  // SNI carries a name, not the dialled IP; the sentry is verified by its SPIFFE ID above.
  const client = new Client(sentryAddress, channelCredentials, { 'grpc.ssl_target_name_override': 'sentry.skein.internal' });
  try {
    return await new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        sentryService.signCertificate.path,
        sentryService.signCertificate.requestSerialize,
        sentryService.signCertificate.responseDeserialize,
        request,
        { deadline: Date.now() + deadlineMs },
        (error: ServiceError | null, response?: skein.sentry.v1.ISignCertificateResponse) => {
          if (error || !response) {
            const code = error?.code === status.PERMISSION_DENIED ? 'ERR_SENTRY_REFUSED' : 'ERR_CERTIFICATE';
            reject(new SkeinError(code, `sentry at ${sentryAddress} did not sign: ${error?.details ?? 'no response'}`, { cause: error }));
            return;
          }
          resolve(response);
        },
      );
    });
  } finally {
    client.close();
  }
}
