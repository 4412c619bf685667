import type { Env } from '../lib/context.ts';
import { parseBool } from '../lib/inputs.ts';
import type { InputReader } from '../lib/tag-settings.ts';
import { type BuildResult, runBuildStage, tagsFor } from './build.ts';
import { type ExportResult, runExportStage } from './export.ts';
import { type ManifestResult, runManifestStage } from './manifest.ts';
import { type PushResult, runPushStage } from './push.ts';
import type { Reporter } from './reporter.ts';
import type { TagsResult } from './tags.ts';

export interface PipelineResult {
  tags: TagsResult;
  build: BuildResult;
  /** The push (registry) or export (store) result; absent with push: false. */
  published?: PushResult | ExportResult;
  /** Absent with push: false (nothing was published, so there is nothing to pin). */
  manifest?: ManifestResult;
}

/**
 * The umbrella action's job in one process: tags → build → push (or export to a store) → manifest, each stage
 * handed the previous one's typed result. `push: false` (pull-request builds) stops after the build.
 */
export async function runPipeline(opts: {
  read: InputReader;
  env: Env;
  cwd: string;
  reporter: Reporter;
}): Promise<PipelineResult> {
  const { read, env, cwd, reporter } = opts;
  const publish = parseBool('push', read('push'), true);
  const tags = await reporter.group('tags', () => tagsFor(read, env, cwd));
  for (const w of tags.plan.warnings) reporter.warning(w);
  reporter.info(`tags for ${tags.context.sha.slice(0, 12)}: ${tags.plan.tags.join(', ')}`);
  const build = await runBuildStage({ read, env, cwd, reporter, tags });
  if (!publish) {
    reporter.info('push: false — built only; nothing pushed, exported or written to a manifest');
    return { tags, build };
  }
  const published = read('store')
    ? await runExportStage({ read, env, reporter, build })
    : await runPushStage({ read, env, reporter, build });
  const manifest = await reporter.group('manifest', () =>
    runManifestStage({ read, env, cwd, reporter, pushed: published }),
  );
  return { tags, build, published, manifest };
}
