import { AjvSchemaValidator, ConfigError } from '@skein/core';
import { loadSchema, type ResourceKind } from '@skein/proto';

const validator = new AjvSchemaValidator((name) => loadSchema(name as ResourceKind | 'run-template'));

/** Validates `value` against the schema of `name`; throws a ConfigError naming file, path and reason. */
export function validateAgainstSchema<T>(name: ResourceKind | 'run-template', value: unknown, file: string): T {
  const [issue] = validator.validate(name, value);
  if (issue) throw new ConfigError(file, issue.path, issue.reason);
  return value as T;
}

/** Deep-freezes a validated value so core code cannot change configuration after load. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
