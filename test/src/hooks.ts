import { Harness } from './harness.js';

/** Mocha root hooks: after the whole run, no harness may be left with live processes or temp folders. */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    const live = [...Harness.live];
    // A harness whose suite was filtered out never started anything; one with processes still running leaked them.
    const leaked = live.filter((harness) => harness.processes.some((proc) => proc.running));
    await Promise.all(live.map((harness) => harness.cleanup()));
    if (leaked.length > 0) throw new Error(`${leaked.length} test harness(es) were not cleaned up: a suite forgot \`after(() => harness.cleanup())\``);
  },
};
