import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { loadSchema, type ResourceKind } from '@skein/proto';
import { ConfigError } from '../errors.js';

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });
const validators = new Map<string, ValidateFunction>();

function validatorFor(name: ResourceKind | 'run-template'): ValidateFunction {
  const known = validators.get(name);
  if (known) return known;
  const validate = ajv.compile(loadSchema(name));
  validators.set(name, validate);
  return validate;
}

/** Turns an ajv error into a person's sentence. */
function reasonOf(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return `unknown field "${String(params['additionalProperty'])}"`;
    case 'required':
      return `missing required field "${String(params['missingProperty'])}"`;
    case 'enum':
      return `must be one of ${JSON.stringify(params['allowedValues'])}`;
    case 'const':
      return `must be ${JSON.stringify(params['allowedValue'])}`;
    default:
      return error.message ?? error.keyword;
  }
}

/** JSON Pointer of an error, pointing at the unknown field itself where there is one. */
function pathOf(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties') return `${error.instancePath}/${String(params['additionalProperty'])}`;
  return error.instancePath || '/';
}

/** Validates `value` against the schema of `name`; throws a ConfigError naming file, path and reason. */
export function validateAgainstSchema<T>(name: ResourceKind | 'run-template', value: unknown, file: string): T {
  const validate = validatorFor(name);
  if (!validate(value)) {
    const error = (validate.errors ?? [])[0];
    throw new ConfigError(file, error ? pathOf(error) : '/', error ? reasonOf(error) : 'invalid');
  }
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
