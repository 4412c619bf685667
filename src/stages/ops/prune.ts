import { type PrunePlan, opsHistoryLine, parsePruneFacts, prunePlan } from '../../lib/ops.ts';
import { describeError } from '../../lib/errors.ts';
import type { HostStageOptions } from '../host/types.ts';
import { eachPlace, opsStep, placesOf, withSession } from './places.ts';
import type { PruneSettings } from './types.ts';

export interface PruneOutcome {
  host: string;
  dryRun: boolean;
  plan?: PrunePlan;
  /** What the host said while removing (removed / kept lines). */
  log?: string[];
  error?: string;
}

/**
 * Removes releases beyond keep-releases (never the current one) and the images no kept release pins and no container
 * uses, under the deploy lock; with dry-run, only says what would go and how much space that frees.
 */
export async function runPruneStage(opts: HostStageOptions & { prune: PruneSettings }): Promise<PruneOutcome[]> {
  const now = opts.deps.now;
  const { settings, places } = await placesOf(opts);
  const { dryRun } = opts.prune;
  return eachPlace(places, settings.maxParallel, async (place): Promise<PruneOutcome> => {
    try {
      return await withSession(place, async (session, label) => {
        const run = (steps: string, env: Record<string, string> = {}) =>
          opsStep(session, place, label, steps, { ...place.env, ...env }, settings.stepTimeoutMs);
        if (dryRun) {
          return { host: label, dryRun, plan: prunePlan(parsePruneFacts(await run('ops_prune_facts')), settings.keep) };
        }
        await run('lock');
        try {
          const plan = prunePlan(parsePruneFacts(await run('ops_prune_facts')), settings.keep);
          // a swarm manager's images belong to the swarm's tasks: only its releases go
          if (place.target === 'swarm') plan.images = [];
          const said = await run('ops_prune_apply history', {
            LADING_PRUNE_RELEASES: plan.releases.map((r) => r.id).join('\n'),
            LADING_PRUNE_IMAGES: plan.images.map((i) => i.id).join('\n'),
            LADING_HISTORY_LINE: opsHistoryLine(now(), 'prune', 'success', settings.owner, {
              pruned: plan.releases.map((r) => r.id),
              removedImages: plan.images.map((i) => i.id),
            }),
          });
          const log = said.split('\n').filter(Boolean);
          for (const l of log) opts.reporter.info(`[${label}] ${l}`);
          return { host: label, dryRun, plan, log };
        } finally {
          await run('unlock').catch(() => undefined);
        }
      });
    } catch (err) {
      return { host: place.label, dryRun, error: describeError(err) };
    }
  });
}
