/**
 * The record a running `skein up` keeps in `<home>/up.json`, and how `skein run` (and a second `skein up`) read
 * it: `starting` while NATS, the sentry and placement come up, `ready` once all three serve. The file is replaced
 * whole (written aside, then renamed), so a reader never sees half of it.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { formatDuration } from '@skein/core';
import { CommandFailed } from './args.js';

/** What a running `skein up` records so a second `skein up` (and `skein run`) can find it. */
export interface ControlPlaneRecord {
  pid: number;
  /** Absent in records of older versions, which were written only once everything was ready. */
  state?: 'starting' | 'ready';
  natsUrl?: string;
  sentryAddress?: string;
  /** Placement (actors). */
  placementAddress?: string;
  trustBundle: string;
  natsPid?: number;
  sentryPid?: number;
  placementPid?: number;
}

/** A control plane whose NATS, sentry and placement all serve. */
export type ReadyControlPlane = ControlPlaneRecord & { natsUrl: string; sentryAddress: string };

/** Where the control plane of a Skein home stands, as its record says. */
export type ControlPlaneStatus =
  | { kind: 'ready'; record: ReadyControlPlane }
  | { kind: 'starting'; record: ControlPlaneRecord; missing: string[] }
  | { kind: 'absent' };

/** The path of the record of `home`. */
export function controlPlaneFile(home: string): string {
  return join(home, 'up.json');
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it is just not ours.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The status a record's text describes (`undefined`: no file); a record whose process is gone is absent. Pure. */
export function controlPlaneStatus(text: string | undefined, alive: (pid: number) => boolean): ControlPlaneStatus {
  if (text === undefined) return { kind: 'absent' };
  let record: ControlPlaneRecord;
  try {
    record = JSON.parse(text) as ControlPlaneRecord;
  } catch {
    return { kind: 'absent' };
  }
  if (typeof record !== 'object' || record === null || !Number.isInteger(record.pid) || !alive(record.pid)) return { kind: 'absent' };
  const missing = [
    ...(record.natsUrl ? [] : ['NATS']),
    ...(record.sentryAddress ? [] : ['sentry']),
    // Records of older versions never named placement, and were ready all the same.
    ...(record.placementAddress || record.state === undefined ? [] : ['placement']),
  ];
  if (record.state === 'starting' || missing.length > 0) return { kind: 'starting', record, missing };
  return { kind: 'ready', record: record as ReadyControlPlane };
}

/** Reads the status of the control plane of `home`. */
export function readControlPlane(home: string): ControlPlaneStatus {
  let text: string | undefined;
  try {
    text = readFileSync(controlPlaneFile(home), 'utf8');
  } catch {
    text = undefined;
  }
  return controlPlaneStatus(text, isAlive);
}

/** The control plane recorded in `home` if it is running and ready. */
export function runningControlPlane(home: string): ReadyControlPlane | undefined {
  const status = readControlPlane(home);
  return status.kind === 'ready' ? status.record : undefined;
}

/** Replaces the record of `home` whole. */
export function writeControlPlaneRecord(home: string, record: ControlPlaneRecord): void {
  const file = controlPlaneFile(home);
  const aside = `${file}.${process.pid}.tmp`;
  writeFileSync(aside, JSON.stringify(record, null, 2));
  renameSync(aside, file);
}

/** Removes the record of `home`. */
export function removeControlPlaneRecord(home: string): void {
  rmSync(controlPlaneFile(home), { force: true });
}

/** What is not ready yet, in words. */
function missingText(missing: readonly string[]): string {
  return `${missing.length > 0 ? missing.join(', ') : 'its record'} not ready yet`;
}

/** Why a status is not ready, in words: what `skein run` says when it gives up. Pure. */
export function notReadyReason(status: ControlPlaneStatus, home: string): string {
  if (status.kind === 'starting') return `the control plane started by \`skein up\` (pid ${status.record.pid}) is still starting: ${missingText(status.missing)}`;
  return `no \`skein up\` is running for ${home} (${controlPlaneFile(home)} is missing, or its process is gone)`;
}

/** What `skein run` says while it waits, once and again whenever it changes. Pure. */
export function waitingMessage(status: ControlPlaneStatus, home: string, timeoutMs: number): string {
  const patience = `giving up after ${formatDuration(timeoutMs)}, see --control-plane-timeout`;
  if (status.kind === 'starting') return `waiting for the control plane started by \`skein up\` (pid ${status.record.pid}: ${missingText(status.missing)}; ${patience})`;
  return `waiting for a control plane: no \`skein up\` is running for ${home} (${patience})`;
}

/** Raised when no control plane became ready in time. */
export class ControlPlaneTimeout extends CommandFailed {}

/**
 * Waits until the control plane of `home` is ready and returns its record. `onWaiting` hears what it waits for,
 * once and again whenever that changes; after `timeoutMs` it fails with the last reason and what to do.
 */
export async function waitForControlPlane(home: string, options: { timeoutMs: number; onWaiting: (message: string) => void; pollMs?: number }): Promise<ReadyControlPlane> {
  const deadline = Date.now() + options.timeoutMs;
  let said = '';
  for (;;) {
    const status = readControlPlane(home);
    if (status.kind === 'ready') return status.record;
    const reason = notReadyReason(status, home);
    if (Date.now() >= deadline) {
      throw new ControlPlaneTimeout(
        `no control plane ready after ${formatDuration(options.timeoutMs)}: ${reason}. Start \`skein up\` for this Skein home (--home or $SKEIN_HOME), ` +
          'pass --nats-url and --sentry-address (and --placement-address for actors) to use a control plane elsewhere, or wait longer with --control-plane-timeout',
      );
    }
    if (reason !== said) {
      options.onWaiting(waitingMessage(status, home, options.timeoutMs));
      said = reason;
    }
    await delay(Math.min(options.pollMs ?? 200, Math.max(1, deadline - Date.now())));
  }
}
