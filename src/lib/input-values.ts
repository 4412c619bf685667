import { type InputDef, type InputId, inputName, INPUTS, type InputValues } from './input-table.ts';
import { parseBool, parseChoice, parseInteger, parseList, parsePairs } from './inputs.ts';

/** Reads one raw input by its documented name (action input or CLI flag); undefined or '' when not given. */
export type InputReader = (name: string) => string | undefined;

/** One raw value → the typed value its row describes, with the row's default and bounds. Errors name the input. */
export function parseInputValue(id: InputId, raw: string | undefined): unknown {
  const row: InputDef = INPUTS[id];
  const name = inputName(id);
  const given = raw === undefined || raw.trim() === '' ? undefined : raw;
  switch (row.kind) {
    case 'string':
      return given?.trim() ?? row.default;
    case 'text':
      return given ?? row.default;
    case 'list':
      return parseList(given);
    case 'pairs':
      return parsePairs(name, given, row.secret);
    case 'bool':
      return given === undefined ? row.default : parseBool(name, given, false);
    case 'int':
      return given === undefined ? row.default : parseInteger(name, given, 0, row);
    case 'choice':
      return given === undefined ? row.default : parseChoice(name, given, row.choices, row.choices[0]!);
  }
}

/**
 * Reads and parses the given rows of the table of inputs at the edge (action main, CLI command, agent config):
 * each value typed, defaulted and bounded as its row says. The first bad value throws an InputError naming it.
 */
export function readInputs<K extends InputId>(read: InputReader, ids: readonly K[]): InputValues<K> {
  const out: Record<string, unknown> = {};
  for (const id of ids) out[id] = parseInputValue(id, read(inputName(id)));
  return out as InputValues<K>;
}
