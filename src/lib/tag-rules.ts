import { type BuildContext, parseRef } from './context.ts';
import { InputError } from './errors.ts';
import { isValidTag, MAX_TAG, sanitizeRefPart } from './image-ref.ts';

/**
 * docker/metadata-action interop, as pure data and functions:
 *   - the rule types its users rely on most (`type=raw`, `type=match`, `type=schedule`, `enable=`, `priority=`,
 *     per-rule `prefix=`/`suffix=`) and its `flavor` (`latest=auto|true|false`, `prefix=`/`suffix=` with `onlatest=`),
 *     evaluated with metadata-action's rules (highest priority first; the first rule that yields a value decides
 *     `latest` under `latest=auto`: only `type=match` turns it on),
 *   - its `json` output, or its newline-separated `tags`/`labels` outputs, as a ready-made tag list.
 * Templates support `{{date 'FORMAT'}}`, `{{is_default_branch}}`, `{{is_not_default_branch}}`, `{{branch}}`,
 * `{{tag}}`, `{{sha}}`; anything else is refused (values never reach a shell: they become tags or are refused).
 */
export type RuleType = 'raw' | 'match' | 'schedule';

export interface TagRule {
  type: RuleType;
  /** raw: the tag; match: the string to match instead of the git tag (optional). */
  value: string;
  /** match: a regular expression (`/re/flags` or plain); schedule: the tag template (default `nightly`). */
  pattern: string;
  group: number;
  /** A template that must evaluate to `true` or `false`. */
  enable: string;
  priority: number;
  prefix?: string;
  suffix?: string;
}

export interface Flavor {
  latest: 'auto' | 'true' | 'false';
  prefix: string;
  prefixOnLatest: boolean;
  suffix: string;
  suffixOnLatest: boolean;
}

export const DEFAULT_FLAVOR: Flavor = {
  latest: 'auto',
  prefix: '',
  prefixOnLatest: false,
  suffix: '',
  suffixOnLatest: false,
};

/** metadata-action's default priorities (src/tag.ts DefaultPriorities). */
const PRIORITY: Record<RuleType, number> = { schedule: 1000, match: 800, raw: 200 };

/** Splits one CSV line (metadata-action parses each rule as CSV: fields may be double-quoted). */
export function splitCsv(line: string): string[] {
  const fields: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"' && cur.trim() === '') {
      quoted = true;
      cur = '';
    } else if (c === ',') {
      fields.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quoted) throw new Error('an opening quote is never closed');
  fields.push(cur);
  return fields;
}

function keyValues(input: string, line: string): Array<[string, string]> {
  let fields: string[];
  try {
    fields = splitCsv(line);
  } catch (err) {
    throw new InputError(input, `'${line}': ${(err as Error).message}`);
  }
  return fields
    .filter((f) => f.trim() !== '')
    .map((f) => {
      const eq = f.indexOf('=');
      // metadata-action: `type=raw,foo` is `type=raw,value=foo`.
      if (eq < 0 && input === 'tag-rules') return ['value', f.trim()];
      if (eq < 0) throw new InputError(input, `'${f.trim()}' in '${line}' is not key=value`);
      return [f.slice(0, eq).trim().toLowerCase(), f.slice(eq + 1).trim()];
    });
}

