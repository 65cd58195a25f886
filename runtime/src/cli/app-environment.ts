/**
 * The environment `skein run` gives the app it starts. The sidecar's own environment holds what only the sidecar
 * may use: its join token (with which the app could obtain an identity of its own and bypass its sidecar) and the
 * values of every `envRef` of its resources (OAuth2 client secrets, credential headers of HTTPEndpoints, ...).
 * The app gets everything else, plus the Dapr variables that tell it where its sidecar listens.
 */

/** Variables named like this configure the sidecar and never reach the app. */
const SIDECAR_PREFIX = 'SKEIN_';

/**
 * Every environment variable an `envRef` in `resources` names, at any depth: Components, HTTPEndpoints and any
 * later kind that resolves a value from the environment all use the same `envRef` field.
 */
export function envRefNames(resources: Iterable<unknown>): Set<string> {
  const names = new Set<string>();
  const seen = new Set<object>();
  const walk = (value: unknown): void => {
    if (typeof value !== 'object' || value === null || seen.has(value)) return;
    seen.add(value);
    if (Array.isArray(value)) {
      for (const item of value) walk(item);
      return;
    }
    for (const [key, inner] of Object.entries(value)) {
      if (key === 'envRef' && typeof inner === 'string') names.add(inner);
      else walk(inner);
    }
  };
  for (const resource of resources) walk(resource);
  return names;
}

/**
 * The app's environment: `parentEnv` without any `SKEIN_*` variable and without the variables named in
 * `secretVariableNames`, then `overrides` (the Dapr variables) on top. Pure: `parentEnv` is not changed.
 */
export function appEnvironment(parentEnv: NodeJS.ProcessEnv, secretVariableNames: Iterable<string>, overrides: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const secret = new Set(secretVariableNames);
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(parentEnv)) {
    if (value === undefined || name.toUpperCase().startsWith(SIDECAR_PREFIX) || secret.has(name)) continue;
    env[name] = value;
  }
  for (const [name, value] of Object.entries(overrides)) if (value !== undefined) env[name] = value;
  return env;
}
