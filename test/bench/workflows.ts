/**
 * The `workflows` part: workflows authored with `@dapr/dapr` (a worker and a client in the benchmark process, as an
 * app writes them) run through one sidecar with its placement, against a baseline measured in the same run: the
 * JetStream operations a chained activity cannot do without (append to a history, publish a work item, take it from
 * a work queue, append its result), sent with the same NATS client library straight to the same nats-server.
 * Reports latency end to end, start → first activity, throughput with many workflows in flight, a 1,000-activity
 * fan-out with fan-in, and how one step's cost grows with the history replayed. No assertions on numbers.
 */
import { performance } from 'node:perf_hooks';
import { DaprWorkflowClient, LogLevel, WorkflowRuntime, WorkflowRuntimeStatus, type WorkflowActivityContext, type WorkflowContext } from '@dapr/dapr';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { mintOperatorTls, readCa } from '@skein/core';
import type { Harness } from '../src/harness.js';
import { count, markdownTable, ms, ratio, say, targetsTable, type Target } from './report.js';
import { cpuTimeOf, natsPid } from './resources.js';
import type { Settings } from './settings.js';
import { summarise, type LatencySummary } from './stats.js';

/** The speed goals of the workflows issue. */
const TARGETS = { completedPerSecond: 200, chainedP50Ms: 30, firstActivityP50Ms: 5, fanOutMs: 3000 };
const CHAIN_LENGTH = 5;
const FAN_OUT = 1000;
const PLACEMENT_ARGS = ['--batch-window', '20ms'];

export interface WorkflowsReport {
  /** One chained workflow at a time through Skein, and the raw JetStream floor of the same number of steps. */
  sequential: { skein: LatencySummary; raw: LatencySummary; firstActivity: LatencySummary };
  /** Workflows started together, `inFlight` at a time, until `total` completed. */
  throughput: Array<{ inFlight: number; total: number; seconds: number; perSecond: number; latency: LatencySummary; failed: number; cpuMsPerWorkflow: { sidecar: number; nats: number; app: number } }>;
  fanOut: { activities: number; ms: number[] };
  /** A long chain: the mean of a step among its first and last `window` steps, and the history length between. */
  replay: { steps: number; window: number; firstMeanMs: number; lastMeanMs: number; eventsBetween: number; perThousandEventsMs: number };
  targets: Target[];
  elapsedSeconds: number;
}

/** When each instance's first activity began (ms on the benchmark process's clock). */
const firstActivity = new Map<string, number>();
/** When the n-th step of the long chain ran. */
const stepTimes: number[] = [];

const step = (ctx: WorkflowActivityContext, n: number): number => {
  const id = ctx.getWorkflowInstanceId();
  if (!firstActivity.has(id)) firstActivity.set(id, performance.now());
  return n + 1;
};
const mark = (_ctx: WorkflowActivityContext, n: number): number => {
  stepTimes[n] = performance.now();
  return n + 1;
};
const chained = async function* chained(ctx: WorkflowContext, input: number): AsyncGenerator<unknown, number, number> {
  let value = input;
  for (let i = 0; i < CHAIN_LENGTH; i++) value = yield ctx.callActivity(step, value);
  return value;
};
const fanOut = async function* fanOut(ctx: WorkflowContext, n: number): AsyncGenerator<unknown, number, number[]> {
  const results = yield ctx.whenAll(Array.from({ length: n }, (_, i) => ctx.callActivity(step, i)));
  return results.length;
};
const longChain = async function* longChain(ctx: WorkflowContext, steps: number): AsyncGenerator<unknown, number, number> {
  let value = 1;
  while (value < steps) value = yield ctx.callActivity(mark, value);
  return value;
};

