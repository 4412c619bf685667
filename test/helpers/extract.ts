import type { Reporter } from '../../src/io/reporter.ts';
import type { InputReader } from '../../src/lib/input-values.ts';
import { readExtractSettings } from '../../src/settings/extract.ts';
import { type ExtractResult, runExtractStage } from '../../src/stages/extract.ts';

/** The extract stage as its edges run it: the inputs parsed into typed settings, then the stage (errors reject). */
export async function extractFromInputs(o: {
  read: InputReader;
  reporter: Reporter;
  env?: NodeJS.ProcessEnv;
  cwd: string;
}): Promise<ExtractResult> {
  const settings = readExtractSettings(o.read, o.env ?? {}, o.cwd);
  return runExtractStage({ settings, reporter: o.reporter, cwd: o.cwd });
}
