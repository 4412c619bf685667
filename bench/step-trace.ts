import { StepShell } from '../src/io/step-shell.ts';

/** The middle value of a sample (the upper one of an even count). */
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One remote step's round trip: its name and when it began and ended (Date.now()). */
export interface StepMark {
  name: string;
  start: number;
  end: number;
}

/**
 * Where a deploy's time goes: patches StepShell.run so each remote step's round trip adds up, in seconds, under its
 * name (`nameOf` its script; by default the script's first line without `lading_step`). `note(name, start)` adds any
 * other span begun at `performance.now()` = start; `take()` returns the spans so far and starts over; `marks()`
 * lists the steps since the last `take()` with their wall-clock times.
 */
export function traceSteps(nameOf = (script: string) => script.split('\n')[0]!.replace(/^lading_step /, '')) {
  let spans: Record<string, number> = {};
  let marks: StepMark[] = [];
  const note = (name: string, start: number) => {
    spans[name] = (spans[name] ?? 0) + (performance.now() - start) / 1000;
  };
  const run = StepShell.prototype.run;
  StepShell.prototype.run = async function (script, opts) {
    const t = performance.now();
    const start = Date.now();
    try {
      return await run.call(this, script, opts);
    } finally {
      note(nameOf(script), t);
      marks.push({ name: nameOf(script), start, end: Date.now() });
    }
  };
  const take = () => {
    const s = spans;
    spans = {};
    marks = [];
    return s;
  };
  return { note, take, marks: () => [...marks] };
}
