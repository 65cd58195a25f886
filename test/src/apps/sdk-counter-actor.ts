/**
 * An actor written with the official Dapr JS SDK and nothing else: state through the SDK's state manager, a
 * reminder through `registerActorReminder`. Shared by the SDK actor host app (which registers it) and the test
 * (whose ActorProxyBuilder only needs the class name).
 */
import { AbstractActor, Temporal } from '@dapr/dapr';

/** Reminders received, for the test to read back through `reminders()`. */
const received: Array<{ actorId: string; data: unknown }> = [];

/** A counter actor, as an SDK user writes one. */
export class SdkCounterActor extends AbstractActor {
  async increment(by: number): Promise<number> {
    const state = this.getStateManager<number>();
    const [found, current] = await state.tryGetState('count');
    const next = (found && current !== null ? current : 0) + by;
    await state.setState('count', next);
    return next;
  }

  async count(): Promise<number> {
    const [found, current] = await this.getStateManager<number>().tryGetState('count');
    return found && current !== null ? current : 0;
  }

  async remindMe(data: string): Promise<string> {
    // Temporal is the polyfill the Dapr SDK ships; its type declarations do not resolve outside the SDK.
    // eslint-disable-next-line @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-member-access
    await this.registerActorReminder('nudge', Temporal.Duration.from({ milliseconds: 200 }), Temporal.Duration.from({ milliseconds: 400 }), undefined, data);
    return 'registered';
  }

  async forget(): Promise<string> {
    await this.unregisterActorReminder('nudge');
    return 'unregistered';
  }

  async reminders(): Promise<Array<{ actorId: string; data: unknown }>> {
    return received.filter((entry) => entry.actorId === this.getActorId().getId());
  }

  override async receiveReminder(data: string): Promise<void> {
    received.push({ actorId: this.getActorId().getId(), data });
  }
}
