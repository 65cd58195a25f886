import { Harness } from './harness.js';

/** Mocha root hooks: after the whole run, no harness may be left with live processes or temp folders. */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    const leaked = [...Harness.live];
    await Promise.all(leaked.map((harness) => harness.cleanup()));
    if (leaked.length > 0) throw new Error(`${leaked.length} test harness(es) were not cleaned up: a suite forgot \`after(() => harness.cleanup())\``);
  },
};
