import * as core from '@actions/core';
import type { Reporter } from '../io/reporter.ts';

/** The stages' Reporter on a runner: core.info/warning/group/setSecret. */
export const coreReporter: Reporter = {
  info: (line) => core.info(line),
  warning: (line) => core.warning(line),
  group: (name, fn) => core.group(name, fn),
  secret: (value) => core.setSecret(value),
};