/** Parses metadata-action `tags` lines (one rule per line). A bare line without `type=` is `type=raw,value=<line>`. */
export function parseTagRules(lines: string[]): TagRule[] {
  const rules = lines
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((line) => {
      const kv = line.includes('=')
        ? keyValues('tag-rules', line)
        : [['type', 'raw'] as [string, string], ['value', line] as [string, string]];
      const attrs = new Map(kv);
      const type = attrs.get('type') ?? 'raw';
      if (type !== 'raw' && type !== 'match' && type !== 'schedule') {
        throw new InputError(
          'tag-rules',
          `type '${type}' in '${line}' is not supported`,
          'use type=raw, type=match or type=schedule; lading tags branches, semver, pull requests and shas itself (see channels, semver, pr, full-sha)',
        );
      }
      for (const key of attrs.keys()) {
        if (!['type', 'value', 'pattern', 'group', 'enable', 'priority', 'prefix', 'suffix'].includes(key)) {
          throw new InputError('tag-rules', `unknown attribute '${key}' in '${line}'`);
        }
      }
      const rule: TagRule = {
        type,
        value: attrs.get('value') ?? '',
        pattern: attrs.get('pattern') ?? (type === 'schedule' ? 'nightly' : ''),
        group: Number(attrs.get('group') ?? '0'),
        enable: attrs.get('enable') ?? 'true',
        priority: Number(attrs.get('priority') ?? PRIORITY[type]),
      };
      if (attrs.has('prefix')) rule.prefix = attrs.get('prefix')!;
      if (attrs.has('suffix')) rule.suffix = attrs.get('suffix')!;
      if (type === 'raw' && rule.value === '') throw new InputError('tag-rules', `'${line}' needs value=`);
      if (type === 'match') {
        if (rule.pattern === '') throw new InputError('tag-rules', `'${line}' needs pattern=`);
        matchRegExp(rule.pattern);
      }
      if (!Number.isInteger(rule.group) || rule.group < 0) {
        throw new InputError('tag-rules', `group in '${line}' is not a whole number`);
      }
      if (!Number.isFinite(rule.priority)) throw new InputError('tag-rules', `priority in '${line}' is not a number`);
      return rule;
    });
  // Highest priority first; a stable sort keeps the written order among equals (as metadata-action does).
  return rules.sort((a, b) => b.priority - a.priority);
}

/** Parses metadata-action `flavor` lines. */
export function parseFlavor(lines: string[]): Flavor {
  const flavor = { ...DEFAULT_FLAVOR };
  for (const line of lines.map((l) => l.trim()).filter((l) => l !== '')) {
    let onlatestFor: 'prefix' | 'suffix' | undefined;
    for (const [key, value] of keyValues('flavor', line)) {
      if (key === 'latest') {
        if (value !== 'auto' && value !== 'true' && value !== 'false') {
          throw new InputError('flavor', `latest=${value} is not auto, true or false`);
        }
        flavor.latest = value;
      } else if (key === 'prefix' || key === 'suffix') {
        flavor[key] = value;
        onlatestFor = key;
      } else if (key === 'onlatest') {
        if (value !== 'true' && value !== 'false')
          throw new InputError('flavor', `onlatest=${value} is not true or false`);
        if (onlatestFor === 'prefix') flavor.prefixOnLatest = value === 'true';
        if (onlatestFor === 'suffix') flavor.suffixOnLatest = value === 'true';
      } else {
        throw new InputError(
          'flavor',
          `unknown entry '${key}' in '${line}'`,
          'use latest=, prefix=, suffix=, onlatest=',
        );
      }
    }
  }
  return flavor;
}

function matchRegExp(pattern: string): RegExp {
  const lit = /^\/(.+)\/([a-z]*)$/.exec(pattern);
  try {
    return lit ? new RegExp(lit[1]!, lit[2]!.replace(/g/g, '')) : new RegExp(pattern);
  } catch (err) {
    throw new InputError('tag-rules', `pattern '${pattern}' is not a regular expression (${(err as Error).message})`);
  }
}

export interface RuleInputs {
  ctx: BuildContext;
  now: Date;
}

