import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { KvBucket, ManualClock } from '@skein/core';
import { findNatsServer } from '../src/control/nats-server.js';
import { ReminderService, type StoredReminder } from '../src/actors/reminders.js';
import { ActivationTimers } from '../src/actors/timers.js';
import { planSchedule } from '../src/actors/schedule.js';

/** A plain JetStream nats-server on a free port, for the bus the reminders live on (no mock of the server). */
async function startNats(): Promise<{ url: string; stop(): Promise<void> }> {
  const binary = findNatsServer();
  if (!binary) throw new Error('nats-server is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'skein-clock-test-'));
  const child: ChildProcess = spawn(binary, ['-js', '-a', '127.0.0.1', '-p', '-1', '-sd', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let port: string | undefined;
    child.once('exit', (code) => reject(new Error(`nats-server exited with ${code ?? 'a signal'}`)));
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      port ??= /Listening for client connections on [\d.]+:(\d+)/.exec(line)?.[1];
      if (port && /Server is ready/.test(line)) resolve(`nats://127.0.0.1:${port}`);
    });
  });
  return {
    url,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('actor scheduling on a manual clock (no real waiting)', function () {
  it('activation timers fire at their due time and then every period, as the clock moves', async function () {
    const clock = new ManualClock();
    const fired: number[] = [];
    const timers = new ActivationTimers(async () => {
      fired.push(clock.now());
      return 'keep';
    }, clock);
    const start = clock.now();
    const spec = { dueTime: '10s', period: '5s', ttl: '12s', data: undefined, callback: undefined };
    timers.set('tick', spec, planSchedule(spec, start));
    await clock.advanceAsync(9_999);
    assert.deepEqual(fired, []);
    await clock.advanceAsync(1);
    assert.deepEqual(fired, [start + 10_000]);
    await clock.advanceAsync(5_000);
    assert.deepEqual(fired, [start + 10_000, start + 15_000]);
    // The TTL (12 s after the first fire) ends it before the fire due at 25 s.
    await clock.advanceAsync(60_000);
    assert.deepEqual(fired, [start + 10_000, start + 15_000, start + 20_000]);
    assert.equal(timers.size, 0);
    assert.equal(clock.pending, 0);
  });

  describe('durable reminders', function () {
    let nats: { url: string; stop(): Promise<void> };
    let nc: NatsConnection;

    before(async function () {
      nats = await startNats();
      nc = await connect({ servers: nats.url });
    });
    after(async function () {
      await nc?.close();
      await nats?.stop();
    });

    it('arm at the due time, fire as the clock passes it, and record each fire so the next is one period on', async function () {
      const clock = new ManualClock();
      const fires: Array<{ reminder: StoredReminder; at: number }> = [];
      const service = new ReminderService(
        new KvBucket(nc, 'actorReminders'),
        'default',
        {
          owns: () => true,
          fire: async (reminder) => {
            fires.push({ reminder, at: clock.now() });
            return { status: 200, cancel: false };
          },
        },
        clock,
      );
      try {
        await service.watch(['Counter']);
        const start = clock.now();
        const request = { dueTime: '10s', period: 'R3/PT5S', ttl: undefined, data: { n: 1 } };
        await service.create('Counter', 'c1', 'nag', request, planSchedule(request, start), start);
        // The watch delivers the new record and the owner arms one timer for it.
        await clock.whenPending(1);
        assert.equal(clock.nextDelay(), 10_000);
        await clock.advanceAsync(9_999);
        assert.equal(fires.length, 0);

        await clock.advanceAsync(1);
        assert.deepEqual(fires.map((fire) => [fire.at, fire.reminder.name, fire.reminder.data]), [[start + 10_000, 'nag', { n: 1 }]]);
        // Re-armed only once the fire is recorded in the bucket.
        await clock.whenPending(1);
        assert.equal(clock.nextDelay(), 5_000);
        assert.deepEqual(await progress(service), { fired: 1, nextFireAt: start + 15_000 });

        await clock.advanceAsync(5_000);
        await clock.whenPending(1);
        assert.deepEqual(fires.map((fire) => fire.at), [start + 10_000, start + 15_000]);
        assert.deepEqual(await progress(service), { fired: 2, nextFireAt: start + 20_000 });

        // The third repetition is the last: the reminder is deleted after it.
        await clock.advanceAsync(5_000);
        assert.equal(fires.length, 3);
        assert.equal(fires[2]?.at, start + 20_000);
        assert.equal(await eventuallyGone(service), true);
        assert.equal(clock.pending, 0);
      } finally {
        service.stop();
      }
    });
  });
});

async function progress(service: ReminderService): Promise<{ fired: number; nextFireAt: number } | undefined> {
  const stored = await service.get('Counter', 'c1', 'nag');
  return stored ? { fired: stored.fired, nextFireAt: stored.nextFireAt } : undefined;
}

/** The delete after the last fire is the service's own write: read until it has landed (bounded, no sleeps). */
async function eventuallyGone(service: ReminderService): Promise<boolean> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    if ((await service.get('Counter', 'c1', 'nag')) === undefined) return true;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return false;
}
