import * as core from '@actions/core';
import type { Reporter } from '../io/reporter.ts';

/** The stages' Reporter on a runner: core.info/warning/group/setSecret. */
export const coreReporter: Reporter = {
  info: (line) => core.info(line),
  warning: (line) => core.warning(line),
  group: (name, fn) => core.group(name, fn),
  // An empty mask (a secret-envs variable set to '', a secrets line with no value) only makes the runner warn.
  secret: (value) => {
    if (value.trim() !== '') core.setSecret(value);
  },
};