/** metadata-action's is_default_branch: the ref's branch is the repository's default branch, or a schedule run. */
export function isDefaultBranch(ctx: BuildContext): boolean {
  const { branch } = parseRef(ctx.ref);
  if (!branch) return false;
  if (ctx.defaultBranch !== undefined && ctx.defaultBranch === branch) return true;
  return /create|discussion|issues|schedule/.test(ctx.event);
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** The moment.js tokens metadata-action users write in `{{date '…'}}`, in UTC. */
export function formatDate(date: Date, format: string): string {
  const tokens: Record<string, () => string> = {
    YYYY: () => pad(date.getUTCFullYear(), 4),
    YY: () => pad(date.getUTCFullYear() % 100),
    MM: () => pad(date.getUTCMonth() + 1),
    M: () => String(date.getUTCMonth() + 1),
    DD: () => pad(date.getUTCDate()),
    D: () => String(date.getUTCDate()),
    HH: () => pad(date.getUTCHours()),
    H: () => String(date.getUTCHours()),
    mm: () => pad(date.getUTCMinutes()),
    ss: () => pad(date.getUTCSeconds()),
  };
  return format.replace(/\[([^\]]*)\]|YYYY|YY|MM|M|DD|D|HH|H|mm|ss/g, (m, literal: string | undefined) =>
    literal !== undefined ? literal : tokens[m]!(),
  );
}

