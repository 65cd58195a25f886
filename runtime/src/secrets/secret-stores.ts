/**
 * Secret stores a sidecar reads `secretKeyRef` values from, loaded once at `skein run` like every other resource.
 * Dapr's `secretstores.local.file` (a JSON file) is supported: its secrets are read when the sidecar starts, so a
 * reference that cannot be resolved stops the sidecar with a ConfigError naming the secret — never its value.
 * Every resolved value is registered with the logger, which then masks it wherever it might appear.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, registerSecretValue } from '@skein/core';
import type { ComponentMetadataItem, ComponentResource } from '../config/types.js';

/** Dapr's local file secret store: secrets in a JSON file, for development. */
export const LOCAL_FILE_SECRET_STORE = 'secretstores.local.file';

/** A reference to one key of one secret, as `secretKeyRef` writes it; `store` from the resource's `auth.secretStore`. */
export interface SecretRef {
  store: string | undefined;
  name: string;
  /** Field in the secret; Dapr's default is the secret name. */
  key: string;
}

/** Where a value is declared, for error messages. */
export interface ValueSite {
  file: string;
  /** JSON Pointer of the entry inside the file. */
  path: string;
}

/** Secrets by name; each secret maps keys to values (Dapr's model). */
type SecretTable = ReadonlyMap<string, ReadonlyMap<string, string>>;

const FILE_STORE_METADATA = ['secretsFile', 'nestedSeparator', 'multiValued'];

/**
 * Reads a `secretstores.local.file` Component into its secrets, with Dapr's semantics: by default (`multiValued`
 * false) the JSON is flattened with `nestedSeparator` (default `:`) and each flattened key is a secret holding
 * one key of the same name; with `multiValued: "true"` each top-level key is a secret whose nested fields are its
 * keys. A relative `secretsFile` is resolved against the working directory, as Dapr does.
 */
