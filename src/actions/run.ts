import { escapeCell, escapeHtml } from '../lib/html.ts';
import * as core from '@actions/core';
import pkg from '../../package.json' with { type: 'json' };
import { describeError, LadingError } from '../lib/errors.ts';
import { type ActionName, type InputDef, type InputId, inputName, INPUTS } from '../lib/input-table.ts';
import type { InputReader } from '../lib/tag-settings.ts';

/**
 * Whether an action's input is secret (passwords, keys, tokens: masked as soon as read), by the table's rows for that
 * action: a name can be secret in one action and not in another (`compose-env` holds values in deploy, only names in
 * manifest, where masking `API_TOKEN` would hide it from every later line of the job). A name no row of the action
 * has is secret if any row of that name is.
 */
function secretInputs(action: ActionName): (name: string) => boolean {
  const rows = Object.entries(INPUTS as Record<InputId, InputDef>).map(([id, row]) => ({
    row,
    name: inputName(id as InputId),
  }));
  const mine = rows.filter((r) => (r.row.actions ?? []).includes(action));
  const secretIn = (rs: typeof rows, name: string) => rs.some((r) => r.name === name && r.row.secret);
  return (name) => (mine.some((r) => r.name === name) ? secretIn(mine, name) : secretIn(rows, name));
}
const masked = new Set<string>();

/**
 * Masks a secret input's value in every later log line. The runner matches a mask within one log line, so a
 * multi-line value (a private key, a credentials JSON) is masked line by line too; lines too short to be secret
 * (`{`, `},`) are left, as masking them would blank out ordinary log text.
 */
function maskInput(value: string): void {
  if (masked.has(value)) return;
  masked.add(value);
  core.setSecret(value);
  if (!value.includes('\n')) return;
  for (const line of value.split(/\r?\n/)) {
    const t = line.trim();
    if (t.length >= 8 && !masked.has(t)) {
      masked.add(t);
      core.setSecret(t);
    }
  }
}

/** Reads an action's inputs by their documented (hyphenated) names; '' means not given. Its secret inputs are masked. */
export function inputReader(action: ActionName): InputReader {
  const secret = secretInputs(action);
  return (name) => {
    const value = core.getInput(name);
    if (value === '') return undefined;
    if (secret(name)) maskInput(value);
    return value;
  };
}

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
