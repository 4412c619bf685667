import { readExtractSettings } from '../settings/extract.ts';
import { runExtractStage } from '../stages/extract.ts';
import { stderrReporter } from '../io/reporter.ts';
import type { Command } from './args.ts';

export const extractCommand: Command = {
  name: 'extract',
  summary: 'copy paths out of an image (registry, exported object or manifest entry) without a Docker engine',
  async run(read, flags) {
    const settings = readExtractSettings(read, process.env, process.cwd());
    const result = await runExtractStage({ settings, reporter: stderrReporter() });
    process.stdout.write(
      flags.json
        ? `${JSON.stringify(result, null, 2)}\n`
        : result.files
            .filter((f) => f.type !== 'directory')
            .map((f) => `${f.sha256 ?? `-> ${f.target}`}  ${result.destination}${f.path}\n`)
            .join(''),
    );
    return 0;
  },
};
