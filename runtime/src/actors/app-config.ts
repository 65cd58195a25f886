import { parseConfigDuration as parseDurationField } from '@skein/core';
import { validateActorName } from './names.js';

/**
 * The actor settings an app declares in `GET /dapr/config` (Dapr's app protocol), validated once into frozen
 * options. Pure.
 */

/** Reentrancy settings of an actor type. */
export interface ReentrancySettings {
  enabled: boolean;
  maxStackDepth: number;
}

/** Settings that apply per actor type. */
export interface ActorTypeSettings {
  idleTimeoutMs: number;
  reentrancy: ReentrancySettings;
}

/** What an app hosts and how its actors behave. */
export interface ActorAppConfig {
  /** Actor types the app hosts; empty for an app that only calls actors. */
  readonly entities: readonly string[];
  /** How often idle actors are looked for. */
  readonly scanIntervalMs: number;
  /** How long a shutting-down or rebalancing host waits for running turns before it deactivates anyway. */
  readonly drainOngoingCallTimeoutMs: number;
  /** Settings of each hosted type (the app-wide ones, overridden by `entitiesConfig`). */
  settingsOf(actorType: string): ActorTypeSettings;
}

/** Dapr's defaults. */
export const ACTOR_DEFAULTS = {
  idleTimeoutMs: 60 * 60_000,
  scanIntervalMs: 30_000,
  drainOngoingCallTimeoutMs: 60_000,
  maxStackDepth: 32,
} as const;

/** A `/dapr/config` the sidecar cannot use; the message names the field. */
export class AppConfigError extends Error {
  override readonly name = 'AppConfigError';
}

function parseConfigDuration(name: string, value: unknown, fallback: number): number {
  try {
    return parseDurationField(name, value, fallback);
  } catch (error) {
    throw new AppConfigError((error as Error).message);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function reentrancyOf(value: unknown, fallback: ReentrancySettings, where: string): ReentrancySettings {
  if (value === undefined || value === null) return fallback;
  if (!isRecord(value)) throw new AppConfigError(`${where}reentrancy must be an object`);
  const enabled = value['enabled'] === undefined ? fallback.enabled : value['enabled'];
  if (typeof enabled !== 'boolean') throw new AppConfigError(`${where}reentrancy.enabled must be true or false`);
  const depth = value['maxStackDepth'] === undefined || value['maxStackDepth'] === null ? fallback.maxStackDepth : value['maxStackDepth'];
  if (typeof depth !== 'number' || !Number.isInteger(depth) || depth < 1 || depth > 1000) {
    throw new AppConfigError(`${where}reentrancy.maxStackDepth must be an integer from 1 to 1000`);
  }
  return { enabled, maxStackDepth: depth };
}

/**
 * Validates the body of an app's `GET /dapr/config`. Throws `AppConfigError` (a message naming the field) on an
 * invalid one; unknown fields are ignored, as Dapr does.
 */
export function appConfigFrom(body: unknown): ActorAppConfig {
  if (!isRecord(body)) throw new AppConfigError('the body is not a JSON object');
  const rawEntities = body['entities'] ?? [];
  if (!Array.isArray(rawEntities)) throw new AppConfigError('entities must be a list of actor types');
  const entities = [...new Set(rawEntities.map((entity, index) => {
    if (typeof entity !== 'string') throw new AppConfigError(`entities[${index}] must be a string`);
    const problem = validateActorName(entity);
    if (problem) throw new AppConfigError(`entities[${index}] "${entity}": ${problem}`);
    return entity;
  }))];
  const base: ActorTypeSettings = {
    idleTimeoutMs: parseConfigDuration('actorIdleTimeout', body['actorIdleTimeout'], ACTOR_DEFAULTS.idleTimeoutMs),
    reentrancy: reentrancyOf(body['reentrancy'], { enabled: false, maxStackDepth: ACTOR_DEFAULTS.maxStackDepth }, ''),
  };
  const perType = new Map<string, ActorTypeSettings>();
  const entitiesConfig = body['entitiesConfig'] ?? [];
  if (!Array.isArray(entitiesConfig)) throw new AppConfigError('entitiesConfig must be a list');
  entitiesConfig.forEach((entry: unknown, index) => {
    if (!isRecord(entry) || !Array.isArray(entry['entities'])) throw new AppConfigError(`entitiesConfig[${index}] must name its entities`);
    const where = `entitiesConfig[${index}].`;
    const settings: ActorTypeSettings = {
      idleTimeoutMs: parseConfigDuration(`${where}actorIdleTimeout`, entry['actorIdleTimeout'], base.idleTimeoutMs),
      reentrancy: reentrancyOf(entry['reentrancy'], base.reentrancy, where),
    };
    for (const entity of entry['entities']) if (typeof entity === 'string') perType.set(entity, Object.freeze(settings));
  });
  const scanIntervalMs = parseConfigDuration('actorScanInterval', body['actorScanInterval'], ACTOR_DEFAULTS.scanIntervalMs);
  if (scanIntervalMs <= 0) throw new AppConfigError('actorScanInterval must be longer than zero');
  const frozenBase = Object.freeze(base);
  return Object.freeze({
    entities: Object.freeze(entities),
    scanIntervalMs,
    drainOngoingCallTimeoutMs: parseConfigDuration('drainOngoingCallTimeout', body['drainOngoingCallTimeout'], ACTOR_DEFAULTS.drainOngoingCallTimeoutMs),
    settingsOf: (actorType: string) => perType.get(actorType) ?? frozenBase,
  });
}

/** An app whose `/dapr/config` hosts nothing. */
export const NO_ACTORS: ActorAppConfig = appConfigFrom({});
