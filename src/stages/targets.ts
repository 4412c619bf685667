import type { Target } from './host/types.ts';
import { runDeployStage, runReleasesStage, runRollbackStage } from './deploy.ts';
import { runSwarmDeployStage, runSwarmReleasesStage, runSwarmRollbackStage } from './swarm.ts';

/** The deploy, rollback and releases stages of a target (same options, same results). */
export function stagesFor(target: Target) {
  return target === 'swarm'
    ? { deploy: runSwarmDeployStage, rollback: runSwarmRollbackStage, releases: runSwarmReleasesStage }
    : { deploy: runDeployStage, rollback: runRollbackStage, releases: runReleasesStage };
}
