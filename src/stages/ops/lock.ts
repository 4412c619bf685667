import { type LockInfo, lockReleaseDecision, opsHistoryLine, parseLock, parseOpsFacts } from '../../lib/ops.ts';
import { describeError } from '../../lib/errors.ts';
import type { HostStageOptions } from '../host/types.ts';
import { eachPlace, opsStep, placesOf, withSession } from './places.ts';
import type { LockSettings } from './types.ts';

export interface LockOutcome {
  host: string;
  lock?: LockInfo;
  released?: boolean;
  /** Why it was (not) released. */
  why?: string;
  hint?: string;
  error?: string;
}

/**
 * `lock status` (release false) or `lock release`: this run's own lock always; another's only with force, when its
 * lease has run out or `confirm` names its holder. A release is compare-and-delete (the lock as read) and recorded in
 * the history.
 */
export async function runLockStage(
  opts: HostStageOptions & { lock: LockSettings },
  release: boolean,
): Promise<LockOutcome[]> {
  const now = opts.deps.now;
  const { settings, places } = await placesOf(opts);
  const { force, confirm } = opts.lock;
  return eachPlace(places, 8, async (place): Promise<LockOutcome> => {
    try {
      return await withSession(place, async (session, label) => {
        const facts = parseOpsFacts(
          await opsStep(session, place, label, 'ops_lock_read', place.env, settings.stepTimeoutMs),
          label,
        );
        const lock = parseLock(facts.lock, facts.now);
        const out: LockOutcome = { host: label, ...(lock ? { lock } : {}) };
        if (!release) return out;
        const decision = lockReleaseDecision(lock, { owner: settings.owner, force, ...(confirm ? { confirm } : {}) });
        out.released = decision.release;
        out.why = decision.why;
        if (decision.hint) out.hint = decision.hint;
        if (!decision.release || !lock) return out;
        const line = opsHistoryLine(now(), 'lock-release', 'success', settings.owner, {
          lock: lock.raw,
          holder: lock.owner,
          reason: decision.why,
        });
        await opsStep(
          session,
          place,
          label,
          'ops_lock_release',
          { ...place.env, LADING_LOCK_SEEN: lock.raw, LADING_HISTORY_LINE: line },
          settings.stepTimeoutMs,
        );
        opts.reporter.info(`[${label}] released the lock of ${lock.owner}: ${decision.why}`);
        return out;
      });
    } catch (err) {
      return { host: place.label, error: describeError(err) };
    }
  });
}
