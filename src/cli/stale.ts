import { parseNewestSettings, parseStaleSettings } from '../settings/stale.ts';
import { runNewestStage, runStaleStage } from '../stages/stale.ts';
import { stderrReporter } from '../io/reporter.ts';
import type { Command } from './args.ts';

export const staleCommand: Command = {
  name: 'stale',
  summary:
    'which images must be rebuilt (code newer than the newest timestamp tag, base changed, upstream rebuilt), and why',
  async run(read, flags) {
    const result = await runStaleStage({
      ...parseStaleSettings(read),
      env: process.env,
      cwd: process.cwd(),
      reporter: stderrReporter(),
    });
    if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else for (const id of result.rebuild) process.stdout.write(`${id}\n`);
    return 0;
  },
};

export const newestCommand: Command = {
  name: 'newest',
  summary: 'the newest sortable timestamp tag of an image (launch the newest): prints name:tag and name@digest',
  async run(read, flags) {
    const res = await runNewestStage({ ...parseNewestSettings(read), reporter: stderrReporter(true) });
    if (flags.json) process.stdout.write(`${JSON.stringify(res)}\n`);
    else process.stdout.write(`${res.ref}\n${res.ref.slice(0, res.ref.lastIndexOf(':'))}@${res.digest}\n`);
    return 0;
  },
};