export function loadLocalFileStore(component: ComponentResource, file: string, cwd = process.cwd()): SecretTable {
  const settings = new Map<string, { value: string; at: string }>();
  (component.spec.metadata ?? []).forEach((item, index) => {
    const at = `/spec/metadata/${index}`;
    const name = FILE_STORE_METADATA.find((known) => known.toLowerCase() === item.name.toLowerCase());
    if (!name) throw new ConfigError(file, `${at}/name`, `unknown metadata "${item.name}" for ${LOCAL_FILE_SECRET_STORE} (known: ${FILE_STORE_METADATA.join(', ')})`);
    // A secret store cannot read its own settings from a secret store.
    if (item.value === undefined) throw new ConfigError(file, at, `${LOCAL_FILE_SECRET_STORE} metadata "${name}" needs a plain value`);
    settings.set(name, { value: String(item.value), at });
  });
  const secretsFile = settings.get('secretsFile');
  if (!secretsFile || secretsFile.value.trim() === '') throw new ConfigError(file, '/spec/metadata', 'missing required metadata "secretsFile"');
  const separator = settings.get('nestedSeparator')?.value ?? ':';
  const multiValuedText = settings.get('multiValued')?.value ?? 'false';
  if (!['true', 'false'].includes(multiValuedText.toLowerCase())) throw new ConfigError(file, `${settings.get('multiValued')?.at ?? '/spec/metadata'}/value`, 'multiValued must be "true" or "false"');
  const path = resolve(cwd, secretsFile.value);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(file, `${secretsFile.at}/value`, `cannot read the secrets file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse quotes the text around the error, which would put secret values in the message.
    throw new ConfigError(file, `${secretsFile.at}/value`, `the secrets file ${path} is not valid JSON`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(file, `${secretsFile.at}/value`, `the secrets file ${path} must hold a JSON object`);
  return secretTable(parsed as Record<string, unknown>, separator, multiValuedText.toLowerCase() === 'true');
}

/** Dapr's flattening of a secrets file into secrets. Pure. */
export function secretTable(json: Readonly<Record<string, unknown>>, separator: string, multiValued: boolean): SecretTable {
  const table = new Map<string, ReadonlyMap<string, string>>();
  if (multiValued) {
    for (const [name, inner] of Object.entries(json)) {
      table.set(name, inner !== null && typeof inner === 'object' ? flatten(inner, separator) : new Map([[name, String(inner)]]));
    }
    return table;
  }
  for (const [name, value] of flatten(json, separator)) table.set(name, new Map([[name, value]]));
  return table;
}

function flatten(value: object, separator: string, prefix = '', out = new Map<string, string>()): Map<string, string> {
  for (const [key, inner] of Object.entries(value) as Array<[string, unknown]>) {
    const name = prefix === '' ? key : `${prefix}${separator}${key}`;
    if (inner !== null && typeof inner === 'object') flatten(inner, separator, name, out);
    else out.set(name, String(inner));
  }
  return out;
}

/** The secret stores one sidecar loaded, by Component name. */
export class SecretStores {
  private readonly stores: ReadonlyMap<string, SecretTable>;

  constructor(stores: ReadonlyMap<string, SecretTable>) {
    this.stores = stores;
  }

  /** Loads every `secretstores.*` Component of `components` (already scoped to this app). */
  static load(components: ReadonlyArray<{ component: ComponentResource; file: string }>): SecretStores {
    const stores = new Map<string, SecretTable>();
    for (const { component, file } of components) {
      const type = component.spec.type;
      if (!type.startsWith('secretstores.')) continue;
      if (type !== LOCAL_FILE_SECRET_STORE) throw new ConfigError(file, '/spec/type', `secret store type ${type} is not supported (supported: ${LOCAL_FILE_SECRET_STORE})`);
      if (component.spec.version !== 'v1') throw new ConfigError(file, '/spec/version', `${LOCAL_FILE_SECRET_STORE} has version v1 only`);
      stores.set(component.metadata.name, loadLocalFileStore(component, file));
    }
    return new SecretStores(stores);
  }

  /** Names of the loaded stores. */
  get names(): string[] {
    return [...this.stores.keys()];
  }

  /** The value `ref` names, or undefined when the secret or key does not exist. Never throws. */
  lookup(ref: SecretRef): string | undefined {
    const store = ref.store ?? (this.stores.size === 1 ? this.names[0] : undefined);
    return store === undefined ? undefined : this.stores.get(store)?.get(ref.name)?.get(ref.key);
  }

  /**
   * The value `ref` names, registered as a secret with the logger. Without `auth.secretStore` the only loaded store
   * is used (Dapr would need the store named). Throws a ConfigError naming the store and secret when it cannot.
   */
  resolve(ref: SecretRef, site: ValueSite): string {
    const quoted = `secret "${ref.name}"${ref.key === ref.name ? '' : ` (key "${ref.key}")`}`;
    let store = ref.store;
    if (store === undefined) {
      if (this.stores.size === 0) throw new ConfigError(site.file, site.path, `${quoted} cannot be resolved: no secret store is loaded (add a ${LOCAL_FILE_SECRET_STORE} Component and name it in auth.secretStore)`);
      const [only, ...others] = this.names;
      if (only === undefined || others.length > 0) throw new ConfigError(site.file, site.path, `${quoted} cannot be resolved: several secret stores are loaded (${this.names.join(', ')}); name one in auth.secretStore`);
      store = only;
    }
    const table = this.stores.get(store);
    if (!table) throw new ConfigError(site.file, site.path, `${quoted} cannot be resolved: secret store "${store}" is not loaded (loaded: ${this.names.join(', ') || 'none'})`);
    const value = table.get(ref.name)?.get(ref.key);
    if (value === undefined) throw new ConfigError(site.file, site.path, `${quoted} is not in secret store "${store}"`);
    registerSecretValue(value);
    return value;
  }
}

/**
 * The value of a Dapr name/value entry (`value`, `envRef` or `secretKeyRef`). `sensitive` values from the
 * environment are registered with the logger too; secret-store values always are.
 */
export function resolveNamedValue(
  item: ComponentMetadataItem,
  site: ValueSite,
  context: { stores: SecretStores; secretStore: string | undefined; env?: Readonly<Record<string, string | undefined>>; sensitive?: boolean },
): string {
  if (item.value !== undefined) {
    const value = String(item.value);
    if (context.sensitive) registerSecretValue(value);
    return value;
  }
  if (item.envRef !== undefined) {
    const value = (context.env ?? process.env)[item.envRef];
    if (value === undefined) throw new ConfigError(site.file, `${site.path}/envRef`, `environment variable ${item.envRef} is not set`);
    if (context.sensitive) registerSecretValue(value);
    return value;
  }
  if (item.secretKeyRef !== undefined) {
    const ref = { store: context.secretStore, name: item.secretKeyRef.name, key: item.secretKeyRef.key ?? item.secretKeyRef.name };
    return context.stores.resolve(ref, { file: site.file, path: `${site.path}/secretKeyRef` });
  }
  throw new ConfigError(site.file, site.path, 'an entry needs value, envRef or secretKeyRef');
}
