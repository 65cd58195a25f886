/**
 * A pure inspector for MCP JSON-RPC request bodies, and the few pieces a policy needs to answer them.
 *
 * The body is the only source of truth: it is parsed strictly (size, nesting and batch limits, no duplicate keys)
 * into messages, each with its method, tool name and arguments. For protocol 2026-07-28 the mirrored headers
 * (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`) are checked against the body and a mismatch is
 * refused with 400 and JSON-RPC error -32020; headers never decide anything on their own. Batches exist only in
 * protocol 2025-03-26 and are judged entry by entry: `rewriteBatch` forwards the allowed entries byte for byte
 * and answers the others itself.
 */
import { JSONRPC_CODES, jsonRpcCodeOf, type ErrorCode, type Decision, truncate } from '@skein/core';
import { JsonParseError, parseStrictJson, type JsonObject, type JsonValue } from './json.js';
import { MAX_TOOL_NAME_LENGTH, toolNameProblem } from './tool-name.js';

/** The JSON-RPC error code a Skein error code answers with inside a JSON-RPC response: the catalogue's column. */
export const jsonRpcCodeFor = jsonRpcCodeOf;

export { JSONRPC_CODES };

/** Limits on a request body, checked before and while parsing. */
export interface JsonRpcLimits {
  /** Largest body in bytes (Dapr's default request limit is 4 MiB). */
  readonly maxBytes: number;
  /** Deepest nesting of objects and arrays, the batch array included. */
  readonly maxDepth: number;
  /** Most messages in one batch. */
  readonly maxBatchLength: number;
}

/** Defaults: 4 MiB, 64 levels, 100 messages. */
export const DEFAULT_JSONRPC_LIMITS: JsonRpcLimits = Object.freeze({ maxBytes: 4 * 1024 * 1024, maxDepth: 64, maxBatchLength: 100 });

/** A JSON-RPC id as MCP allows it: a string or an integer. */
export type JsonRpcId = string | number;

/** Why a body, or one entry of a batch, is refused; enough to answer the caller precisely. */
export interface JsonRpcProblem {
  /** JSON-RPC error code: -32700, -32600, -32602 or -32020. */
  readonly code: number;
  /** Stable Skein code for the HTTP answer and the error data. */
  readonly errorCode: ErrorCode;
  /** HTTP status to answer with when the whole body is refused. */
  readonly httpStatus: number;
  readonly message: string;
  /** Where: `line L, column C` for syntax, a JSON Pointer into the body, or `header <Name>`. */
  readonly where: string;
  /** The id of the refused message when it could be read, so the answer can carry it. */
  readonly id: JsonRpcId | null;
  /** The method of the refused message when it could be read (never its parameters). */
  readonly method?: string;
}

interface MessageBase {
  /** Position in the batch (0 for a single message). */
  readonly index: number;
  /** JSON Pointer of the message in the body (`` for a single message, `/2` in a batch). */
  readonly pointer: string;
}

/** A request: has an id and expects an answer. */
export interface InspectedRequest extends MessageBase {
  readonly kind: 'request';
  readonly id: JsonRpcId;
  readonly method: string;
  readonly params: JsonObject | undefined;
  /** `params.name` of a `tools/call`. */
  readonly toolName: string | undefined;
  /** `params.arguments` of a `tools/call` (an empty object when absent). */
  readonly arguments: JsonObject | undefined;
  /** The value `Mcp-Name` mirrors: `params.name` (tools/call, prompts/get) or `params.uri` (resources/read). */
  readonly mirroredName: string | undefined;
  /** `params._meta["io.modelcontextprotocol/protocolVersion"]`, when the message carries it. */
  readonly protocolVersion: string | undefined;
}

/** A notification: no id, no answer. */
export interface InspectedNotification extends MessageBase {
  readonly kind: 'notification';
  readonly method: string;
  readonly params: JsonObject | undefined;
  readonly protocolVersion: string | undefined;
}

/** A response the client sends to a server-initiated request (session era). */
export interface InspectedResponse extends MessageBase {
  readonly kind: 'response';
  readonly id: JsonRpcId | null;
}

/** A batch entry that is not a valid message; it is never forwarded. */
export interface InvalidEntry extends MessageBase {
  readonly kind: 'invalid';
  readonly problem: JsonRpcProblem;
}

/** One message of a body. */
export type InspectedMessage = InspectedRequest | InspectedNotification | InspectedResponse | InvalidEntry;

