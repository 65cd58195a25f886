/** Public entry of the Skein runtime: the sidecar, identity and bus building blocks, and the error catalogue. */
export { Sidecar, type SidecarOptions, type SidecarPorts } from './sidecar.js';
export { SkeinError, ConfigError, ERROR_CATALOGUE, asSkeinError, type ErrorCode } from './errors.js';
export { Sentry, localAddresses, type SentryOptions } from './identity/sentry.js';
export { createRootCa, createCsr, signSvid, issueServerCertificate, generateKeyPem, type KeyPair } from './identity/ca.js';
export { createJoinToken } from './identity/join-token.js';
export { formatSpiffeId, parseSpiffeId, spiffeIdOfCertificate, type SpiffeId } from './identity/spiffe.js';
export { WorkloadIdentity, requestCertificate, type Svid } from './identity/workload.js';
export { initCa, readCa, caPaths, skeinHome } from './identity/home.js';
export { findNatsServer, ensureNatsServer, writeNatsConfig, NATS_INSTALL_HINT } from './control/nats-server.js';
export { loadResources, loadConfiguration, loadRunTemplate } from './config/load.js';
export { parseDuration } from './duration.js';
export { logger, type Logger } from './logger.js';
export { connectBus, type Bus, type BusTls } from './bus/connection.js';
export { BUCKETS, SUBJECTS, decisionSubject, spanSubject } from './bus/names.js';
export { NatsSpanExporter } from './telemetry/nats-exporter.js';
export { ensureTelemetryStream, DEFAULT_TELEMETRY_RETENTION, type TelemetryRetention } from './telemetry/stream.js';
export { mintOperatorTls } from './telemetry/operator-bus.js';
export { type SpanEvent } from './telemetry/span-event.js';
