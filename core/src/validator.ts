import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
export type { ErrorObject };

/** One reason a document does not match its schema: where (a JSON Pointer) and why, in words a person acts on. */
export interface ValidationIssue {
  readonly path: string;
  readonly reason: string;
}

/**
 * Validates documents against JSON Schemas by name. The runtime (at load) and the editor (as people type) use the
 * same implementation over the same schemas in `@skein/proto`, so they agree on what is valid.
 */
export interface SchemaValidator {
  /** The first issue of `value` against the schema `name` (empty when valid). */
  validate(name: string, value: unknown): readonly ValidationIssue[];
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

/** Options of `AjvSchemaValidator`. */
export interface AjvSchemaValidatorOptions {
  allErrors?: boolean;
  /** Schemas the named ones refer to by `$id` (such as the metadata schema of each Component type). */
  references?: readonly object[];
  /**
   * Words for an error the generic ones describe badly; undefined keeps the generic reason. Each error carries its
   * failing schema (`schema`, `parentSchema`) and value (`data`).
   */
  explain?: (error: ErrorObject, document: unknown) => string | undefined;
}

/** A `SchemaValidator` on Ajv; each schema is compiled once, on first use, from `schemaOf(name)`. */
export class AjvSchemaValidator implements SchemaValidator {
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly schemaOf: (name: string) => object;
  private readonly explain: AjvSchemaValidatorOptions['explain'];

  constructor(schemaOf: (name: string) => object, options: AjvSchemaValidatorOptions = {}) {
    this.schemaOf = schemaOf;
    this.explain = options.explain;
    this.ajv = new Ajv({ allErrors: options.allErrors ?? false, strict: true, allowUnionTypes: true, verbose: options.explain !== undefined });
    for (const schema of options.references ?? []) this.ajv.addSchema(schema);
  }

  validate(name: string, value: unknown): readonly ValidationIssue[] {
    let validate = this.compiled.get(name);
    if (!validate) {
      validate = this.ajv.compile(this.schemaOf(name));
      this.compiled.set(name, validate);
    }
    if (validate(value)) return [];
    const errors = validate.errors ?? [];
    return errors.length === 0 ? [{ path: '/', reason: 'invalid' }] : errors.map((error) => ({ path: pathOf(error), reason: this.explain?.(error, value) ?? reasonOf(error) }));
  }
}
