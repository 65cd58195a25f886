import { accessDeniedError, evaluateAccessControl, type CompiledAccessControl } from '../acl/access-control.js';
import type { Handler, Middleware, Call, CallResponse } from './pipeline.js';
import type { DecisionSink } from './decisions.js';

/**
 * App-ID access control, first stage of the callee's inbound pipeline: the caller's SPIFFE ID from its
 * certificate, the operation and the verb against the compiled `Configuration.spec.accessControl`.
 * A denial answers Dapr's 403 and nothing reaches the app.
 */
export class AccessControlMiddleware implements Middleware {
  readonly name = 'access-control';
  private readonly compiled: CompiledAccessControl;
  private readonly sink: DecisionSink;

  constructor(compiled: CompiledAccessControl, sink: DecisionSink) {
    this.compiled = compiled;
    this.sink = sink;
  }

  async handle(request: Call, next: Handler): Promise<CallResponse> {
    const access = { caller: request.caller, operation: `/${request.method}`, httpVerb: request.verb };
    const decided = evaluateAccessControl(this.compiled, access);
    request.decisions.push(decided);
    this.sink.record(decided, request);
    if (!decided.allowed) throw accessDeniedError(decided, access);
    return next(request);
  }
}