/** Expands the `{{…}}` expressions of a rule value; unknown expressions are an InputError. */
export function expand(template: string, { ctx, now }: RuleInputs, input = 'tag-rules'): string {
  return template.replace(/\{\{\s*([^}]*?)\s*\}\}/g, (whole, expr: string) => {
    const date = /^date\s+(['"])([^'"]*)\1$/.exec(expr);
    if (date) return formatDate(now, date[2]!);
    switch (expr) {
      case 'is_default_branch':
        return String(isDefaultBranch(ctx));
      case 'is_not_default_branch':
        return String(!isDefaultBranch(ctx));
      case 'branch':
        return parseRef(ctx.ref).branch ?? '';
      case 'tag':
        return parseRef(ctx.ref).tag ?? '';
      case 'sha':
        return ctx.sha.slice(0, 7);
      default:
        throw new InputError(
          input,
          `the expression ${whole} is not supported`,
          "use {{date 'YYYYMMDD'}}, {{is_default_branch}}, {{is_not_default_branch}}, {{branch}}, {{tag}} or {{sha}}",
        );
    }
  });
}

/**
 * metadata-action's tag sanitising (runs of characters outside [A-Za-z0-9._-] become `-`), plus what Docker needs
 * and metadata-action leaves to the push to discover: no leading `.`/`-`, at most 128 characters. '' = no tag.
 */
export function toTag(value: string): string {
  return sanitizeRefPart(value).slice(0, MAX_TAG);
}

export interface RuleTags {
  tags: string[];
  /** true/false when a rule (or flavor latest=true) decided it; undefined when no rule produced a tag. */
  latest: boolean | undefined;
  latestTag: string;
  warnings: string[];
}

/** Evaluates the rules for one build, with metadata-action's semantics (meta.ts getVersion + setValue). */
export function evaluateRules(rules: TagRule[], flavor: Flavor, inputs: RuleInputs): RuleTags {
  const { ctx } = inputs;
  const tags: string[] = [];
  const warnings: string[] = [];
  let latest: boolean | undefined;
  const refTag = parseRef(ctx.ref).tag;
  for (const rule of rules) {
    const enabled = expand(rule.enable, inputs);
    if (enabled !== 'true' && enabled !== 'false') {
      throw new InputError('tag-rules', `enable=${rule.enable} gives '${enabled}', not true or false`);
    }
    if (enabled === 'false') continue;
    let raw: string;
    let autoLatest = false;
    if (rule.type === 'schedule') {
      if (!ctx.event.includes('schedule')) continue;
      raw = expand(rule.pattern, inputs);
    } else if (rule.type === 'match') {
      if (refTag === undefined && rule.value === '') continue;
      const subject = rule.value !== '' ? expand(rule.value, inputs) : (refTag ?? '');
      const m = matchRegExp(rule.pattern).exec(subject);
      if (!m) {
        warnings.push(`tag-rules: ${rule.pattern} does not match ${subject}`);
        continue;
      }
      if (m[rule.group] === undefined) {
        warnings.push(`tag-rules: group ${rule.group} does not exist in ${rule.pattern}`);
        continue;
      }
      raw = m[rule.group]!;
      autoLatest = true;
    } else {
      raw = expand(rule.value, inputs);
    }
    if (raw === '') continue;
    const prefix = rule.prefix !== undefined ? rule.prefix : flavor.prefix;
    const suffix = rule.suffix !== undefined ? rule.suffix : flavor.suffix;
    const tag = toTag(`${expand(prefix, inputs)}${raw}${expand(suffix, inputs)}`);
    if (tag === '') {
      warnings.push(`tag-rules: '${raw}' leaves no valid Docker tag`);
      continue;
    }
    if (!tags.includes(tag)) tags.push(tag);
    latest ??= flavor.latest === 'auto' ? autoLatest : flavor.latest === 'true';
  }
  if (flavor.latest === 'true') latest = true;
  if (flavor.latest === 'false') latest = false;
  const latestTag = toTag(
    `${flavor.prefixOnLatest ? expand(flavor.prefix, inputs, 'flavor') : ''}latest${flavor.suffixOnLatest ? expand(flavor.suffix, inputs, 'flavor') : ''}`,
  );
  return { tags, latest, latestTag, warnings };
}

export interface ImportedMetadata {
  tags: string[];
  /** Image names found in full references, in order of appearance. */
  images: string[];
  labels: Record<string, string>;
}

/** `ghcr.io/o/r:tag` → { name: 'ghcr.io/o/r', tag: 'tag' }; a bare tag has no name. */
export function splitReference(ref: string): { name?: string; tag: string } {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { tag: ref };
}

/**
 * Reads docker/metadata-action's `json` output (`{"tags": [...], "labels": {...}}`), or its `tags` and/or `labels`
 * outputs (newline-separated; a line with `=` is a label, any other a tag or a full reference).
 */
export function parseMetadata(text: string): ImportedMetadata {
  const input = 'metadata';
  let tagLines: unknown[] = [];
  let labels: Record<string, string> = {};
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let json: { tags?: unknown; labels?: unknown };
    try {
      json = JSON.parse(trimmed) as { tags?: unknown; labels?: unknown };
    } catch (err) {
      throw new InputError(input, `is not JSON (${(err as Error).message})`, "pass metadata-action's json output");
    }
    if (!Array.isArray(json.tags)) throw new InputError(input, 'the JSON has no "tags" array');
    tagLines = json.tags;
    if (json.labels !== undefined) {
      if (typeof json.labels !== 'object' || json.labels === null || Array.isArray(json.labels)) {
        throw new InputError(input, '"labels" is not an object');
      }
      labels = Object.fromEntries(
        Object.entries(json.labels).map(([k, v]) => {
          if (typeof v !== 'string') throw new InputError(input, `label '${k}' is not a string`);
          return [k, v];
        }),
      );
    }
  } else {
    for (const line of trimmed.split(/\r?\n/).map((l) => l.trim())) {
      if (line === '') continue;
      const eq = line.indexOf('=');
      if (eq > 0) labels[line.slice(0, eq)] = line.slice(eq + 1);
      else tagLines.push(line);
    }
  }
  const tags: string[] = [];
  const images: string[] = [];
  for (const entry of tagLines) {
    if (typeof entry !== 'string') throw new InputError(input, 'a tag entry is not a string');
    if (entry.includes('@')) throw new InputError(input, `'${entry}' is a digest reference, not a tag`);
    const { name, tag } = splitReference(entry.trim());
    if (!isValidTag(tag)) {
      throw new InputError(
        input,
        `'${tag}' (from '${entry}') is not a valid Docker tag`,
        'tags are [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}',
      );
    }
    if (name !== undefined && !images.includes(name)) images.push(name);
    if (!tags.includes(tag)) tags.push(tag);
  }
  if (tags.length === 0)
    throw new InputError(input, 'has no tags', 'metadata-action produced no tags for this event: check its tags rules');
  for (const key of Object.keys(labels)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(key)) throw new InputError(input, `'${key}' is not a label key`);
  }
  return { tags, images, labels };
}
