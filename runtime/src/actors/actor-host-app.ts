import type { AppChannel } from '../app/channel.js';
import { SkeinError, asSkeinError, forwardableHeaders, logger, sleep, stampIdentity, systemClock, type Clock, type HeaderList } from '@skein/core';
import { AppConfigError, appConfigFrom, NO_ACTORS, type ActorAppConfig } from './app-config.js';
import { REENTRANCY_HEADER, type ActorHost, type ActorMethodCall, type ActorRef, type ActorReply, type ActorTurn, type ReminderFire, type ReminderOutcome, type TimerFire } from './actor-host.js';
import { checkMethod } from './requests.js';
import { readWhole } from '../pipeline/read-body.js';

const log = logger('actors');

/** The header with which an app cancels a reminder from its callback. */
const REMINDER_CANCEL_HEADER = 'x-daprremindercancel';
/** Headers a client sent that must not reach the app as they are. */
const CLIENT_ONLY_HEADERS = new Set(['dapr-api-token', 'dapr-app-id', 'content-length', REENTRANCY_HEADER]);

/** Options of the app-channel host. */
export interface AppActorHostOptions {
  appId: string;
  namespace: string;
  channel: AppChannel;
  /** Sent to the app as `dapr-api-token` when set. */
  appApiToken: string | undefined;
  /** Largest app response read into memory. */
  maxBodyBytes: number;
  clock?: Clock;
}

function encodeSegment(name: string): string {
  return encodeURIComponent(name);
}

function actorPath(actor: ActorRef): string {
  return `/actors/${encodeSegment(actor.actorType)}/${encodeSegment(actor.actorId)}`;
}

/**
 * The app behind the sidecar as an actor host, over Dapr's app protocol: it declares its types in
 * `GET /dapr/config`, every turn is `PUT /actors/<type>/<id>/method/<method>` (reminders as `remind/<name>`, timers
 * as `timer/<name>`), and a deactivation is `DELETE /actors/<type>/<id>`.
 */
export class AppActorHost implements ActorHost {
  private readonly options: AppActorHostOptions;
  private readonly clock: Clock;

  constructor(options: AppActorHostOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Reads the app's `GET /dapr/config` (retrying while the app starts); an app that serves none hosts nothing.
   * `probe`: one attempt, and nothing logged when the app has no usable config (the sidecar only asks whether the
   * app declares actors it could not host).
   */
  async readConfig(probe = false): Promise<ActorAppConfig> {
    const { channel } = this.options;
    for (let attempt = 1; ; attempt++) {
      try {
        const answer = await channel.exchange('GET', '/dapr/config', this.tokenHeaders(), undefined);
        const body = await readWhole(answer, 1024 * 1024, "the app's /dapr/config");
        if (answer.statusCode === 404) return NO_ACTORS;
        if ((answer.statusCode ?? 500) >= 300) throw new Error(`GET /dapr/config answered ${answer.statusCode ?? 0}`);
        if (body.length === 0) return NO_ACTORS;
        return appConfigFrom(JSON.parse(body.toString('utf8')) as unknown);
      } catch (error) {
        if (probe) return NO_ACTORS;
        if (error instanceof AppConfigError || error instanceof SyntaxError) {
          log.error('the app\'s /dapr/config is invalid; it hosts no actors', { appId: this.options.appId, reason: error.message });
          return NO_ACTORS;
        }
        if (attempt >= 5) {
          log.error('cannot read the app\'s /dapr/config; it hosts no actors', { appId: this.options.appId, reason: (error as Error).message });
          return NO_ACTORS;
        }
        await sleep(this.clock, 200 * attempt);
      }
    }
  }

  /**
   * `PUT /actors/<type>/<id>/method/<method>` on the app, the whole answer read. The app learns who called from
   * the stamped `dapr-caller-app-id`/`dapr-caller-namespace` alone, as it does for service invocation.
   */
  async invoke(actor: ActorRef, call: ActorMethodCall, turn: ActorTurn): Promise<ActorReply> {
    const { signal } = turn;
    checkMethod(call.method);
    const forwarded = call.headers.filter(([name]) => !CLIENT_ONLY_HEADERS.has(name));
    const headers = stampIdentity(forwarded, { callerAppId: call.caller.appId, callerNamespace: call.caller.namespace, calleeAppId: this.options.appId }, this.options.appApiToken);
    if (turn.reentrancyId) headers.push([REENTRANCY_HEADER, turn.reentrancyId]);
    headers.push(['content-length', String(call.body.length)]);
    const path = `${actorPath(actor)}/method/${call.method.split('/').map(encodeSegment).join('/')}`;
    try {
      const answer = await this.options.channel.exchange('PUT', path, headers, call.body, signal);
      const body = await readWhole(answer, this.options.maxBodyBytes, "the app's answer");
      const replyHeaders = forwardableHeaders(answer.rawHeaders).filter(([name]) => name !== 'content-length');
      return { status: answer.statusCode ?? 500, headers: replyHeaders, body };
    } catch (error) {
      const reason = signal.aborted ? 'the call was cancelled or timed out' : asSkeinError(error).message;
      throw new SkeinError('ERR_ACTOR_INVOKE_METHOD', `error invoke actor method: ${reason}`, { cause: error });
    }
  }

  /** `PUT .../method/remind/<name>` with Dapr's reminder body; the app cancels with `X-DaprReminderCancel: true`. */
  async remind(actor: ActorRef, reminder: ReminderFire, turn: ActorTurn): Promise<ReminderOutcome> {
    const body = { data: reminder.data ?? null, dueTime: reminder.dueTime ?? '', period: reminder.period ?? '', ...(reminder.ttl ? { ttl: reminder.ttl } : {}) };
    const reply = await this.invoke(actor, this.callbackCall(`remind/${reminder.name}`, body), turn);
    const cancel = reply.headers.some(([name, value]) => name === REMINDER_CANCEL_HEADER && value.trim().toLowerCase() === 'true');
    return { status: reply.status, cancel };
  }

  /** `PUT .../method/timer/<name>` with Dapr's timer body; the app's status does not change the schedule. */
  async timer(actor: ActorRef, timer: TimerFire, turn: ActorTurn): Promise<void> {
    const body = { data: timer.data ?? null, callback: timer.callback ?? '', dueTime: timer.dueTime ?? '', period: timer.period ?? '' };
    await this.invoke(actor, this.callbackCall(`timer/${timer.name}`, body), turn);
  }

  /** `DELETE /actors/<type>/<id>`; an app that does not take it is only logged. */
  async deactivate(actor: ActorRef, why: string): Promise<void> {
    try {
      const answer = await this.options.channel.exchange('DELETE', actorPath(actor), this.tokenHeaders(), undefined);
      answer.resume();
      log.debug('actor deactivated', { ...actor, why, status: answer.statusCode });
    } catch (error) {
      log.debug('the app did not take the deactivation', { ...actor, why, reason: (error as Error).message });
    }
  }

  /** Reminders and timers are called by the sidecar on behalf of the app itself. */
  private callbackCall(method: string, body: unknown): ActorMethodCall {
    return {
      method,
      verb: 'PUT',
      headers: [['content-type', 'application/json']],
      body: Buffer.from(JSON.stringify(body)),
      caller: { appId: this.options.appId, namespace: this.options.namespace },
    };
  }

  private tokenHeaders(): HeaderList {
    return this.options.appApiToken ? [['dapr-api-token', this.options.appApiToken]] : [];
  }
}

