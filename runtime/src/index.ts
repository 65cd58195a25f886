/**
 * Public entry of the Skein runtime: the sidecar, the sentry, workload identity, the control-plane helpers and the
 * span exporter. What every process shares (errors, logger, identity helpers, the bus port, telemetry events)
 * is in `@skein/core`.
 */
export { Sidecar, type SidecarOptions, type SidecarPorts } from './sidecar.js';
export type { ActorHost, ActorRef, ActorCaller, ActorCall, ActorMethodCall, ActorReply, ActorTurn, ReminderFire, ReminderOutcome, TimerFire, InternalTypeSettings, InternalTypeContext, ScheduleRequest } from './actors/actor-host.js';
export type { StateOperation } from './actors/requests.js';
export { compileInboundPolicies, type InboundPolicies } from './pipeline/inbound-config.js';
export { compileOutbound } from './outbound/outbound-config.js';
export { compileSidecarConfig, type CompiledSidecarConfig, type SidecarConfigInputs } from './config/compile.js';
export { Sentry, type SentryOptions } from './identity/sentry.js';
export { createJoinToken } from './identity/join-token.js';
export { WorkloadIdentity, requestCertificate, type Svid } from './identity/workload.js';
export { findNatsServer, ensureNatsServer, writeNatsConfig, NATS_INSTALL_HINT } from './control/nats-server.js';
export { loadResources, loadConfiguration, loadRunTemplate } from './config/load.js';
export { NatsSpanExporter } from './telemetry/nats-exporter.js';
