import { resolveBuildContext } from '../io/context.ts';
import type { BuildContext, Env } from '../lib/context.ts';
import { computeTags, type TagPlan, type TagPolicy } from '../lib/tags.ts';

export interface TagsResult {
  context: BuildContext;
  plan: TagPlan;
}

/** The tags stage as the action and the CLI run it: the policy is validated (at the edge) before git or the event is read. */
export async function runTagsStage(opts: {
  policy: TagPolicy;
  env: Env;
  cwd: string;
  now?: Date;
  overrides?: Partial<BuildContext>;
}): Promise<TagsResult> {
  const { context, knownTags } = await resolveBuildContext(opts.env, opts.cwd, opts.overrides);
  const plan = computeTags(context, opts.policy, { now: opts.now ?? new Date(), knownTags });
  return { context, plan };
}

/** The outputs both the action and `lading tags --json` give. */
export function tagsOutputs(result: TagsResult): Record<string, string> {
  const { plan, context } = result;
  const refs = plan.images.flatMap((i) => i.refs);
  return {
    tags: plan.tags.join('\n'),
    refs: refs.join('\n'),
    primary: plan.primary,
    channel: plan.channel ?? '',
    version: plan.version,
    sha: context.sha,
    'short-sha': plan.shortSha,
    labels: Object.entries(plan.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    json: JSON.stringify({ ...plan, refs, context }),
  };
}
