/**
 * Public entry of the Skein runtime: the sidecar, the sentry, workload identity, the control-plane helpers and the
 * span exporter. What every process shares (errors, logger, identity helpers, the bus port, telemetry events)
 * is in `@skein/core`.
 */
export { Sidecar, type SidecarOptions, type SidecarPorts } from './sidecar.js';
export { Sentry, type SentryOptions } from './identity/sentry.js';
export { createJoinToken } from './identity/join-token.js';
export { WorkloadIdentity, requestCertificate, type Svid } from './identity/workload.js';
export { findNatsServer, ensureNatsServer, writeNatsConfig, NATS_INSTALL_HINT } from './control/nats-server.js';
export { loadResources, loadConfiguration, loadRunTemplate } from './config/load.js';
export { NatsSpanExporter } from './telemetry/nats-exporter.js';
