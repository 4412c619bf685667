import {
  type HostStatus,
  STATUS_SCHEMA,
  type StatusReport,
  composeStatus,
  parseOpsFacts,
  swarmStatus,
  unreachable,
} from '../../lib/ops.ts';
import { describeError } from '../../lib/errors.ts';
import type { HostStageOptions } from '../host/types.ts';
import { eachPlace, opsStep, placesOf, withSession } from './places.ts';

/** Every host's (or the stack's) current release, containers, drift and lock; `ok` is false when one is not healthy. */
export async function runStatusStage(opts: HostStageOptions): Promise<StatusReport> {
  const now = opts.deps.now;
  const { settings, places } = await placesOf(opts);
  const hosts = await eachPlace(places, 8, async (place): Promise<HostStatus> => {
    try {
      return await withSession(place, async (session, label) => {
        const step = place.target === 'swarm' ? 'ops_swarm_status' : 'ops_status';
        const out = await opsStep(session, place, label, step, place.env, settings.stepTimeoutMs);
        const facts = parseOpsFacts(out, label);
        return place.target === 'swarm'
          ? swarmStatus(facts, { host: label, project: place.project })
          : composeStatus(facts, { host: label, root: place.root, project: place.project });
      });
    } catch (err) {
      return unreachable(place.label, place.target, place.project, describeError(err));
    }
  });
  return { schema: STATUS_SCHEMA, time: now().toISOString(), ok: hosts.every((h) => h.healthy), hosts };
}