/** A parsed body: its messages (one unless `batch`), or the problem that refuses it as a whole. */
export type JsonRpcInspection =
  | {
      readonly ok: true;
      readonly batch: boolean;
      readonly messages: readonly InspectedMessage[];
      /** The decoded body text, kept so a batch can be forwarded byte for byte. */
      readonly text: string;
      /** The `[start, end)` text span of each batch entry. */
      readonly spans: ReadonlyArray<readonly [number, number]> | undefined;
      /** The protocol version in force (header, else the body's `_meta`); undefined for the session era's first calls. */
      readonly protocolVersion: string | undefined;
    }
  | { readonly ok: false; readonly problem: JsonRpcProblem };

function problem(code: number, message: string, where: string, id: JsonRpcId | null = null, errorCode: ErrorCode = code === JSONRPC_CODES.HEADER_MISMATCH ? 'ERR_MCP_HEADER_MISMATCH' : 'ERR_MALFORMED_REQUEST', httpStatus = 400): JsonRpcProblem {
  return Object.freeze({ code, errorCode, httpStatus, message, where, id });
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hasOwn(object: JsonObject, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key);
}

function readId(value: JsonValue | undefined): JsonRpcId | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  return undefined;
}

const NAME_BEARING: Readonly<Record<string, 'name' | 'uri'>> = Object.freeze({ 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' });
const VERSION_KEY = 'io.modelcontextprotocol/protocolVersion';

/** Reads one message; an invalid one becomes an InvalidEntry carrying the reason and its id when readable. */
function inspectMessage(value: JsonValue, index: number, pointer: string): InspectedMessage {
  const invalid = (code: number, message: string, where: string, id: JsonRpcId | null = null): InvalidEntry => ({
    kind: 'invalid',
    index,
    pointer,
    problem: problem(code, message, where, id),
  });
  // Once the method could be read, the refusal names it: spans and metrics still say what was attempted.
  const withMethod = (method: string, code: number, message: string, where: string, id: JsonRpcId | null = null): InvalidEntry => {
    const entry = invalid(code, message, where, id);
    return { ...entry, problem: Object.freeze({ ...entry.problem, method }) };
  };
  if (!isObject(value)) return invalid(JSONRPC_CODES.INVALID_REQUEST, 'a JSON-RPC message must be an object', pointer || '/');
  const rawId = value['id'];
  const id = readId(rawId);
  const answerId = id ?? null;
  if (value['jsonrpc'] !== '2.0') return invalid(JSONRPC_CODES.INVALID_REQUEST, '"jsonrpc" must be "2.0"', `${pointer}/jsonrpc`, answerId);
  const isResponse = hasOwn(value, 'result') || hasOwn(value, 'error');

  if (hasOwn(value, 'method')) {
    const method = value['method'];
    if (typeof method !== 'string' || method.length === 0) return invalid(JSONRPC_CODES.INVALID_REQUEST, '"method" must be a non-empty string', `${pointer}/method`, answerId);
    if (isResponse) return withMethod(method, JSONRPC_CODES.INVALID_REQUEST, 'a message cannot be both a request and a response', pointer || '/', answerId);
    const rawParams = value['params'];
    if (rawParams !== undefined && !isObject(rawParams)) return withMethod(method, JSONRPC_CODES.INVALID_PARAMS, '"params" must be an object', `${pointer}/params`, answerId);
    const params = rawParams;
    const meta = params?.['_meta'];
    const version = isObject(meta) && typeof meta[VERSION_KEY] === 'string' ? (meta[VERSION_KEY]) : undefined;
    if (!hasOwn(value, 'id')) return { kind: 'notification', index, pointer, method, params, protocolVersion: version };
    if (id === undefined) return withMethod(method, JSONRPC_CODES.INVALID_REQUEST, '"id" must be a string or an integer (MCP forbids null)', `${pointer}/id`);

    let toolName: string | undefined;
    let args: JsonObject | undefined;
    if (method === 'tools/call') {
      const name = params?.['name'];
      if (typeof name !== 'string' || name.length === 0) return withMethod(method, JSONRPC_CODES.INVALID_PARAMS, 'tools/call needs "params.name", a non-empty string', `${pointer}/params/name`, id);
      // The name is never echoed: it is what is wrong, and it may be as large as the body.
      const nameProblem = toolNameProblem(name);
      if (nameProblem) return withMethod(method, JSONRPC_CODES.INVALID_PARAMS, `the tool name in "params.name" ${nameProblem} (MCP tool names are 1-${MAX_TOOL_NAME_LENGTH} of A-Z a-z 0-9 _ - . /)`, `${pointer}/params/name`, id);
      const rawArgs = params?.['arguments'];
      if (rawArgs !== undefined && !isObject(rawArgs)) return withMethod(method, JSONRPC_CODES.INVALID_PARAMS, '"params.arguments" must be an object', `${pointer}/params/arguments`, id);
      toolName = name;
      args = rawArgs ?? {};
    }
    const nameKey = NAME_BEARING[method];
    const mirrored = nameKey && params ? params[nameKey] : undefined;
    return {
      kind: 'request',
      index,
      pointer,
      id,
      method,
      params,
      toolName,
      arguments: args,
      mirroredName: typeof mirrored === 'string' ? mirrored : undefined,
      protocolVersion: version,
    };
  }

  if (!isResponse) return invalid(JSONRPC_CODES.INVALID_REQUEST, 'a message needs "method" (request or notification) or "result"/"error" (response)', pointer || '/', answerId);
  if (hasOwn(value, 'result') && hasOwn(value, 'error')) return invalid(JSONRPC_CODES.INVALID_REQUEST, 'a response has "result" or "error", not both', pointer || '/', answerId);
  if (!hasOwn(value, 'id') || (rawId !== null && id === undefined)) return invalid(JSONRPC_CODES.INVALID_REQUEST, 'a response needs an "id" (string, integer or null)', `${pointer}/id`);
  return { kind: 'response', index, pointer, id: id ?? null };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses a body into JSON-RPC messages under `limits`. A single invalid message, malformed JSON, a body over the
 * limits, an empty batch or (with `allowBatch: false`) any batch refuses the whole body; inside an accepted batch,
 * invalid entries are kept as `invalid` so they can be answered one by one.
 */
export function parseJsonRpcBody(body: Uint8Array | string, options: { limits?: Partial<JsonRpcLimits>; allowBatch?: boolean } = {}): JsonRpcInspection {
  const limits = { ...DEFAULT_JSONRPC_LIMITS, ...options.limits };
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  if (size > limits.maxBytes) {
    return { ok: false, problem: problem(JSONRPC_CODES.INVALID_REQUEST, `the body is ${size} bytes, over the ${limits.maxBytes}-byte limit`, '/', null, 'ERR_BODY_TOO_LARGE', 413) };
  }
  let text: string;
  if (typeof body === 'string') text = body;
  else {
    try {
      text = UTF8.decode(body);
    } catch {
      return { ok: false, problem: problem(JSONRPC_CODES.PARSE_ERROR, 'the body is not valid UTF-8', '/') };
    }
  }
  let parsed: ReturnType<typeof parseStrictJson>;
  try {
    parsed = parseStrictJson(text, limits.maxDepth);
  } catch (error) {
    if (!(error instanceof JsonParseError)) throw error;
    const where = error.kind === 'syntax' ? `line ${error.line}, column ${error.column}` : error.pointer || '/';
    const code = error.kind === 'syntax' ? JSONRPC_CODES.PARSE_ERROR : JSONRPC_CODES.INVALID_REQUEST;
    const what = error.kind === 'syntax' ? 'the body is not valid JSON' : error.kind === 'depth' ? 'the body nests too deeply' : 'the body repeats a key';
    return { ok: false, problem: problem(code, `${what}: ${error.message}`, where) };
  }
  const value = parsed.value;
  if (!Array.isArray(value)) {
    const message = inspectMessage(value, 0, '');
    if (message.kind === 'invalid') return { ok: false, problem: message.problem };
    return { ok: true, batch: false, messages: [message], text, spans: undefined, protocolVersion: versionOf([message]) };
  }
  if (options.allowBatch === false) return { ok: false, problem: problem(JSONRPC_CODES.INVALID_REQUEST, 'JSON-RPC batches are not allowed here', '/') };
  if (value.length === 0) return { ok: false, problem: problem(JSONRPC_CODES.INVALID_REQUEST, 'an empty batch', '/') };
  if (value.length > limits.maxBatchLength) {
    return { ok: false, problem: problem(JSONRPC_CODES.INVALID_REQUEST, `the batch has ${value.length} messages, over the limit of ${limits.maxBatchLength}`, '/') };
  }
  const messages = value.map((entry, index) => inspectMessage(entry, index, `/${index}`));
  return { ok: true, batch: true, messages, text, spans: parsed.elementSpans, protocolVersion: versionOf(messages) };
}

function versionOf(messages: readonly InspectedMessage[]): string | undefined {
  for (const message of messages) if ((message.kind === 'request' || message.kind === 'notification') && message.protocolVersion) return message.protocolVersion;
  return undefined;
}

/** The first protocol version whose requests carry their version and mirrored headers instead of sessions. */
export const MODERN_PROTOCOL_VERSION = '2026-07-28';
/** The only protocol version with JSON-RPC batches. */
export const BATCH_PROTOCOL_VERSION = '2025-03-26';

/** True for `2026-07-28` and later dated versions. */
export function isModernProtocol(version: string | undefined): boolean {
  return version !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(version) && version >= MODERN_PROTOCOL_VERSION;
}

/** Request headers in any case, as Node, fetch or gRPC metadata hand them over. */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

/** A tool argument a server asked clients to mirror into `Mcp-Param-<header>` (its `x-mcp-header`). */
export interface McpParamHeader {
  /** The full header name, lower-cased: `mcp-param-region`. */
  readonly header: string;
  /** Property path inside `arguments`. */
  readonly path: readonly string[];
  /** The JSON Schema type of the property. */
  readonly type: 'string' | 'integer' | 'boolean';
}

/** What `inspectMcpRequest` needs besides the body. */
export interface McpRequestInput {
  body: Uint8Array | string;
  headers: HeaderBag;
  limits?: Partial<JsonRpcLimits>;
  /**
   * The `x-mcp-header` annotations of a tool, as learned from its `tools/list` entry (see `mcpParamHeaders`).
   * Without them `Mcp-Param-*` headers are not recognised and, as the specification asks of intermediaries,
   * are passed on and otherwise ignored; they never influence a decision either way.
   */
  paramHeadersOf?: (toolName: string) => readonly McpParamHeader[] | undefined;
}

function lowerCased(headers: HeaderBag): Map<string, string | readonly string[]> {
  const out = new Map<string, string | readonly string[]>();
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out.set(name.toLowerCase(), value);
  return out;
}

/** Parses a body and, for protocol 2026-07-28 and later, checks the mirrored headers against it. */
export function inspectMcpRequest(input: McpRequestInput): JsonRpcInspection {
  const headers = lowerCased(input.headers);
  const versionHeader = headers.get('mcp-protocol-version');
  if (Array.isArray(versionHeader) && versionHeader.length > 1) {
    return { ok: false, problem: problem(JSONRPC_CODES.HEADER_MISMATCH, 'MCP-Protocol-Version is sent more than once', 'header MCP-Protocol-Version') };
  }
  const headerVersion = typeof versionHeader === 'string' ? versionHeader.trim() : versionHeader?.[0];
  const inspection = parseJsonRpcBody(input.body, { limits: input.limits });
  if (!inspection.ok) return inspection;
  const modern = isModernProtocol(headerVersion) || inspection.messages.some((message) => (message.kind === 'request' || message.kind === 'notification') && isModernProtocol(message.protocolVersion));
  if (inspection.batch) {
    // Batches came and went with 2025-03-26; a request without a version header may still be from that era.
    if (modern || (headerVersion !== undefined && headerVersion !== BATCH_PROTOCOL_VERSION)) {
      return { ok: false, problem: problem(JSONRPC_CODES.INVALID_REQUEST, `JSON-RPC batches exist only in protocol ${BATCH_PROTOCOL_VERSION}; this request is ${headerVersion ?? MODERN_PROTOCOL_VERSION}`, '/') };
    }
    const initialize = inspection.messages.find((message) => message.kind === 'request' && message.method === 'initialize');
    if (initialize) return { ok: false, problem: problem(JSONRPC_CODES.INVALID_REQUEST, 'initialize must not be part of a batch', initialize.pointer, (initialize as InspectedRequest).id) };
    return { ...inspection, protocolVersion: headerVersion ?? inspection.protocolVersion };
  }
  const message = inspection.messages[0];
  if (!modern || !message || message.kind === 'invalid' || message.kind === 'response') return { ...inspection, protocolVersion: headerVersion ?? inspection.protocolVersion };
  const mismatch = checkMirroredHeaders(message, headers, headerVersion, input.paramHeadersOf);
  if (mismatch) return { ok: false, problem: mismatch };
  return { ...inspection, protocolVersion: headerVersion };
}

// 'repeated' is named in the type to document the sentinel; no header value of a valid request equals it.
// eslint-disable-next-line @typescript-eslint/no-redundant-type-constituents
function singleHeader(headers: Map<string, string | readonly string[]>, name: string): string | undefined | 'repeated' {
  const value = headers.get(name);
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (value.length === 1) return value[0];
  return value.length === 0 ? undefined : 'repeated';
}

const BASE64_SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;

/** Decodes a header value that may use MCP's `=?base64?...?=` form; undefined when it is malformed. */
export function decodeMcpHeaderValue(value: string): string | undefined {
  if (!value.startsWith('=?base64?')) return /^[\x20-\x7e\t]*$/.test(value) ? value : undefined;
  const match = BASE64_SENTINEL.exec(value);
  const encoded = match?.[1];
  if (encoded === undefined || encoded.length % 4 !== 0) return undefined;
  try {
    return UTF8.decode(Buffer.from(encoded, 'base64'));
  } catch {
    return undefined;
  }
}

/** Longest caller-chosen value repeated in a mismatch message; enough to see which value differed. */
const MAX_ECHOED_VALUE = 128;

function echo(value: string): string {
  return truncate(value, MAX_ECHOED_VALUE);
}

function checkMirroredHeaders(
  message: InspectedRequest | InspectedNotification,
  headers: Map<string, string | readonly string[]>,
  headerVersion: string | undefined,
  paramHeadersOf: McpRequestInput['paramHeadersOf'],
): JsonRpcProblem | undefined {
  const id = message.kind === 'request' ? message.id : null;
  const mismatch = (message_: string, header: string): JsonRpcProblem => problem(JSONRPC_CODES.HEADER_MISMATCH, `Header mismatch: ${message_}`, `header ${header}`, id);

  if (headerVersion === undefined) return mismatch('MCP-Protocol-Version is required', 'MCP-Protocol-Version');
  if (message.protocolVersion !== headerVersion && (message.kind === 'request' || message.protocolVersion !== undefined)) {
    return mismatch(`MCP-Protocol-Version header value '${echo(headerVersion)}' does not match body value '${echo(message.protocolVersion ?? '(none)')}'`, 'MCP-Protocol-Version');
  }

  const method = singleHeader(headers, 'mcp-method');
  if (method === 'repeated') return mismatch('Mcp-Method is sent more than once', 'Mcp-Method');
  if (method === undefined && message.kind === 'request') return mismatch('Mcp-Method is required', 'Mcp-Method');
  if (method !== undefined && method !== message.method) return mismatch(`Mcp-Method header value '${echo(method)}' does not match body value '${echo(message.method)}'`, 'Mcp-Method');

  const name = singleHeader(headers, 'mcp-name');
  if (name === 'repeated') return mismatch('Mcp-Name is sent more than once', 'Mcp-Name');
  const bodyName = message.kind === 'request' ? message.mirroredName : undefined;
  if (name === undefined) {
    if (bodyName !== undefined) return mismatch(`Mcp-Name is required for ${echo(message.method)}`, 'Mcp-Name');
  } else {
    const decoded = decodeMcpHeaderValue(name);
    if (decoded === undefined) return mismatch('Mcp-Name is malformed', 'Mcp-Name');
    if (bodyName === undefined) return mismatch(`Mcp-Name is sent but the body of ${echo(message.method)} names nothing`, 'Mcp-Name');
    if (decoded !== bodyName) return mismatch(`Mcp-Name header value '${echo(decoded)}' does not match body value '${echo(bodyName)}'`, 'Mcp-Name');
  }

  if (message.kind !== 'request' || message.toolName === undefined || !paramHeadersOf) return undefined;
  const annotations = paramHeadersOf(message.toolName);
  if (!annotations) return undefined;
  for (const annotation of annotations) {
    const headerName = `Mcp-Param-${annotation.header.slice('mcp-param-'.length)}`;
    const sent = singleHeader(headers, annotation.header);
    if (sent === 'repeated') return mismatch(`${headerName} is sent more than once`, headerName);
    const bodyValue = valueAt(message.arguments ?? {}, annotation.path);
    const scalar = typeof bodyValue === 'string' || typeof bodyValue === 'boolean' || (typeof bodyValue === 'number' && Number.isFinite(bodyValue)) ? bodyValue : undefined;
    if (sent === undefined) {
      if (scalar !== undefined) return mismatch(`${headerName} is required because the body sets ${annotation.path.join('.')}`, headerName);
      continue;
    }
    const decoded = decodeMcpHeaderValue(sent);
    if (decoded === undefined) return mismatch(`${headerName} is malformed`, headerName);
    if (scalar === undefined) return mismatch(`${headerName} is sent but the body has no value at ${annotation.path.join('.')}`, headerName);
    const same = typeof scalar === 'number' ? decoded.trim() !== '' && Number(decoded) === scalar : typeof scalar === 'boolean' ? decoded === String(scalar) : decoded === scalar;
    if (!same) return mismatch(`${headerName} header value '${echo(decoded)}' does not match body value '${echo(String(scalar))}'`, headerName);
  }
  return undefined;
}

function valueAt(root: JsonObject, path: readonly string[]): JsonValue | undefined {
  let current: JsonValue | undefined = root;
  for (const key of path) {
    if (!isObject(current) || !hasOwn(current, key)) return undefined;
    current = current[key];
  }
  return current === null ? undefined : current;
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * The `x-mcp-header` annotations of a tool's `inputSchema`: properties reachable through `properties` alone, of type
 * string, integer or boolean, with a token-syntax header name unique ignoring case. Undefined when any annotation
 * breaks those rules, because the specification then makes the whole tool definition invalid.
 */
export function mcpParamHeaders(inputSchema: unknown): readonly McpParamHeader[] | undefined {
  const found: McpParamHeader[] = [];
  const seen = new Set<string>();
  let valid = true;
  const walk = (schema: unknown, path: string[], reachable: boolean): void => {
    if (!valid || typeof schema !== 'object' || schema === null) return;
    if (Array.isArray(schema)) {
      for (const item of schema) walk(item, path, false);
      return;
    }
    const node = schema as Record<string, unknown>;
    if (Object.prototype.hasOwnProperty.call(node, 'x-mcp-header')) {
      const header = node['x-mcp-header'];
      const type = node['type'];
      if (!reachable || path.length === 0 || typeof header !== 'string' || !TCHAR.test(header) || (type !== 'string' && type !== 'integer' && type !== 'boolean') || seen.has(header.toLowerCase())) {
        valid = false;
        return;
      }
      seen.add(header.toLowerCase());
      found.push(Object.freeze({ header: `mcp-param-${header.toLowerCase()}`, path: Object.freeze([...path]), type }));
    }
    for (const [key, inner] of Object.entries(node)) {
      if (key === 'properties' && typeof inner === 'object' && inner !== null && !Array.isArray(inner)) {
        for (const [property, propertySchema] of Object.entries(inner as Record<string, unknown>)) walk(propertySchema, [...path, property], reachable);
      } else if (key !== 'x-mcp-header') {
        walk(inner, path, false);
      }
    }
  };
  walk(inputSchema, [], true);
  return valid ? Object.freeze(found) : undefined;
}

/** A JSON-RPC error response. */
export interface JsonRpcErrorResponse {
  readonly jsonrpc: '2.0';
  readonly id: JsonRpcId | null;
  readonly error: { readonly code: number; readonly message: string; readonly data?: JsonValue };
}

/** Builds a JSON-RPC error response. */
export function jsonRpcError(id: JsonRpcId | null, code: number, message: string, data?: JsonValue): JsonRpcErrorResponse {
  return Object.freeze({ jsonrpc: '2.0', id, error: Object.freeze(data === undefined ? { code, message } : { code, message, data }) });
}

/** The answer to a refused body or batch entry: its JSON-RPC code, and the Skein code and place in `data`. */
export function problemResponse(refused: JsonRpcProblem): JsonRpcErrorResponse {
  return jsonRpcError(refused.id, refused.code, refused.message, { errorCode: refused.errorCode, where: refused.where });
}

/** The catalogue's code for a denial, by the stage that made it. */
export function denialErrorCode(denied: Decision): ErrorCode {
  if (denied.source === 'jwt') return 'ERR_UNAUTHENTICATED';
  if (denied.missingScopes) return 'ERR_MCP_INSUFFICIENT_SCOPE';
  if (denied.source === 'acl') return 'ERR_DIRECT_INVOKE_ACL_DENIED';
  if (denied.rule === 'invalid-jsonrpc' || denied.rule === 'body-on-bodyless-verb') return 'ERR_MALFORMED_REQUEST';
  return 'ERR_MCP_TOOL_DENIED';
}

/**
 * The answer to a call a policy denied: the request id, a JSON-RPC code outside the reserved range, and in `data`
 * the stable Skein code, the rule and the reason, so an agent can tell which rule stopped it and why.
 */
export function deniedResponse(id: JsonRpcId | null, denied: Decision): JsonRpcErrorResponse {
  const errorCode = denialErrorCode(denied);
  const data: { [key: string]: JsonValue } = { errorCode, source: denied.source, rule: denied.rule, reason: denied.reason };
  if (denied.tool !== undefined) data['tool'] = denied.tool;
  if (denied.missingScopes !== undefined) data['missingScopes'] = [...denied.missingScopes];
  return jsonRpcError(id, jsonRpcCodeFor(errorCode), `denied by ${denied.source} rule "${denied.rule}": ${denied.reason}`, data);
}

/** How a batch is split between the server and the sidecar. */
export interface BatchPlan {
  /** The batch to forward: the allowed entries, each byte for byte as sent; undefined when none is left. */
  readonly forward: string | undefined;
  /** Indexes of the forwarded entries in the original batch. */
  readonly forwarded: readonly number[];
  /** Answers the sidecar gives itself: one per refused request (refused notifications and responses get none). */
  readonly answers: readonly JsonRpcErrorResponse[];
}

/**
 * Splits a batch: `refuse` returns an error response for an entry that must not reach the server, or undefined to
 * forward it. Invalid entries are refused with their own problem. Nothing refused is ever in `forward`, so a
 * forbidden call cannot ride along with an allowed one.
 */
export function rewriteBatch(
  inspection: Extract<JsonRpcInspection, { ok: true }>,
  refuse: (message: Exclude<InspectedMessage, InvalidEntry>) => JsonRpcErrorResponse | undefined,
): BatchPlan {
  const parts: string[] = [];
  const forwarded: number[] = [];
  const answers: JsonRpcErrorResponse[] = [];
  for (const message of inspection.messages) {
    const answer = message.kind === 'invalid' ? problemResponse(message.problem) : refuse(message);
    if (answer) {
      // JSON-RPC never answers a notification, nor a response; an invalid entry is answered with id null.
      if (message.kind === 'request' || message.kind === 'invalid') answers.push(answer);
      continue;
    }
    const span = inspection.spans?.[message.index];
    parts.push(inspection.batch && span ? inspection.text.slice(span[0], span[1]) : inspection.text);
    forwarded.push(message.index);
  }
  if (!inspection.batch) return Object.freeze({ forward: parts[0], forwarded: Object.freeze(forwarded), answers: Object.freeze(answers) });
  return Object.freeze({ forward: parts.length > 0 ? `[${parts.join(',')}]` : undefined, forwarded: Object.freeze(forwarded), answers: Object.freeze(answers) });
}

/**
 * Adds the sidecar's own answers to the server's answer to a forwarded batch (`undefined` or empty when the server
 * answered 202). Returns the JSON text to send, or undefined when there is nothing to answer.
 */
export function mergeBatchAnswers(upstream: string | undefined, answers: readonly JsonRpcErrorResponse[]): string | undefined {
  const fromServer: unknown[] = [];
  if (upstream !== undefined && upstream.trim() !== '') {
    const parsed: unknown = JSON.parse(upstream);
    if (Array.isArray(parsed)) fromServer.push(...(parsed as unknown[]));
    else fromServer.push(parsed);
  }
  const all = [...fromServer, ...answers];
  return all.length === 0 ? undefined : JSON.stringify(all);
}

/**
 * Rewrites each JSON-RPC message in a response body (a single message or a batch) with `transform`; returns the
 * text unchanged when nothing changed or the body is not JSON. Used to filter `tools/list` results.
 */
export function transformJsonRpcResponses(text: string, transform: (message: Record<string, unknown>) => Record<string, unknown>): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return text;
  }
  let changed = false;
  const apply = (message: unknown): unknown => {
    if (typeof message !== 'object' || message === null || Array.isArray(message)) return message;
    const next = transform(message as Record<string, unknown>);
    if (next !== message) changed = true;
    return next;
  };
  const result = Array.isArray(parsed) ? parsed.map(apply) : apply(parsed);
  return changed ? JSON.stringify(result) : text;
}