export async function runWorkflows(harness: Harness, settings: Settings): Promise<WorkflowsReport> {
  const began = performance.now();
  say('workflows: placement, a sidecar with a workflow worker and client (@dapr/dapr) in this process');
  const placement = await harness.placement('bench-workflows', PLACEMENT_ARGS);
  await placement.proc.waitForRecord('became leader');
  const sidecar = await harness.sidecar({ appId: 'bench-workflows', args: ['--placement-address', placement.address] });
  const ready = await sidecar.proc.waitForRecord('ready', { what: 'sidecar' });
  const daprPort = String(ready['grpcPort']);
  const quiet = { level: LogLevel.Error };
  const runtime = new WorkflowRuntime({ daprHost: '127.0.0.1', daprPort, logger: quiet })
    .registerWorkflow(chained)
    .registerWorkflow(fanOut)
    .registerWorkflow(longChain)
    .registerActivity(step)
    .registerActivity(mark);
  const client = new DaprWorkflowClient({ daprHost: '127.0.0.1', daprPort, logger: quiet });
  // durabletask-js writes a console line per work item whatever the logger level; the report owns stdout.
  const consoleBefore = { log: console.log, info: console.info, debug: console.debug };
  console.log = console.info = console.debug = (): void => undefined;
  const natsUrl = harness.natsHandle?.url;
  if (!natsUrl) throw new Error('start NATS before the workflows part');
  const nc = await connect({ servers: natsUrl, tls: (({ certPem, keyPem, caPem }) => ({ cert: certPem, key: keyPem, ca: caPem }))(mintOperatorTls(readCa(harness.home), 'bench-workflows')) });
  try {
    await runtime.start();
    await sidecar.proc.waitForRecord('workflow worker connected');
    // The actor type is placed once the worker is connected; the first start may wait for that round.
    await untilPlaced(client);

    const runOne = async (input: number): Promise<{ ms: number; firstMs: number }> => {
      const t0 = performance.now();
      const id = await client.scheduleNewWorkflow(chained, input);
      const state = await client.waitForWorkflowCompletion(id, false, 60);
      if (state?.runtimeStatus !== WorkflowRuntimeStatus.COMPLETED) throw new Error(`workflow ${id} ended ${String(state?.runtimeStatus)}`);
      const first = firstActivity.get(id) ?? Number.NaN;
      firstActivity.delete(id);
      return { ms: performance.now() - t0, firstMs: first - t0 };
    };
    const sequentialCount = settings.quick ? 100 : 300;
    say(`workflows: ${sequentialCount} chained workflows of ${CHAIN_LENGTH} activities one at a time, and the raw JetStream floor`);
    for (let i = 0; i < 20; i++) await runOne(i);
    const raw = await rawFloor(nc, 20);
    const skeinSamples: number[] = [];
    const firstSamples: number[] = [];
    const rawSamples: number[] = [];
    // Alternating blocks, so drift in background load hits both paths.
    for (let block = 0; block < 5; block++) {
      for (let i = 0; i < sequentialCount / 5; i++) {
        const one = await runOne(i);
        skeinSamples.push(one.ms);
        firstSamples.push(one.firstMs);
      }
      rawSamples.push(...(await raw.run(sequentialCount / 5)));
    }
    await raw.close();

    const throughput: WorkflowsReport['throughput'] = [];
    for (const inFlight of settings.quick ? [50] : [50, 200]) {
      const total = settings.quick ? 400 : 1000;
      say(`workflows: ${total} chained workflows, ${inFlight} in flight`);
      let next = 0;
      let failed = 0;
      const latencies: number[] = [];
      const pids = { sidecar: sidecar.proc.pid, nats: natsPid(harness) };
      const cpuBefore = { sidecar: cpuTimeOf(pids.sidecar), nats: cpuTimeOf(pids.nats), app: process.cpuUsage() };
      const t0 = performance.now();
      await Promise.all(Array.from({ length: inFlight }, async () => {
        while (next < total) {
          next++;
          const one = await runOne(next).catch(() => undefined);
          if (one) latencies.push(one.ms);
          else failed++;
        }
      }));
      const seconds = (performance.now() - t0) / 1000;
      const app = process.cpuUsage(cpuBefore.app);
      const per = (spentMs: number): number => spentMs / Math.max(1, latencies.length);
      const cpuMsPerWorkflow = { sidecar: per(cpuTimeOf(pids.sidecar) - cpuBefore.sidecar), nats: per(cpuTimeOf(pids.nats) - cpuBefore.nats), app: per((app.user + app.system) / 1000) };
      throughput.push({ inFlight, total, seconds, perSecond: latencies.length / seconds, latency: summarise(latencies), failed, cpuMsPerWorkflow });
    }

    say(`workflows: a fan-out of ${FAN_OUT} activities with fan-in, 3 times`);
    const fanOutMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const id = await client.scheduleNewWorkflow(fanOut, FAN_OUT);
      const state = await client.waitForWorkflowCompletion(id, true, 120);
      if (state?.serializedOutput !== String(FAN_OUT)) throw new Error(`fan-out ${id} ended ${String(state?.runtimeStatus)}`);
      fanOutMs.push(performance.now() - t0);
    }

    const steps = settings.quick ? 200 : 500;
    const window = 50;
    say(`workflows: one chain of ${steps} activities (replay cost)`);
    stepTimes.length = 0;
    const longId = await client.scheduleNewWorkflow(longChain, steps);
    await client.waitForWorkflowCompletion(longId, false, 300);
    // The chain counts from 1 (the SDK passes an input of 0 as no input at all).
    const times = stepTimes.filter((t) => t !== undefined);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
    const firstMeanMs = mean(gaps.slice(0, window));
    const lastMeanMs = mean(gaps.slice(-window));
    // Each step adds TaskScheduled + TaskCompleted, and the orchestrator's start and end of the step's replay.
    const eventsBetween = (gaps.length - window) * 4;
    const replay = { steps, window, firstMeanMs, lastMeanMs, eventsBetween, perThousandEventsMs: ((lastMeanMs - firstMeanMs) / eventsBetween) * 1000 };

    const skein = summarise(skeinSamples);
    const best = throughput.reduce((a, b) => (b.perSecond > a.perSecond ? b : a));
    const firstActivitySummary = summarise(firstSamples);
    const fan = summarise(fanOutMs);
    const targets: Target[] = [
      { what: `completed workflows/s (${CHAIN_LENGTH} chained activities, ${best.inFlight} in flight)`, target: `≥ ${TARGETS.completedPerSecond}`, measured: count(best.perSecond), met: best.perSecond >= TARGETS.completedPerSecond },
      { what: 'one workflow end to end at low load, p50', target: `≤ ${TARGETS.chainedP50Ms} ms`, measured: `${ms(skein.p50)} ms`, met: skein.p50 <= TARGETS.chainedP50Ms },
      { what: 'start → first activity, p50', target: `≤ ${TARGETS.firstActivityP50Ms} ms`, measured: `${ms(firstActivitySummary.p50)} ms`, met: firstActivitySummary.p50 <= TARGETS.firstActivityP50Ms },
      { what: `fan-out/fan-in of ${FAN_OUT} activities, median`, target: `≤ ${TARGETS.fanOutMs / 1000} s`, measured: `${ms(fan.p50)} ms`, met: fan.p50 <= TARGETS.fanOutMs },
    ];
    return {
      sequential: { skein, raw: summarise(rawSamples), firstActivity: firstActivitySummary },
      throughput,
      fanOut: { activities: FAN_OUT, ms: fanOutMs },
      replay,
      targets,
      elapsedSeconds: (performance.now() - began) / 1000,
    };
  } finally {
    await client.stop().catch(() => undefined);
    await runtime.stop().catch(() => undefined);
    await nc.close().catch(() => undefined);
    Object.assign(console, consoleBefore);
    await Promise.all([sidecar.proc.stop(), placement.proc.stop()]);
  }
}

