// A schedule's settings, parsed once: its options, its cron pattern (croner, loaded only when a
// schedule is made), and node-cron's keys of ticks.
import { parseDuration } from './duration.js';
import { LockError, LockErrorCode, invalidType, outOfRange } from './errors.js';
import { checkName, checkObject } from './options.js';
import { checkRetain, checkRetries, checkScheduleName, defaultWait, type RunPolicy } from './runs.js';
import type { MisfirePolicy, ScheduleOptions } from './schedule.js';

/** The croner API used here. */
export interface CronLike {
  nextRun(prev?: Date): Date | null;
  previousRuns(n: number, reference?: Date): Date[];
}
export type CronerModule = { Cron: new (pattern: string, options: { timezone?: string; paused: boolean }) => CronLike };

/** How long the run coordinator's records are kept. */
export const RETAIN = 7 * 24 * 3600 * 1000;

/** At most this many ticks are looked at (run or recorded missed) in one catch-up. */
export const MAX_CATCH_UP_TICKS = 100;

let croner: CronerModule | undefined;
let cronerLoading: Promise<CronerModule> | undefined;

function cronerMissing(cause: unknown): Error {
  return new LockError(
    LockErrorCode.InvalidArgument,
    'schedule() needs croner: install it (npm install croner), it is an optional peer dependency',
    { cause },
  );
}

/**
 * croner, loaded on first use: synchronously where `require` exists (CommonJS), else (ESM) with
 * import(), in which case the first schedule() starts once it is loaded.
 */
export function loadCroner(): CronerModule | Promise<CronerModule> {
  if (croner) return croner;
  if (typeof require === 'function') {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      croner = require('croner') as CronerModule;
      return croner;
    } catch (error) {
      throw cronerMissing(error);
    }
  }
  return (cronerLoading ??= import('croner').then(
    (module) => (croner = module as unknown as CronerModule),
    (error: unknown) => {
      cronerLoading = undefined;
      throw cronerMissing(error);
    },
  ));
}

export function makeCron(module: CronerModule, pattern: string, timezone: string | undefined, what: string): CronLike {
  let cron: CronLike;
  let next: Date | null;
  try {
    cron = new module.Cron(pattern, { timezone, paused: true });
    next = cron.nextRun(); // a bad time zone shows here
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw Object.assign(invalidType(what, `a cron pattern croner accepts (${reason})`, pattern), { cause: error });
  }
  // croner reads a string that is not a cron pattern as a date (a one-off run): one already past,
  // or a pattern no date matches, would make a job that never fires.
  if (next === null)
    throw outOfRange(
      what,
      'a cron pattern with a tick to come (croner finds no tick to come: a date already past, or none that matches)',
      pattern,
    );
  return cron;
}

/** The schedule's options, parsed. @internal */
export interface JobSettings extends RunPolicy {
  readonly timezone: string | undefined;
  readonly misfire: MisfirePolicy;
  readonly catchUp: number;
  readonly tolerance: number;
}

export function jobSettings(input: ScheduleOptions | undefined, managerTtl: number): JobSettings {
  const what = 'schedule options';
  const options = checkObject(input, what);
  const timezone = options.timezone;
  if (timezone !== undefined) {
    if (typeof timezone !== 'string' || timezone === '')
      throw invalidType(`${what}.timezone`, 'an IANA time zone name', timezone);
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    } catch {
      throw outOfRange(`${what}.timezone`, 'an IANA time zone name (such as "Europe/Berlin")', timezone);
    }
  }
  const misfire = options.misfire === undefined ? 'skip' : options.misfire;
  if (misfire !== 'skip' && misfire !== 'once' && misfire !== 'all')
    throw invalidType(`${what}.misfire`, '"skip", "once" or "all"', misfire);
  const ttl = options.ttl === undefined ? managerTtl : parseDuration(options.ttl, `${what}.ttl`);
  return {
    timezone,
    ttl,
    retries: checkRetries(options.retries, `${what}.retries`),
    wait: defaultWait(ttl),
    retain: checkRetain(options.retain, `${what}.retain`),
    misfire,
    catchUp: parseDuration(options.catchUp === undefined ? '1h' : options.catchUp, `${what}.catchUp`, {
      allowZero: true,
    }),
    tolerance: parseDuration(options.tolerance === undefined ? '5s' : options.tolerance, `${what}.tolerance`, {
      allowZero: true,
    }),
  };
}

/** node-cron's key: `${taskName}:${slot.toISOString()}`. */
export function parseKey(key: unknown): { name: string; scheduledAt: Date } {
  const what = 'runCoordinator().shouldRun(key)';
  if (typeof key !== 'string') throw invalidType(what, 'a string "<task name>:<ISO date>"', key);
  // node-cron's key is `${name}:${slot.toISOString()}`: the ISO date is the end (years beyond 9999 have six digits and a sign).
  const match = /:((?:[+-]\d{6}|\d{4})-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)$/.exec(key);
  const iso = match?.[1];
  const scheduledAt = new Date(iso ?? NaN);
  if (
    !match ||
    match.index === 0 ||
    Number.isNaN(scheduledAt.getTime()) ||
    scheduledAt.toISOString() !== iso // Feb 30, T24:00: another tick's time, written otherwise
  )
    throw invalidType(what, 'a string "<task name>:<ISO date>" (node-cron\'s key of a tick)', key);
  const label = `${what}: the task name`;
  const name = checkScheduleName(checkName(key.slice(0, match.index), label), label);
  return { name, scheduledAt };
}
