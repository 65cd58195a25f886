import { watch, statSync, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { logger } from '@skein/core';

const log = logger('config');

/**
 * Calls `onChange` (debounced) when any of `paths` changes. A file is watched through its folder, because
 * editors save by replacing the file, which ends a watch on the file itself.
 */
export function watchForChanges(paths: readonly string[], onChange: () => void, debounceMs = 150): { close(): void } {
  let timer: NodeJS.Timeout | undefined;
  const fire = (): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const path of paths) {
    let isDirectory = false;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch {
      continue;
    }
    const folder = isDirectory ? path : dirname(path);
    const name = isDirectory ? undefined : basename(path);
    try {
      const watcher = watch(folder, { persistent: false }, (_event, changed) => {
        if (name === undefined ? /\.ya?ml$/.test(String(changed ?? '')) : changed === name) fire();
      });
      watcher.on('error', (error) => log.warn('stopped watching for policy changes', { folder, reason: error.message }));
      watchers.push(watcher);
    } catch (error) {
      log.warn('cannot watch for policy changes', { folder, reason: (error as Error).message });
    }
  }
  return {
    close() {
      if (timer) clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
  };
}
