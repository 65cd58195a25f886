import { SpanKind, failSpan, type Tracing } from '../telemetry/tracing.js';
import { asSkeinError } from '@skein/core';
import type { Handler, Middleware, Call, CallResponse } from './pipeline.js';

/**
 * Runs `stage` inside a span of its own, child of the call's current span, so a trace shows each policy stage
 * nested around the ones after it. Decisions made by the stage become events on this span.
 */
export function traced(stage: Middleware, tracing: Tracing): Middleware {
  if (!tracing.enabled) return stage;
  return {
    name: stage.name,
    async handle(request: Call, next: Handler): Promise<CallResponse> {
      const parent = request.trace;
      if (!parent) return stage.handle(request, next);
      const scope = tracing.start(`skein ${stage.name}`, SpanKind.INTERNAL, parent.context, { 'skein.stage': stage.name });
      request.trace = scope;
      try {
        return await stage.handle(request, next);
      } catch (error) {
        const failure = asSkeinError(error);
        failSpan(scope.span, failure.code, failure.message);
        throw error;
      } finally {
        scope.span.end();
        request.trace = parent;
      }
    },
  };
}
