// Output for the examples and the demo: timestamped lines with a process name, in colour on a terminal.
import pc from 'picocolors';

const forced = process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0';
/** Colours on a terminal (not when NO_COLOR is set or TERM is dumb), or when FORCE_COLOR asks for them. */
export const colors = pc.createColors(
  forced || (process.stdout.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== 'dumb'),
);

const palette = [colors.cyan, colors.magenta, colors.blue, colors.yellow, colors.green];
const assigned = new Map<string, (text: string) => string>();

/** The local time as HH:MM:SS.mmm. */
export function clock(date = new Date()): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** Prints `text` as said by `who`, with the time; each name keeps one colour. */
export function say(who: string, text: string): void {
  let paint = assigned.get(who);
  if (!paint) assigned.set(who, (paint = palette[assigned.size % palette.length]!));
  console.log(`${colors.dim(clock())}  ${paint(who.padEnd(12))} ${text}`);
}
