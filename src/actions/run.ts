import { escapeCell, escapeHtml } from '../lib/html.ts';
import * as core from '@actions/core';
import pkg from '../../package.json' with { type: 'json' };
import { describeError, LadingError } from '../lib/errors.ts';
import type { InputReader } from '../lib/tag-settings.ts';

/** Reads action inputs by their documented (hyphenated) names; '' means not given. */
export const readInput: InputReader = (name) => {
  const value = core.getInput(name);
  return value === '' ? undefined : value;
};

/** Runs an action's body: a user error fails the step with its message and hint, anything else with its stack in debug. */
export async function runAction(body: () => Promise<void>): Promise<void> {
  // The first line of every action's log: which lading (and which Node) ran.
  core.info(`lading ${pkg.version} (node ${process.version})`);
  try {
    await body();
  } catch (err) {
    if (!(err instanceof LadingError) && err instanceof Error && err.stack) core.debug(err.stack);
    core.setFailed(describeError(err));
  }
}

/** Writes the job summary when the runner provides one (GITHUB_STEP_SUMMARY); quietly skips otherwise. */
export async function writeSummary(build: (s: typeof core.summary) => typeof core.summary): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  // Table cells and headings carry host text (container logs, error messages): escaped, never HTML.
  const s = core.summary;
  const safe = Object.create(s) as typeof core.summary;
  safe.addTable = (rows) => {
    s.addTable(
      rows.map((r) => r.map((c) => (typeof c === 'string' ? escapeCell(c) : { ...c, data: escapeCell(c.data) }))),
    );
    return safe;
  };
  safe.addHeading = (text, level) => {
    s.addHeading(escapeHtml(text), level);
    return safe;
  };
  safe.addList = (items, ordered) => {
    s.addList(items.map(escapeHtml), ordered);
    return safe;
  };
  build(safe);
  await s.write();
}
