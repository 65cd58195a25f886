import { spawn, type ChildProcess } from 'node:child_process';
import { SkeinError } from '@skein/core';

/** A Skein process that has announced it is ready, and the fields of its `ready` record. */
export interface ReadyProcess {
  child: ChildProcess;
  ready: Record<string, unknown>;
}

/**
 * Starts a Skein process (node running `args`) with JSON logs on stderr; resolves with its first `ready` record,
 * rejects with its last line if it exits first. Every stderr line goes to `onLine`.
 */
export function startUntilReady(name: string, args: string[], onLine?: (line: string) => void): Promise<ReadyProcess> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SKEIN_LOG_FORMAT: 'json' } });
  return new Promise((resolve, reject) => {
    let buffered = '';
    let ready = false;
    let lastLine = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        onLine?.(line);
        if (line.trim()) lastLine = line;
        if (ready || !line.startsWith('{')) continue;
        try {
          const record = JSON.parse(line) as Record<string, unknown>;
          if (record['msg'] === 'ready') {
            ready = true;
            resolve({ child, ready: record });
          }
        } catch {
          // not a log record
        }
      }
    });
    child.once('error', (error) => reject(new SkeinError('ERR_INTERNAL', `cannot start ${name}: ${error.message}`, { cause: error })));
    child.once('exit', (code, signal) => {
      if (!ready) reject(new SkeinError('ERR_INTERNAL', `${name} exited with ${signal ? `signal ${signal}` : `code ${String(code)}`} before it was ready: ${lastLine}`));
    });
  });
}
