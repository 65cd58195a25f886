import type { KV, KvEntry, KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/nats-core';
import { SkeinError, logger, parsePeriod, isRevisionConflict, sleep, systemClock, type Clock, type KvBucket, type TimerHandle } from '@skein/core';
import { reminderKey, reminderTypeFilter } from './names.js';
import type { ReminderRequest } from './requests.js';
import { advance, isExpired, startProgress, type Schedule } from './schedule.js';

const log = logger('actors');

/** A reminder as stored in JetStream: the request as given, and how far its schedule has got. */
export interface StoredReminder {
  actorType: string;
  actorId: string;
  name: string;
  dueTime?: string | undefined;
  period?: string | undefined;
  ttl?: string | undefined;
  data?: unknown;
  registeredAt: number;
  firstFireAt: number;
  expiresAt?: number | undefined;
  nextFireAt: number;
  fired: number;
}

/** What firing a reminder needs from the actor runtime. */
export interface ReminderHost {
  /** True when this sidecar owns the actor in its current table. */
  owns(actorType: string, actorId: string): boolean;
  /** Runs the reminder as one turn here; 'moved' when another sidecar owns the actor now. */
  fire(reminder: StoredReminder): Promise<'moved' | { status: number; cancel: boolean }>;
}

/** Pauses before retrying a fire the app did not acknowledge; after the last, the fire counts as done. */
const RETRY_DELAYS_MS = [1000, 2000, 4000];
/** setTimeout's ceiling; longer waits are re-armed in steps. */
const MAX_TIMER_MS = 2_000_000_000;

interface Tracked {
  reminder: StoredReminder;
  revision: number;
  timer: TimerHandle | undefined;
  failures: number;
}

/** The schedule a stored reminder was created with. */
function scheduleOf(reminder: StoredReminder): Schedule {
  return { firstFireAt: reminder.firstFireAt, period: parsePeriod(reminder.period), expiresAt: reminder.expiresAt };
}

/**
 * Reminders of one namespace, durable in a JetStream KV bucket: one entry per reminder, holding its schedule's
 * progress. Every sidecar that hosts an actor type watches that type's reminders, but only the actor's current
 * owner arms a timer for one, so a reminder moves with its actor and never fires on two hosts at once. After each
 * fire the owner writes the next fire time back with compare-and-set; if the owner dies between the fire and the
 * write, the next owner fires again (at least once).
 */
export class ReminderService {
  private readonly bucket: KvBucket;
  private readonly namespace: string;
  private readonly host: ReminderHost;
  private readonly clock: Clock;
  private readonly tracked = new Map<string, Tracked>();
  private readonly watchers = new Map<string, QueuedIterator<KvWatchEntry>>();
  private stopped = false;

  constructor(bucket: KvBucket, namespace: string, host: ReminderHost, clock: Clock = systemClock) {
    this.bucket = bucket;
    this.namespace = namespace;
    this.host = host;
    this.clock = clock;
  }

  /** Creates or replaces a reminder. */
  async create(actorType: string, actorId: string, name: string, request: ReminderRequest, schedule: Schedule, now: number): Promise<void> {
    const reminder: StoredReminder = {
      actorType,
      actorId,
      name,
      dueTime: request.dueTime,
      period: request.period,
      ttl: request.ttl,
      data: request.data,
      registeredAt: now,
      firstFireAt: schedule.firstFireAt,
      expiresAt: schedule.expiresAt,
      ...startProgress(schedule),
    };
    try {
      await this.bucket.use((kv) => kv.put(reminderKey(this.namespace, actorType, actorId, name), JSON.stringify(reminder)));
    } catch (error) {
      throw new SkeinError('ERR_ACTOR_REMINDER_CREATE', `error creating actor reminder: ${(error as Error).message}`, { cause: error });
    }
  }

  /** The stored reminder, or undefined. */
  async get(actorType: string, actorId: string, name: string): Promise<StoredReminder | undefined> {
    let entry: KvEntry | null;
    try {
      entry = await this.bucket.use((kv) => kv.get(reminderKey(this.namespace, actorType, actorId, name)));
    } catch (error) {
      throw new SkeinError('ERR_ACTOR_REMINDER_GET', `error getting actor reminder: ${(error as Error).message}`, { cause: error });
    }
    return entry && entry.operation === 'PUT' ? entry.json<StoredReminder>() : undefined;
  }

  /** Deletes a reminder (deleting one that does not exist is not an error, as in Dapr). */
  async delete(actorType: string, actorId: string, name: string): Promise<void> {
    try {
      await this.bucket.use((kv) => kv.delete(reminderKey(this.namespace, actorType, actorId, name)));
    } catch (error) {
      throw new SkeinError('ERR_ACTOR_REMINDER_DELETE', `error deleting actor reminder: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Starts watching the reminders of `actorTypes` (the types this sidecar hosts). */
  async watch(actorTypes: readonly string[]): Promise<void> {
    for (const actorType of actorTypes) {
      if (!this.watchers.has(actorType)) await this.watchType(actorType);
    }
  }

  /**
   * One watch per type (NATS 2.9 has no multi-filter consumers). The watch delivers every reminder's latest record,
   * then each change; if it ends for any reason but `stop()`, it is opened again after a pause, and the records it
   * delivers anew change nothing that is already known.
   */
  private async watchType(actorType: string): Promise<void> {
    const iterator = await this.bucket.use((kv: KV) => kv.watch({ key: reminderTypeFilter(this.namespace, actorType) }));
    this.watchers.set(actorType, iterator);
    void (async () => {
      let reason = 'the watch ended';
      try {
        for await (const entry of iterator) this.apply(entry);
      } catch (error) {
        reason = (error as Error).message;
      }
      if (this.stopped || this.watchers.get(actorType) !== iterator) return;
      log.warn('reminder watch ended; watching again', { actorType, reason });
      for (;;) {
        await sleep(this.clock, 1000);
        if (this.stopped) return;
        try {
          await this.watchType(actorType);
          return;
        } catch (error) {
          log.warn('reminder watch cannot be opened yet', { actorType, reason: (error as Error).message });
        }
      }
    })();
  }

  /** Arms the reminders this sidecar owns now and disarms the others (after every table change). */
  reschedule(): void {
    for (const [key, tracked] of this.tracked) this.arm(key, tracked);
  }

  /** Number of reminders tracked, and of those armed here. */
  get counts(): { tracked: number; armed: number } {
    let armed = 0;
    for (const tracked of this.tracked.values()) if (tracked.timer) armed++;
    return { tracked: this.tracked.size, armed };
  }

  stop(): void {
    this.stopped = true;
    for (const iterator of this.watchers.values()) iterator.stop();
    for (const tracked of this.tracked.values()) this.clock.clearTimeout(tracked.timer);
    this.tracked.clear();
  }

  private apply(entry: KvWatchEntry): void {
    const known = this.tracked.get(entry.key);
    if (entry.operation !== 'PUT') {
      this.clock.clearTimeout(known?.timer);
      this.tracked.delete(entry.key);
      return;
    }
    // Our own write-back arrives here too; an older revision than the one we hold changes nothing.
    if (known && known.revision >= entry.revision) return;
    let reminder: StoredReminder;
    try {
      reminder = entry.json<StoredReminder>();
    } catch {
      log.warn('ignored a malformed reminder record', { key: entry.key });
      return;
    }
    this.clock.clearTimeout(known?.timer);
    const tracked: Tracked = { reminder, revision: entry.revision, timer: undefined, failures: 0 };
    this.tracked.set(entry.key, tracked);
    this.arm(entry.key, tracked);
  }

  private arm(key: string, tracked: Tracked, delayOverrideMs?: number): void {
    this.clock.clearTimeout(tracked.timer);
    tracked.timer = undefined;
    if (this.stopped || !this.host.owns(tracked.reminder.actorType, tracked.reminder.actorId)) return;
    const delay = delayOverrideMs ?? Math.max(0, tracked.reminder.nextFireAt - this.clock.now());
    log.debug('reminder armed', { actorType: tracked.reminder.actorType, actorId: tracked.reminder.actorId, name: tracked.reminder.name, delayMs: delay });
    tracked.timer = this.clock.setTimeout(() => {
      tracked.timer = undefined;
      if (delay >= MAX_TIMER_MS && delayOverrideMs === undefined && tracked.reminder.nextFireAt > this.clock.now()) this.arm(key, tracked);
      else void this.fire(key, tracked);
    }, Math.min(delay, MAX_TIMER_MS));
  }

  private async fire(key: string, tracked: Tracked): Promise<void> {
    if (this.stopped || this.tracked.get(key) !== tracked) return;
    const { reminder } = tracked;
    const schedule = scheduleOf(reminder);
    if (isExpired(schedule, this.clock.now())) {
      await this.remove(key, tracked, 'expired');
      return;
    }
    let outcome: Awaited<ReturnType<ReminderHost['fire']>>;
    try {
      outcome = await this.host.fire(reminder);
    } catch (error) {
      outcome = { status: 0, cancel: false };
      log.warn('reminder fire failed', { actorType: reminder.actorType, actorId: reminder.actorId, name: reminder.name, reason: (error as Error).message });
    }
    if (this.stopped || this.tracked.get(key) !== tracked) return;
    log.debug('reminder fired', { actorType: reminder.actorType, actorId: reminder.actorId, name: reminder.name, outcome });
    if (outcome === 'moved') return;
    const acknowledged = outcome.status >= 200 && outcome.status < 300;
    if (!acknowledged && tracked.failures < RETRY_DELAYS_MS.length) {
      this.arm(key, tracked, RETRY_DELAYS_MS[tracked.failures++]);
      return;
    }
    if (!acknowledged) log.error('reminder not acknowledged by the app; moving on', { actorType: reminder.actorType, actorId: reminder.actorId, name: reminder.name, status: outcome.status });
    tracked.failures = 0;
    const next = outcome.cancel ? undefined : advance(schedule, { nextFireAt: reminder.nextFireAt, fired: reminder.fired }, this.clock.now());
    if (!next) {
      await this.remove(key, tracked, outcome.cancel ? 'cancelled by the app' : 'done');
      return;
    }
    const updated: StoredReminder = { ...reminder, ...next };
    try {
      const revision = await this.bucket.use((kv) => kv.update(key, JSON.stringify(updated), tracked.revision));
      if (this.tracked.get(key) !== tracked) return;
      tracked.reminder = updated;
      tracked.revision = revision;
      this.arm(key, tracked);
    } catch (error) {
      // Replaced or deleted meanwhile: the watch brings the newer record.
      if (!isRevisionConflict(error)) {
        log.warn('could not record a reminder fire; retrying', { name: reminder.name, reason: (error as Error).message });
        this.arm(key, tracked, RETRY_DELAYS_MS[0]);
      }
    }
  }

  private async remove(key: string, tracked: Tracked, why: string): Promise<void> {
    log.debug('reminder finished', { actorType: tracked.reminder.actorType, actorId: tracked.reminder.actorId, name: tracked.reminder.name, why });
    try {
      await this.bucket.use((kv) => kv.delete(key, { previousSeq: tracked.revision }));
    } catch (error) {
      if (!isRevisionConflict(error)) log.warn('could not delete a finished reminder', { key, reason: (error as Error).message });
    }
  }
}
