/**
 * A one-shot network probe run inside a network namespace (`ip netns exec`), so tests can send traffic from a
 * host other than their own: an HTTP request read whole, or a bare TCP connect. It prints one line,
 * `{"report": ...}`, and exits 0 whatever the network said; only a bad argument is a failure.
 */
import { connect } from 'node:net';
import { httpRequest } from '../http.js';
import type { ProbeReport, ProbeSpec } from '../netns.js';

// A guard against a probe outliving its test when a packet is silently dropped, not a synchronisation delay.
const DEADLINE_MS = 10_000;

let reported = false;

function report(value: ProbeReport): void {
  // A late answer after the deadline (or the reverse) must not print a second report.
  if (reported) return;
  reported = true;
  // Exit only once the line has reached the pipe, or the test could read nothing.
  process.stdout.write(`${JSON.stringify({ report: value })}\n`, () => process.exit(0));
}

function failed(error: unknown): ProbeReport {
  const code = (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
  return { error: code, message: (error as Error).message };
}

const spec = JSON.parse(process.argv[2] ?? 'null') as ProbeSpec | null;
if (!spec) {
  process.stderr.write('usage: net-probe \'{"kind":"http","url":...}\' | \'{"kind":"tcp","host":...,"port":...}\'\n');
  process.exit(2);
}
setTimeout(() => report({ error: 'ETIMEDOUT', message: `no answer within ${DEADLINE_MS} ms` }), DEADLINE_MS).unref();

if (spec.kind === 'http') {
  const { url, ...options } = spec;
  httpRequest(url, options).then(
    ({ status, headers, body }) => report({ response: { status, headers, body } }),
    (error: unknown) => report(failed(error)),
  );
} else {
  const socket = connect({ host: spec.host, port: spec.port });
  socket.once('connect', () => {
    socket.destroy();
    report({ connected: true });
  });
  socket.once('error', (error) => report(failed(error)));
}
