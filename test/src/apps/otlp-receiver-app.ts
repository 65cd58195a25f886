/**
 * The tests' OTLP/HTTP receiver as a process of its own, for the benchmark: decoding exported spans then costs CPU
 * in this process, as it would in a collector, not on the event loop that times the requests. Prints
 * `{"listening":<port>}`, then `{"spans":<total so far>}` after each delivery. Spans are counted and dropped, so
 * memory stays flat however long the run.
 */
import { OtlpReceiver } from '../otlp-receiver.js';

const receiver = new OtlpReceiver();
let total = 0;
receiver.on('spans', () => {
  total += receiver.spans.splice(0).length;
  process.stdout.write(`${JSON.stringify({ spans: total })}\n`);
});
await receiver.start();
process.stdout.write(`${JSON.stringify({ listening: receiver.port })}\n`);
process.on('SIGTERM', () => void receiver.stop().then(() => process.exit(0)));