/** Starts workflows until one is accepted: the instance actor type is placed a moment after the worker connects. */
async function untilPlaced(client: DaprWorkflowClient): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    try {
      const id = await client.scheduleNewWorkflow(chained, 0);
      await client.waitForWorkflowCompletion(id, false, 30);
      return;
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * The floor: per workflow, what a chained-activity engine on JetStream must do at least — append the start; per
 * activity append the step, publish the work item, take it from a work-queue consumer and acknowledge it, append
 * its result. Sequential, acknowledged publishes, on streams of its own (file storage, like Skein's).
 */
async function rawFloor(nc: NatsConnection, warmup: number): Promise<{ run(n: number): Promise<number[]>; close(): Promise<void> }> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  await jsm.streams.add({ name: 'bench-raw-history', subjects: ['bench.raw.history.>'], storage: StorageType.File });
  await jsm.streams.add({ name: 'bench-raw-work', subjects: ['bench.raw.work'], storage: StorageType.File, retention: RetentionPolicy.Workqueue });
  await jsm.consumers.add('bench-raw-work', { durable_name: 'raw', ack_policy: AckPolicy.Explicit });
  const consumer = await js.consumers.get('bench-raw-work', 'raw');
  const messages = await consumer.consume({ max_messages: 64 });
  const iterator = messages[Symbol.asyncIterator]();
  let instance = 0;
  const one = async (): Promise<number> => {
    const t0 = performance.now();
    const subject = `bench.raw.history.${instance++}`;
    await js.publish(subject, '{"started":1}');
    for (let i = 0; i < CHAIN_LENGTH; i++) {
      await js.publish(subject, '{"stepped":1}');
      await js.publish('bench.raw.work', '{"activity":1}');
      const taken = await iterator.next();
      if (taken.done) throw new Error('the raw work queue closed');
      await js.publish(subject, '{"completed":1}');
      taken.value.ack();
    }
    return performance.now() - t0;
  };
  for (let i = 0; i < warmup; i++) await one();
  return {
    async run(n: number): Promise<number[]> {
      const samples: number[] = [];
      for (let i = 0; i < n; i++) samples.push(await one());
      return samples;
    },
    async close(): Promise<void> {
      messages.stop();
      await jsm.streams.delete('bench-raw-work');
      await jsm.streams.delete('bench-raw-history');
    },
  };
}

export function renderWorkflows(report: WorkflowsReport): string {
  const out: string[] = ['## Workflows', ''];
  const s = report.sequential;
  const header = ['path', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'samples'];
  const row = (label: string, l: LatencySummary): string[] => [label, ms(l.p50), ms(l.p90), ms(l.p99), ms(l.max), count(l.count)];
  out.push(`A workflow of ${CHAIN_LENGTH} chained activities written with \`@dapr/dapr\` (worker and client in the benchmark process), started with \`scheduleNewWorkflow\` and awaited with \`waitForWorkflowCompletion\`, through one sidecar; the floor is the JetStream work such a workflow cannot avoid, sent straight to the same nats-server.`, '');
  out.push('### One at a time', '');
  out.push(markdownTable(header, [row('Skein, start → completed', s.skein), row('raw JetStream floor', s.raw), row('Skein, start → first activity running', s.firstActivity)]), '');
  out.push(`Skein ÷ floor at p50: ${ratio(s.skein.p50 / s.raw.p50)}.`, '');
  out.push('### Many in flight', '');
  out.push(markdownTable(['in flight', 'completed', 'failed', 'seconds', 'workflows/s', 'p50 ms', 'p99 ms', 'CPU ms/workflow: sidecar', 'nats-server', 'app (SDK worker + client)'], report.throughput.map((t) => [String(t.inFlight), count(t.latency.count), String(t.failed), t.seconds.toFixed(1), count(t.perSecond), ms(t.latency.p50), ms(t.latency.p99), ms(t.cpuMsPerWorkflow.sidecar), ms(t.cpuMsPerWorkflow.nats), ms(t.cpuMsPerWorkflow.app)])), '');
  out.push('CPU per completed workflow over the phase, all threads of each process; on 2 cores the three together bound the rate.', '');
  out.push(`### Fan-out of ${count(report.fanOut.activities)} activities with fan-in`, '');
  out.push(`Runs: ${report.fanOut.ms.map((value) => `${ms(value)} ms`).join(', ')}.`, '');
  const r = report.replay;
  out.push('### Replay', '');
  out.push(`One chain of ${count(r.steps)} activities: a step took ${ms(r.firstMeanMs)} ms on average among the first ${r.window} and ${ms(r.lastMeanMs)} ms among the last ${r.window}, about ${count(r.eventsBetween)} history events later: ${ms(r.perThousandEventsMs)} ms more per step per 1,000 events replayed.`, '');
  out.push('### Targets', '', targetsTable(report.targets), '');
  return out.join('\n');
}
