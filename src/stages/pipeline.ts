import type { Env } from '../lib/context.ts';
import type { TagPolicy } from '../lib/tags.ts';
import { type BuildInputs, type BuildResult, runBuildStage, tagsFor } from './build.ts';
import { type ExportInputs, type ExportResult, runExportStage } from './export.ts';
import { type ManifestInputs, type ManifestResult, runManifestStage } from './manifest.ts';
import { type PushResult, type PushSettings, runPushStage } from './push.ts';
import type { Reporter } from '../io/reporter.ts';
import type { TagsResult } from './tags.ts';

export interface PipelineResult {
  tags: TagsResult;
  build: BuildResult;
  /** The push (registry) or export (store) result; absent with push: false. */
  published?: PushResult | ExportResult;
  /** Absent with push: false (nothing was published, so there is nothing to pin). */
  manifest?: ManifestResult;
}

/** The umbrella's typed settings, parsed at the edge (src/settings/pipeline.ts). */
export interface PipelineSettings {
  tags: TagPolicy;
  build: BuildInputs;
  /** false: build only (pull requests). */
  push: boolean;
  /** Export to a store (registry-less), or push to the registries in the image names. */
  publish: { export: ExportInputs } | { push: PushSettings };
  manifest: ManifestInputs;
}

/**
 * The umbrella action's job in one process: tags → build → push (or export to a store) → manifest, each stage
 * handed the previous one's typed result. `push: false` (pull-request builds) stops after the build.
 */
export async function runPipeline(opts: {
  settings: PipelineSettings;
  env: Env;
  cwd: string;
  reporter: Reporter;
}): Promise<PipelineResult> {
  const { settings, env, cwd, reporter } = opts;
  const tags = await reporter.group('tags', () => tagsFor({ policy: settings.tags }, env, cwd));
  for (const w of tags.plan.warnings) reporter.warning(w);
  reporter.info(`tags for ${tags.context.sha.slice(0, 12)}: ${tags.plan.tags.join(', ')}`);
  const build = await runBuildStage({ inputs: settings.build, tags: { result: tags }, env, cwd, reporter });
  if (!settings.push) {
    reporter.info('push: false — built only; nothing pushed, exported or written to a manifest');
    return { tags, build };
  }
  const published =
    'export' in settings.publish
      ? await runExportStage({ inputs: settings.publish.export, env, reporter, build })
      : await runPushStage({ settings: settings.publish.push, env, reporter, build });
  const manifest = await reporter.group('manifest', () =>
    runManifestStage({ inputs: settings.manifest, env, cwd, reporter, pushed: published }),
  );
  return { tags, build, published, manifest };
}
