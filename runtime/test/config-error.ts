import assert from 'node:assert/strict';
import { ConfigError } from '@skein/core';

/** Runs `run`, which must throw Skein's ERR_CONFIG_INVALID ConfigError, and returns that error for its message. */
export function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_CONFIG_INVALID');
    return error;
  }
  assert.fail('expected a ConfigError');
}
