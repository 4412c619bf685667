/**
 * THE TABLE OF INPUTS: every action input and every CLI flag of lading, once.
 *
 * From this table come
 *   - the `inputs:` block of every action.yml (`npm run docs` rewrites them; a unit test fails when they differ),
 *   - the README's action reference tables (generated from the action.yml files, so from here too),
 *   - the CLI flags of every command, `lading <command> --help`, and the LADING_<NAME> env fallbacks,
 *   - the parsing of raw values (`readInputs`: list/pairs/bool/int/choice, defaults and bounds), so a default or a
 *     bound is written nowhere else: stages receive typed settings and never see a raw string.
 *
 * HOW TO ADD AN INPUT (or a flag)
 *   1. Add a row below, near its relatives. The key is the row's id; it is also the input/flag name unless `name`
 *      says otherwise (use `name` only when one name means different things in different places, e.g. `images`).
 *   2. Pick the kind:
 *        string  one line, trimmed                      text    multi-line, kept as given (YAML, JSON, a key)
 *        list    one per line or comma separated → string[]   (a repeatable flag in the CLI)
 *        pairs   KEY=VALUE per line (a value keeps its commas) → [key, value][]  (a repeatable flag in the CLI)
 *        bool    true/false → boolean (`--x` / `--no-x` in the CLI)
 *        int     whole number with `min`/`max` → number
 *        choice  one of `choices` → that string
 *      and give `default` as the typed value when there is one (no default = undefined when not given).
 *   3. Write `help` as the action.yml description (a sentence, ends with a period). `cli` is an optional shorter
 *      line for `--help`; the default and the choices are appended there automatically, so do not repeat them.
 *      `helpIn` overrides the description for one action when the input means something more specific there.
 *   4. List where it is taken: `actions` (directory names under actions/, `lading` for the umbrella action.yml) and
 *      `commands` (CLI command names). `required` lists the actions where it is `required: true`.
 *   5. `secret: true` for anything that must not appear in logs or argv (passwords, keys, tokens, webhook secrets):
 *      the CLI help points to the env var, and the action masks it.
 *   6. Run `npm run docs` (rewrites action.yml inputs and README tables), then read it in your settings parser with
 *      `readInputs(read, [...ids])` at the edge (action main / CLI command) and pass the typed value to the stage.
 * The drift test (test/unit/input-table.test.ts) fails on an action.yml input or CLI flag that is not here, on a
 * different default, description or required flag, and on a row nothing uses.
 */

export type ActionName = 'lading' | 'tags' | 'build' | 'push' | 'export' | 'manifest' | 'extract' | 'stale' | 'deploy';
export type CommandName =
  | 'tags'
  | 'build'
  | 'push'
  | 'export'
  | 'manifest'
  | 'load'
  | 'retention'
  | 'extract'
  | 'deploy'
  | 'rollback'
  | 'releases'
  | 'maintenance'
  | 'agent'
  | 'notify'
  | 'stale'
  | 'newest'
  | 'status'
  | 'logs'
  | 'exec'
  | 'lock'
  | 'prune';

export const ACTIONS: readonly ActionName[] = [
  'lading',
  'tags',
  'build',
  'push',
  'export',
  'manifest',
  'extract',
  'stale',
  'deploy',
];

interface Common {
  /** The input/flag name when it differs from the row's id. */
  name?: string;
  /** The action.yml description (and the CLI help unless `cli` is given). */
  help: string;
  /** A shorter one-line help for `lading <cmd> --help`. */
  cli?: string;
  /** A more specific description for one action. */
  helpIn?: Partial<Record<ActionName, string>>;
  actions?: readonly ActionName[];
  commands?: readonly CommandName[];
  /** Actions where the input is `required: true` (then it has no default there). */
  required?: readonly ActionName[];
  /** Passwords, keys, tokens: never logged, never in argv (the CLI prefers the env var). */
  secret?: boolean;
  /** Names, or NAME=VALUE lines whose values may be secrets: the CLI warns about a flag in the NAME=VALUE form. */
  secretPairs?: boolean;
  /** CLI: repeatable flag whose values are joined by newlines (implied for list and pairs). */
  repeatable?: boolean;
}

export type InputDef = Common &
  (
    | { kind: 'string' | 'text'; default?: string }
    | { kind: 'list' | 'pairs' }
    | { kind: 'bool'; default?: boolean }
    | { kind: 'int'; default?: number; min: number; max: number }
    | { kind: 'choice'; choices: readonly string[]; default?: string }
  );

/** The actions that reach registries (credential rows) and stores (endpoint rows). */
const REGISTRY_ACTIONS = ['lading', 'build', 'push', 'extract', 'stale', 'deploy'] as const;
const STORE_ACTIONS = ['lading', 'export', 'manifest', 'extract', 'deploy'] as const;
const REGISTRY_COMMANDS = ['push', 'extract', 'deploy', 'rollback', 'releases', 'stale', 'newest'] as const;
const STORE_COMMANDS = [
  'export',
  'manifest',
  'load',
  'retention',
  'extract',
  'deploy',
  'rollback',
  'releases',
] as const;
const HOST_COMMANDS = ['deploy', 'rollback', 'releases', 'maintenance'] as const;
const PROXY_COMMANDS = ['deploy', 'rollback', 'maintenance'] as const;
/** The day-2 verbs: they reach the hosts like a deploy (connection rows), and read what the deploy left there. */
const OPS_COMMANDS = ['status', 'logs', 'exec', 'lock', 'prune'] as const;
const CONNECT_COMMANDS = [...HOST_COMMANDS, ...OPS_COMMANDS] as const;
const TAG_ACTIONS = ['lading', 'tags', 'build'] as const;
const TAG_COMMANDS = ['tags', 'build'] as const;
const JSON_OUT = 'Print the result as JSON.';

export const INPUTS = {
  // ── tags ─────────────────────────────────────────────────────────────────────────────────────────────────────────
  'tag-images': {
    name: 'images',
    kind: 'list',
    help: 'Image names to produce full references for, one per line or comma separated (e.g. ghcr.io/acme/web).',
    cli: 'image name to produce full references for (repeatable)',
    actions: ['tags'],
    commands: ['tags'],
  },
  'sha-length': {
    kind: 'int',
    default: 7,
    min: 4,
    max: 40,
    help: 'Length of the short sha in <branch>-<shorthash> (4 to 40).',
    cli: 'length of the short sha',
    actions: TAG_ACTIONS,
    commands: TAG_COMMANDS,
  },
  channels: {
    kind: 'list',
    help: "Branch to channel-tag rules, one per line, first match wins; globs allowed (* within a segment, ** across). Empty means main=latest, master=latest, stage=stage; 'none' turns channels off.",
    cli: 'branch=channel rules, globs allowed (default main=latest,master=latest,stage=stage; none = off)',
    actions: TAG_ACTIONS,
    commands: TAG_COMMANDS,
  },
  timestamp: {
    kind: 'choice',
    choices: ['off', 'commit', 'build'],
    default: 'off',
    help: 'Add a sortable UTC timestamp tag (20180923T082316Z) from the commit time or the build time (off, commit, build).',
    cli: 'add a sortable UTC timestamp tag from the commit or the build time',
    actions: TAG_ACTIONS,
    commands: TAG_COMMANDS,
  },
  semver: {
    kind: 'bool',
    default: true,
    help: 'On a version tag (v1.2.3) add 1.2.3, 1.2 and 1.',
    cli: '1.2.3, 1.2, 1 on version tags',
    actions: TAG_ACTIONS,
    commands: TAG_COMMANDS,
  },
  'semver-latest': {
    kind: 'choice',
    choices: ['highest', 'always', 'never'],
    default: 'highest',
    help: 'When a version tag also gets latest (highest, always, never).',
    cli: 'when a version tag also gets latest',
    actions: TAG_ACTIONS,
    commands: TAG_COMMANDS,
  },
  pr: {
    kind: 'bool',
    default: true,
    help: 'Add pr-<n> on pull request events.',
    cli: 'pr-<n> on pull requests',
    actions: TAG_ACTIONS,
    commands: TAG_COMMANDS,
  },
  'full-sha': {
    kind: 'bool',
    default: false,
    help: 'Add the full 40-character sha as a tag.',
    cli: 'the full sha as a tag',
    actions: TAG_ACTIONS,
    commands: TAG_COMMANDS,
  },
  prefix: {
    kind: 'string',
    help: 'Prefix for every tag.',
    actions: TAG_ACTIONS,
    commands: TAG_COMMANDS,
  },
  suffix: {
    kind: 'string',
    help: 'Suffix for every tag.',
    actions: TAG_ACTIONS,
    commands: TAG_COMMANDS,
  },
  'tag-rules': {
    kind: 'text',
    repeatable: true,
    help: "More tags with docker/metadata-action's rules, one per line: type=raw,value=<tag>; type=match,pattern=<regex>,group=<n> (on git tags); type=schedule,pattern=<template> (on schedule events, e.g. nightly-{{date 'YYYYMMDD'}}); each with optional enable=<true|false|{{is_default_branch}}|{{is_not_default_branch}}>, priority=, prefix=, suffix=.",
    cli: 'a metadata-action tag rule: type=raw|match|schedule,… (repeatable)',
    actions: TAG_ACTIONS,
    commands: TAG_COMMANDS,
  },
  flavor: {
    kind: 'text',
    repeatable: true,
    help: "docker/metadata-action's flavor, one entry per line: latest=auto|true|false (auto: `latest` when the first tag rule that yields a tag is a type=match; false also drops lading's own `latest`), prefix=<p>[,onlatest=true], suffix=<s>[,onlatest=true] for the tag-rules tags.",
    cli: 'a metadata-action flavor entry: latest=auto|true|false, prefix=…, suffix=…, onlatest=… (repeatable)',
    actions: TAG_ACTIONS,
    commands: TAG_COMMANDS,
  },
  metadata: {
    kind: 'text',
    help: "docker/metadata-action's json output, or its tags and/or labels outputs (newline-separated), to use as the tags (full references map to their tag part) and labels instead of computing them.",
    cli: "metadata-action's json, tags or labels output (@file or - for stdin); replaces the computed tags",
    actions: TAG_ACTIONS,
    commands: TAG_COMMANDS,
  },
  sha: {
    kind: 'string',
    help: 'The commit to tag (default: from CI variables, else git HEAD).',
    commands: ['tags'],
  },
  ref: {
    kind: 'string',
    help: 'The ref being built, e.g. refs/heads/main (default: from CI variables, else git).',
    commands: ['tags'],
  },

  // ── build ────────────────────────────────────────────────────────────────────────────────────────────────────────
  images: {
    kind: 'text',
    repeatable: true,
    help: 'Images to build, as a YAML list: plain names (context .) or maps with name, id, context, dockerfile (relative to the context), target, build-args, platforms. A build arg naming another image of the list links the two.',
    cli: 'images: names, or a YAML list of {name, context, dockerfile, target, build-args, platforms} (repeatable)',
    helpIn: {
      stale:
        'Images to check, as for the build (a YAML list of names or maps with name, context, dockerfile, build-args).',
    },
    actions: ['lading', 'build', 'stale'],
    commands: ['build', 'stale'],
  },
  'compose-files': {
    kind: 'list',
    help: 'Compose files whose services with build: and image: are built (one per line; later files override).',
    cli: 'compose files (repeatable; later files override)',
    helpIn: {
      manifest: 'Compose files to ship with the manifest (default: the ones the build read).',
      stale: 'Compose files whose services with build and image are checked (one per line).',
    },
    actions: ['lading', 'build', 'manifest', 'stale'],
    commands: ['build', 'manifest', 'stale'],
  },
  'compose-env-file': {
    kind: 'list',
    help: "Env files compose reads for interpolation instead of the project .env (compose's --env-file; one per line).",
    cli: "env files for interpolation instead of the project .env (compose's --env-file; repeatable)",
    actions: ['lading', 'build', 'manifest', 'stale'],
    commands: ['build', 'manifest', 'stale'],
  },
  'compose-resolver': {
    kind: 'choice',
    choices: ['auto', 'compose', 'builtin'],
    default: 'auto',
    help: "How the compose project is read: auto (docker compose v2, else docker-compose v1, else lading's built-in resolver of the compose spec), compose (fail without compose), builtin.",
    cli: 'how the compose project is read (compose itself when installed, or the built-in resolver)',
    actions: ['lading', 'build', 'manifest', 'stale'],
    commands: ['build', 'manifest', 'stale'],
  },
  'tags-json': {
    kind: 'text',
    help: 'The json output of the tags step; when empty the tags are computed here with the tag inputs.',
    cli: 'output of lading tags --json (@file or - for stdin); default: computed here',
    actions: ['build'],
    commands: ['build'],
  },
  platforms: {
    kind: 'list',
    help: 'Platforms for images that name none (several need buildx, and are pushed by the build).',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  'build-args': {
    kind: 'pairs',
    help: "KEY=VALUE build args for every image, one per line (an image's own args win).",
    cli: 'KEY=VALUE for every image (repeatable)',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  labels: {
    kind: 'pairs',
    help: 'Extra KEY=VALUE labels, one per line (the OCI labels are always set).',
    cli: 'extra KEY=VALUE labels (repeatable)',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  'cache-from': {
    kind: 'list',
    help: 'Cache sources (buildx syntax, e.g. type=gha), one per line.',
    cli: 'cache sources (repeatable)',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  'cache-to': {
    kind: 'list',
    help: 'Cache exports (buildx only), one per line.',
    cli: 'cache exports, buildx only (repeatable)',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  provenance: {
    kind: 'string',
    default: 'false',
    help: 'Provenance attestations (buildx --provenance; true, false or mode=max); off so the pushed digest is the image itself.',
    cli: 'provenance attestations, buildx (true | false | mode=max)',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  sbom: {
    kind: 'string',
    help: "SBOM attestations (buildx --sbom; true, false or generator=…); empty = buildx's default.",
    cli: 'SBOM attestations, buildx (true | false | generator=…)',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  'no-cache': {
    kind: 'bool',
    default: false,
    help: 'Build without the build cache.',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  secrets: {
    kind: 'text',
    secret: true,
    help: 'Build secrets as id=value, one per line (the value is the rest of the line), mounted with RUN --mount=type=secret,id=<id>; never build args, never in the image or its history. Masked.',
    actions: ['lading', 'build'],
  },
  'secret-files': {
    kind: 'text',
    help: 'Build secrets from files, id=path, one per line.',
    cli: 'id=path: a build secret from a file (repeatable; RUN --mount=type=secret)',
    repeatable: true,
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  'secret-envs': {
    kind: 'text',
    help: 'Build secrets from environment variables of the step, id=VARIABLE, one per line.',
    cli: 'id=VARIABLE: a build secret from an environment variable (repeatable)',
    repeatable: true,
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  ssh: {
    kind: 'list',
    help: 'SSH agent sockets or keys to forward to RUN --mount=type=ssh (default, or id=path), one per line.',
    cli: 'SSH agent socket or key to forward (default | id=path; repeatable)',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  'shm-size': {
    kind: 'string',
    help: 'Size of /dev/shm for RUN steps (e.g. 2g).',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  ulimit: {
    kind: 'list',
    help: 'Ulimits for RUN steps (type=soft[:hard], e.g. nofile=1024:2048), one per line.',
    cli: 'ulimit for RUN steps (nofile=1024:2048; repeatable)',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  network: {
    kind: 'string',
    help: 'Network mode for RUN steps (default, host, none).',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  pull: {
    kind: 'bool',
    default: false,
    help: 'Pull newer versions of external base images.',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  only: {
    kind: 'list',
    help: 'Rebuild only these image ids (and every image built on them), e.g. the rebuild list of lading stale for a scheduled workflow; other upstream images are taken from their channel tag. Empty = build everything.',
    cli: 'rebuild only these image ids and what is built on them (lading stale --json rebuild)',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  cwd: {
    kind: 'string',
    help: 'The workspace (default: the current directory).',
    commands: ['tags', 'build', 'manifest'],
  },

  // ── push ─────────────────────────────────────────────────────────────────────────────────────────────────────────
  push: {
    kind: 'bool',
    default: true,
    help: 'Publish the images (push, or export with store) and write the manifest; false builds only, e.g. for pull requests (set it from the event name).',
    helpIn: { build: 'false builds only (pull requests); several platforms with buildx then build without pushing.' },
    cli: 'false builds only: several platforms with buildx build without pushing',
    actions: ['lading', 'build'],
    commands: ['build'],
  },
  'build-json': {
    kind: 'text',
    help: 'The json output of the build step.',
    cli: 'output of lading build --json (@file or - for stdin)',
    required: ['push', 'export'],
    actions: ['push', 'export'],
    commands: ['push', 'export'],
  },
  'ecr-create-repository': {
    kind: 'bool',
    default: false,
    help: 'Create missing ECR repositories before pushing.',
    actions: ['lading', 'push'],
    commands: ['push'],
  },
  retries: {
    kind: 'int',
    default: 4,
    min: 1,
    max: 10,
    help: 'Attempts per push for transient failures (1 to 10).',
    cli: 'attempts per push',
    actions: ['lading', 'push'],
    commands: ['push'],
  },

  // ── export, load, retention ──────────────────────────────────────────────────────────────────────────────────────
  store: {
    kind: 'string',
    help: 'Where to export to, s3://bucket/prefix, gs://bucket/prefix or an absolute directory.',
    helpIn: {
      lading:
        'Registry-less: export the images to s3://bucket/prefix, gs://bucket/prefix or a directory instead of pushing them (docker save streamed, compressed, content-addressed). Empty = push to the registries in the image names.',
    },
    cli: 's3://bucket/prefix, gs://bucket/prefix or a directory',
    required: ['export'],
    actions: ['lading', 'export'],
    commands: ['export'],
  },
  'store-mode': {
    kind: 'choice',
    choices: ['archive', 'layers'],
    default: 'archive',
    help: 'archive (one compressed docker save per image) or layers (each layer once, by digest; only missing layers travel).',
    cli: 'archive (one object per image) | layers (one object per layer, deduplicated)',
    actions: ['lading', 'export'],
    commands: ['export'],
  },
  compression: {
    kind: 'choice',
    choices: ['zstd', 'gzip', 'none'],
    default: 'zstd',
    help: 'zstd (falls back to gzip where zstd is unavailable), gzip or none.',
    helpIn: { lading: 'zstd (gzip where zstd is unavailable), gzip or none, for store exports.' },
    cli: 'compression of exported objects (zstd falls back to gzip where unavailable)',
    actions: ['lading', 'export'],
    commands: ['export'],
  },
  'compression-level': {
    kind: 'int',
    min: 0,
    max: 19,
    help: 'Compression level; empty = zstd 3 / gzip 6.',
    cli: 'compression level (default zstd 3, gzip 6)',
    actions: ['export'],
    commands: ['export'],
  },
  aliases: {
    kind: 'list',
    help: 'Names for <image>-<alias> copies next to the content objects (archive mode), one per line; "tags" adds every tag, "none" adds none. Empty = the channel tag of this build (latest, stage) if any.',
    helpIn: {
      lading:
        '<image>-<alias> copies next to exported archives, one per line; empty = the channel tag (latest, stage).',
    },
    cli: 'copies named <image>-<alias> (default: the channel, e.g. latest); "tags" = every tag (repeatable)',
    actions: ['lading', 'export'],
    commands: ['export'],
  },
  'upload-concurrency': {
    kind: 'int',
    default: 4,
    min: 1,
    max: 64,
    help: 'Parallel part uploads per object.',
    actions: ['export'],
    commands: ['export', 'load', 'retention'],
  },
  'retention-store': {
    name: 'store',
    kind: 'string',
    help: 'The store to clean: s3://bucket/prefix or gs://bucket/prefix (where manifests/by-sha/ lives).',
    commands: ['retention'],
  },
  keep: {
    kind: 'int',
    default: 10,
    min: 1,
    max: 100000,
    help: 'Manifests to keep, newest first.',
    commands: ['retention'],
  },
  apply: {
    kind: 'bool',
    default: false,
    help: 'Delete the unreferenced objects (default: a dry run that lists them).',
    commands: ['retention'],
  },
  'load-images': {
    name: 'images',
    kind: 'list',
    help: 'Image ids from the manifest to load (default: every stored image).',
    cli: 'image ids from the manifest (repeatable; default: every stored image)',
    commands: ['load'],
  },
  source: {
    kind: 'string',
    help: 'An exported object instead of a registry image: s3://bucket/key, gs://bucket/object, an absolute path, or an https URL (a docker save archive, plain/gzip/zstd, or a layers-mode `.index.json`).',
    cli: 'an exported object instead of a manifest or image: s3://…, gs://…, /path or https URL',
    actions: ['extract'],
    commands: ['load', 'extract'],
  },
  sha256: {
    kind: 'string',
    help: 'Expected sha256 of the `source` object (verified before anything is written).',
    cli: 'expected sha256 of the --source object (load: default its .json sidecar)',
    actions: ['extract'],
    commands: ['load', 'extract'],
  },

  // ── manifest ─────────────────────────────────────────────────────────────────────────────────────────────────────
  'push-json': {
    kind: 'text',
    help: 'The json output of the push step, or of the export step (registry-less).',
    cli: 'output of lading push --json or lading export --json (@file or - for stdin)',
    required: ['manifest'],
    actions: ['manifest'],
    commands: ['manifest'],
  },
  'compose-project': {
    kind: 'string',
    help: 'The compose project name on the hosts.',
    actions: ['lading', 'manifest'],
    commands: ['manifest'],
  },
  'pin-external': {
    kind: 'bool',
    default: false,
    help: "Resolve the images of services that lading does not build (databases, caches, third-party images) to their registry digest at manifest time, so a release is reproducible. A registry that needs a login gets the one the runner's docker config holds for it (docker/login-action, docker login), and no other.",
    cli: 'pin third-party images of the compose project to their registry digest',
    actions: ['lading', 'manifest'],
    commands: ['manifest'],
  },
  'bundle-size-limit': {
    kind: 'int',
    default: 50,
    min: 0,
    max: 4096,
    help: 'Limit in MiB for the local files shipped with the release (.env, env_file, bind-mount sources inside the project, configs and secrets files); the error names the largest.',
    cli: 'limit in MiB for the local files shipped with the release',
    actions: ['lading', 'manifest'],
    commands: ['manifest'],
  },
  'compose-env': {
    kind: 'text', // NAME lines (or comma-separated names), or NAME=VALUE lines kept whole: lib/inputs parseEnvNames
    repeatable: true,
    secretPairs: true,
    help: 'Variables the compose files read that the deploy supplies, one NAME per line (DOCKER_TAG and LADING_IMAGE_<ID> are set). Only the names enter the manifest: give the values to the deploy (its compose-env). NAME=VALUE also works: the value is used only to read the project here, never written.',
    cli: 'a variable the deploy supplies: NAME (or NAME=VALUE, the value used only here; repeatable)',
    actions: ['lading', 'manifest'],
    commands: ['manifest'],
  },
  'manifest-path': {
    kind: 'string',
    help: 'Where to write the manifest (default $RUNNER_TEMP/lading-manifest.json).',
    cli: 'where to write the manifest (default ./lading-manifest.json)',
    actions: ['lading', 'manifest'],
    commands: ['manifest'],
  },
  'manifest-store': {
    kind: 'string',
    help: 'Also publish the manifest to s3://bucket/prefix or gs://bucket/prefix under manifests/by-sha/<sha>.json, manifests/by-tag/<tag>.json and manifests/channels/<channel>.json (what manual deploys and agents read).',
    helpIn: {
      lading: 'Also publish the manifest to s3://… or gs://… under manifests/by-sha, by-tag and channels.',
    },
    cli: 'also publish to s3://bucket/prefix or gs://bucket/prefix (by-sha, by-tag, channels)',
    actions: ['lading', 'manifest'],
    commands: ['manifest'],
  },
  'notify-url': {
    kind: 'list',
    help: 'Pull mode: lading agents to notify after the manifest is written (and published), one URL per line; each gets a signed webhook naming the manifest-store location, or the manifest itself.',
    cli: 'lading agents to notify with a signed webhook (repeatable)',
    actions: ['lading', 'manifest'],
    commands: ['manifest'],
  },
  'notify-secret': {
    kind: 'text',
    secret: true,
    help: "The shared webhook secret (HMAC-SHA256), at least 16 characters, the same as the agent's. Masked.",
    cli: 'the shared webhook secret (HMAC-SHA256)',
    actions: ['lading', 'manifest'],
    commands: ['manifest'],
  },
  'notify-format': {
    kind: 'choice',
    choices: ['lading', 'github'],
    default: 'lading',
    help: 'lading (X-Lading-Signature with a signed timestamp) or github (X-Hub-Signature-256).',
    cli: 'webhook signature format',
    actions: ['lading', 'manifest'],
    commands: ['manifest'],
  },
  'notify-ca': {
    kind: 'text',
    help: "PEM certificate(s) to trust for the agents' TLS, besides the system's: the agent's self-signed certificate or your private CA (not a secret: a repository variable will do).",
    cli: "PEM text of a certificate to trust for the agents' TLS (self-signed or private CA)",
    actions: ['lading', 'manifest'],
    commands: ['manifest'],
  },
  'notify-ca-file': {
    kind: 'string',
    help: "Or: a file holding those PEM certificate(s) (the agent's self-signed certificate, or your private CA).",
    cli: "a PEM file to trust for the agents' TLS (self-signed certificate or private CA)",
    actions: ['lading', 'manifest'],
    commands: ['manifest'],
  },

  // ── extract ──────────────────────────────────────────────────────────────────────────────────────────────────────
  image: {
    kind: 'string',
    help: 'A registry image (host/repo:tag or host/repo@sha256:…). With `manifest`, the manifest entry to read instead (image id, compose service or name).',
    cli: 'registry image (host/repo:tag or @sha256:…); with --manifest, the entry (id, service, name)',
    actions: ['extract'],
    commands: ['extract'],
  },
  paths: {
    kind: 'list',
    help: 'Absolute paths inside the image to copy (files or directories, recursive), one per line or comma separated. Each lands under `destination` with its image path (/srv/app → <destination>/srv/app).',
    cli: 'image paths to copy, files or directories (repeatable)',
    required: ['extract'],
    actions: ['extract'],
    commands: ['extract'],
  },
  destination: {
    kind: 'string',
    help: 'The directory to copy into (created when missing).',
    cli: 'directory to copy into; each path keeps its image path below it',
    required: ['extract'],
    actions: ['extract'],
    commands: ['extract'],
  },
  platform: {
    kind: 'string',
    default: 'linux/amd64',
    help: 'The platform to take from a multi-platform image (os/arch[/variant]).',
    actions: ['extract'],
    commands: ['extract'],
  },
  'source-max-size': {
    kind: 'string',
    default: '8g',
    help: 'Largest `source` archive downloaded from an https URL (bytes, or with k/m/g); a larger one is refused while it streams, before it is read to the end.',
    cli: 'largest https source archive (bytes, or with k/m/g)',
    actions: ['extract'],
    commands: ['extract'],
  },
  'source-idle-timeout': {
    kind: 'int',
    default: 60,
    min: 1,
    max: 3600,
    help: 'Seconds an https `source` may send nothing (while connecting or mid-download) before the download is abandoned.',
    cli: 'seconds an https source may stall',
    actions: ['extract'],
    commands: ['extract'],
  },
  'cache-dir': {
    kind: 'string',
    help: 'Blob cache, keyed by digest (default $RUNNER_TEMP/lading-extract-cache; ~/.cache/lading/extract outside Actions).',
    actions: ['extract'],
    commands: ['extract'],
  },

  // ── newest ───────────────────────────────────────────────────────────────────────────────────────────────────────
  'newest-image': {
    name: 'image',
    kind: 'string',
    help: 'The image name, without a tag.',
    commands: ['newest'],
  },

  // ── deploy, rollback, releases ───────────────────────────────────────────────────────────────────────────────────
  command: {
    kind: 'choice',
    choices: [
      'deploy',
      'rollback',
      'releases',
      'maintenance',
      'status',
      'logs',
      'exec',
      'lock-status',
      'lock-release',
      'prune',
    ],
    default: 'deploy',
    help: "deploy, rollback, releases, maintenance (the shared proxy answers 503 for the app's host names), or a day-2 verb: status, logs, exec, lock-status, lock-release, prune (see the README's day-2 section).",
    actions: ['deploy'],
  },
  target: {
    kind: 'choice',
    choices: ['compose', 'swarm'],
    default: 'compose',
    help: 'compose (the hosts run docker compose) or swarm (a stack deployed through a swarm manager: the first of hosts that answers over SSH, or docker-host from the runner).',
    cli: 'compose (hosts over SSH) | swarm (a stack through a swarm manager)',
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  manifest: {
    kind: 'text',
    help: 'The manifest: a file path, its JSON, an https URL, or s3://bucket/key / gs://bucket/object (such as the manifest-location output of the build, or manifests/channels/<channel>.json).',
    helpIn: {
      extract:
        'A lading manifest (file path, s3://, gs://, https://); `image` names the entry. Its transport decides where to read.',
    },
    cli: 'the manifest: a file, its JSON, an https URL, s3://bucket/key or gs://bucket/object',
    actions: ['deploy', 'extract'],
    commands: ['deploy', 'load', 'extract'],
  },
  to: {
    kind: 'string',
    default: 'previous',
    help: 'For rollback: previous, or a release id, tag or sha still on the hosts.',
    cli: 'previous, a release id, a tag or a sha',
    actions: ['deploy'],
    commands: ['rollback'],
  },
  hosts: {
    kind: 'list',
    help: 'Hosts, one per line, as host, host:port or user@host:port.',
    cli: 'host, host:port or user@host:port (repeatable)',
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  inventory: {
    kind: 'text',
    help: 'Hosts as YAML (text or a file path): a list of user@host:port strings or maps with host, port, user, and per-host root, project and probe-url overrides.',
    cli: 'YAML file (or text) of hosts with per-host root, project, probe-url',
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  'ssh-user': {
    kind: 'string',
    default: 'root',
    help: 'SSH user for hosts that do not name one.',
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  'ssh-port': {
    kind: 'int',
    default: 22,
    min: 1,
    max: 65535,
    help: 'SSH port for hosts that do not name one.',
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  'ssh-key': {
    kind: 'text',
    secret: true,
    help: 'The private key (OpenSSH or PEM text, or a file path). Masked. Not needed for swarm via docker-host.',
    cli: 'private key file (or its text)',
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  'compose-secrets': {
    kind: 'pairs',
    secret: true,
    help: "KEY=VALUE variables for the release's .env (mode 0600 on the hosts) that never enter the manifest: database passwords, API keys (from your CI's secrets). Masked.",
    cli: "KEY=VALUE for the release's .env, never in the manifest (repeatable)",
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'deploy-compose-env': {
    name: 'compose-env',
    kind: 'pairs',
    secret: true,
    help: "KEY=VALUE values for the variables the manifest names (its compose-env), one per line, from your CI's secrets: written to the release's .env (mode 0600 on the hosts), never to the manifest. A named variable without a value is refused before any host is touched. Masked in the logs when a value can be a secret: 8 characters or more, or 3 or more under a name like *_TOKEN, *_PASSWORD or *_KEY (not `info` or `3`, which would blank those words out of every line); use compose-secrets for a short secret.",
    cli: 'KEY=VALUE for the variables the manifest names (repeatable; prefer env LADING_COMPOSE_ENV or --compose-env-file)',
    actions: ['deploy'],
    commands: ['deploy', 'rollback'],
  },
  'deploy-compose-env-file': {
    name: 'compose-env-file',
    kind: 'list',
    help: 'Env files (KEY=VALUE lines) on the machine running the deploy with values for the variables the manifest names; compose-env wins over them. (A swarm rollback re-renders the stack: give them again.)',
    cli: 'env file with values for the variables the manifest names (repeatable)',
    actions: ['deploy'],
    commands: ['deploy', 'rollback'],
  },
  'ssh-passphrase': {
    kind: 'string',
    secret: true,
    help: 'Passphrase of the private key.',
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  'known-hosts': {
    kind: 'text',
    help: "known_hosts lines pinning the hosts' keys (plain or hashed, [host]:port entries). Hosts without an entry are refused. Get them once with ssh-keyscan and check them out of band.",
    cli: 'known_hosts file (or its text) pinning the host keys',
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  'insecure-ignore-host-key': {
    kind: 'bool',
    default: false,
    help: 'Accept any host key (logged loudly, with the fingerprint accepted). Do not use in production.',
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  'jump-host': {
    kind: 'string',
    help: 'A bastion to connect through, as user@host:port (same key and known_hosts).',
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  'docker-host': {
    kind: 'string',
    help: "For target swarm: the manager's DOCKER_HOST. With hosts, used on the SSH host (a rootless socket, say); without hosts, the runner drives that docker itself and keeps the releases and history under root on the runner.",
    cli: "swarm: the manager's DOCKER_HOST (on the SSH host; without hosts, from here)",
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  root: {
    kind: 'string',
    default: '/srv/lading',
    help: 'Directory on the hosts under which <project>/releases, current, history.jsonl and .lock live.',
    cli: 'deploy root on the hosts',
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  project: {
    kind: 'string',
    help: "Compose project name (default the manifest's compose project).",
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  'pre-deploy': {
    kind: 'string',
    help: 'Hook run once per deploy on the first host (target swarm: the manager), in a one-off container of the new release, after its images are pulled and before anything switches (migrations); its failure aborts the deploy. A JSON array of arguments or words (or x-lading hooks in the compose file).',
    cli: 'hook: once, first host (swarm: the manager), one-off container of the new release before any switch (migrations)',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'pre-switch': {
    kind: 'string',
    help: 'Hook run on each host (target swarm: the manager) in a one-off container of the new release before its containers switch to it (swarm: before docker stack deploy).',
    cli: 'hook: each host (swarm: the manager), before its switch (swarm: before docker stack deploy)',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'post-switch': {
    kind: 'string',
    help: 'Hook run on each host (target swarm: the manager) in a one-off container of the new release after it switched (swarm: after the stack converged).',
    cli: 'hook: each host (swarm: the manager), after its switch (swarm: once the stack converged)',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'post-deploy': {
    kind: 'string',
    help: 'Hook run once on the first host, in a one-off container of the new release, after every host deployed.',
    cli: 'hook: once, after every host deployed',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'hook-service': {
    kind: 'string',
    help: 'The compose service whose image, config, env and networks the hooks run with (default the first built service; target swarm: its image, environment, user, working dir and, when attachable, network).',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'hook-timeout': {
    kind: 'int',
    default: 600,
    min: 1,
    max: 86400,
    help: 'Seconds a hook may run before it is stopped and fails.',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'runner-hook': {
    kind: 'string',
    help: 'A script on the runner called before and after the deploy (LADING_HOOK=pre-deploy, post-deploy or failure, with LADING_RELEASE, LADING_TAG, LADING_SHA, LADING_HOSTS, LADING_RESULT…), for notifications; its failure is a warning.',
    cli: 'a local script called before/after the deploy (LADING_HOOK, LADING_RELEASE, …) for notifications',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'keep-releases': {
    kind: 'int',
    default: 5,
    min: 1,
    max: 100,
    help: 'Releases kept on each host.',
    actions: ['deploy'],
    commands: ['deploy', 'prune'],
  },
  'prune-images': {
    kind: 'bool',
    default: false,
    help: 'Also remove the images that only pruned releases used (never one a kept release or a container uses).',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'lock-ttl': {
    kind: 'int',
    default: 900,
    min: 10,
    max: 86400,
    help: 'Seconds a lock is valid; a lock older than this (a cancelled run) is broken and logged.',
    actions: ['deploy'],
    commands: [...HOST_COMMANDS, 'prune'],
  },
  'lock-wait': {
    kind: 'int',
    default: 300,
    min: 0,
    max: 86400,
    help: 'Seconds to wait for a lock held by another deploy before failing.',
    actions: ['deploy'],
    commands: [...HOST_COMMANDS, 'prune'],
  },
  'health-timeout': {
    kind: 'int',
    default: 120,
    min: 1,
    max: 3600,
    help: 'Seconds for every service to become healthy (healthcheck) or stay running; for target swarm, for the stack to converge (every task on the new digest) or be rolled back.',
    cli: 'seconds to become healthy (swarm: to converge)',
    actions: ['deploy'],
    commands: HOST_COMMANDS,
  },
  'health-stable': {
    kind: 'int',
    default: 3,
    min: 0,
    max: 600,
    help: 'Seconds services without a healthcheck must keep running without restarts.',
    actions: ['deploy'],
    commands: HOST_COMMANDS,
  },
  rolling: {
    kind: 'text',
    repeatable: true,
    help: 'Zero-downtime services behind the shared Caddy proxy, one per line: `service host[,host][/path] [port=N] [health=/path] [replicas=N] [drain=S]` (or `x-lading: {strategy: rolling, hosts: [...]}` on the service in the compose file; this input wins). New containers start beside the old, pass a direct HTTP probe, traffic is switched in the proxy, the old ones drain, then go. Other services are recreated as before.',
    cli: 'rolling service behind the proxy: "service host[,host][/path] [port=N] [health=/p] [drain=S]" (repeatable)',
    actions: ['deploy'],
    commands: PROXY_COMMANDS,
  },
  'proxy-image': {
    kind: 'string',
    default: 'caddy:2.10-alpine',
    help: 'The Caddy 2 image of the proxy lading runs on each host (started if missing; replaced only with proxy-upgrade).',
    actions: ['deploy'],
    commands: PROXY_COMMANDS,
  },
  'proxy-ports': {
    kind: 'string',
    default: '80:80,443:443',
    help: 'Published ports of the proxy, `[ip:]port:80` and `[ip:]port:443`, comma separated.',
    actions: ['deploy'],
    commands: PROXY_COMMANDS,
  },
  'proxy-tls': {
    kind: 'choice',
    choices: ['auto', 'internal', 'off'],
    default: 'auto',
    help: "auto (ACME certificates for the apps' host names), internal (Caddy's own CA, for tests) or off (HTTP only).",
    actions: ['deploy'],
    commands: PROXY_COMMANDS,
  },
  'proxy-network': {
    kind: 'string',
    default: 'lading-proxy',
    help: "The docker network the proxy shares with rolling services' containers.",
    actions: ['deploy'],
    commands: PROXY_COMMANDS,
  },
  'proxy-container': {
    kind: 'string',
    default: 'lading-proxy',
    help: 'The proxy container (one per host, shared by every app deployed there).',
    actions: ['deploy'],
    commands: PROXY_COMMANDS,
  },
  'proxy-upgrade': {
    kind: 'bool',
    default: false,
    help: 'Replace a running proxy whose image differs from proxy-image, or that was started without net.ipv4.tcp_migrate_req on a kernel that has it (a short interruption for every app on the host).',
    actions: ['deploy'],
    commands: PROXY_COMMANDS,
  },
  maintenance: {
    kind: 'choice',
    choices: ['on', 'off'],
    help: 'For command maintenance: on (503 with the maintenance page) or off.',
    cli: 'on | off (also the first argument: lading maintenance on)',
    actions: ['deploy'],
    commands: ['maintenance'],
  },
  'maintenance-page': {
    kind: 'text',
    help: 'For maintenance on: the HTML page answered with 503 (its text or a file path); a plain default page otherwise.',
    cli: 'HTML file (or its text) answered with the 503',
    actions: ['deploy'],
    commands: ['maintenance'],
  },
  'probe-url': {
    kind: 'string',
    help: 'An http(s) URL fetched from each host after the health gate (must answer 2xx).',
    actions: ['deploy'],
    commands: HOST_COMMANDS,
  },
  'step-timeout': {
    kind: 'int',
    default: 900,
    min: 10,
    max: 86400,
    help: 'Seconds one remote step may take.',
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  'max-parallel': {
    kind: 'int',
    default: 1,
    min: 1,
    max: 1000,
    help: 'Hosts deployed at once (rolling batches of this size).',
    actions: ['deploy'],
    commands: HOST_COMMANDS,
  },
  'fail-fast': {
    kind: 'bool',
    default: true,
    help: 'Stop before the next batch when a host failed.',
    actions: ['deploy'],
    commands: HOST_COMMANDS,
  },
  'max-failures': {
    kind: 'string',
    help: 'Error budget: hosts (a count, or a share like 5%) that may fail or roll back before no further batch starts; overrides fail-fast when set.',
    cli: 'error budget: hosts (n or n%) that may fail before no further batch starts',
    actions: ['deploy'],
    commands: HOST_COMMANDS,
  },
  canary: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 100000,
    help: 'Deploy the first N hosts first, on their own (batches of max-parallel); any failure there stops the rollout.',
    actions: ['deploy'],
    commands: HOST_COMMANDS,
  },
  rollback: {
    kind: 'bool',
    default: true,
    help: 'Roll a host back to its previous release when the new one fails its health gate.',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'compose-policy': {
    kind: 'choice',
    choices: ['off', 'strict'],
    default: 'off',
    help: 'off deploys any compose file; strict refuses, before any host is touched, compose services with privileged: true, network_mode/pid/ipc/userns_mode: host, cap_add ALL or SYS_ADMIN, or bind mounts of /, /etc, /root or the docker socket, unless compose-policy-allow names them.',
    cli: 'refuse privileged services, host namespaces and bind mounts of /, /etc, /root, the docker socket',
    actions: ['lading', 'manifest', 'deploy'],
    commands: ['manifest', 'deploy'],
  },
  'compose-policy-allow': {
    kind: 'list',
    help: 'What compose-policy strict lets through: privileged, host-network, host-pid, host-ipc, host-userns, cap-all, cap-sys-admin, docker-socket, /, /etc, /root.',
    cli: 'what compose-policy strict lets through (repeatable)',
    actions: ['lading', 'manifest', 'deploy'],
    commands: ['manifest', 'deploy'],
  },
  'allow-downgrade': {
    kind: 'bool',
    default: false,
    help: 'Deploy a manifest older than the one the host runs on the same channel (refused by default).',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'update-parallelism': {
    kind: 'int',
    default: 1,
    min: 0,
    max: 1000,
    help: 'For target swarm: tasks updated at once (update_config/rollback_config parallelism; 0 = all).',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'update-delay': {
    kind: 'int',
    default: 5,
    min: 0,
    max: 3600,
    help: 'For target swarm: seconds between update batches.',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'update-monitor': {
    kind: 'int',
    default: 15,
    min: 1,
    max: 3600,
    help: 'For target swarm: seconds each new task is watched for failure before the update moves on.',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'update-order': {
    kind: 'choice',
    choices: ['auto', 'start-first', 'stop-first'],
    default: 'auto',
    help: 'For target swarm: auto (start-first, except for services on host networking, with host-mode ports or writable volumes, which go stop-first), start-first or stop-first.',
    cli: 'swarm: auto is start-first where safe',
    actions: ['deploy'],
    commands: ['deploy'],
  },
  'github-token': {
    kind: 'string',
    secret: true,
    help: 'A token with deployments:write (e.g. github.token) to record a GitHub Deployment with statuses.',
    actions: ['deploy'],
  },
  environment: {
    kind: 'string',
    default: 'production',
    help: 'The GitHub Deployment environment.',
    actions: ['deploy'],
  },
  'environment-url': {
    kind: 'string',
    help: 'The URL shown on the GitHub Deployment.',
    actions: ['deploy'],
  },
  'run-id': {
    kind: 'string',
    help: 'Lock owner and history run id (default the GitHub run id and attempt).',
    actions: ['deploy'],
    commands: CONNECT_COMMANDS,
  },
  'image-fetch': {
    kind: 'choice',
    choices: ['ssh', 'url'],
    default: 'ssh',
    help: 'Registry-less images: ssh (the runner fetches each archive once, verifies it and sends it over SSH) or url (each host downloads it with a 15-minute presigned/signed URL; needs curl or wget on the hosts).',
    cli: 'registry-less images: ssh (the runner sends them) | url (hosts download them, signed URLs)',
    actions: ['deploy'],
    commands: HOST_COMMANDS,
  },

  // ── day-2 verbs: status, logs, exec, lock, prune ─────────────────────────────────────────────────────────────────
  service: {
    kind: 'string',
    help: 'The compose service (logs: default all; exec: required).',
    cli: 'the compose service (logs: default all; exec: whose image, config, env and networks the command gets)',
    actions: ['deploy'],
    commands: ['logs', 'exec'],
  },
  tail: {
    kind: 'string',
    help: 'Lines per container from the end of its log (a number, or all).',
    actions: ['deploy'],
    commands: ['logs'],
  },
  since: {
    kind: 'string',
    help: 'Only log lines since a duration ago (10m, 1h30m) or a date/time (2026-11-29T10:00:00Z).',
    actions: ['deploy'],
    commands: ['logs'],
  },
  follow: {
    kind: 'bool',
    default: false,
    help: 'Keep streaming new log lines until Ctrl-C.',
    commands: ['logs'],
  },
  timestamps: {
    kind: 'bool',
    default: false,
    help: "Prefix each log line with docker's timestamp.",
    commands: ['logs'],
  },
  running: {
    kind: 'bool',
    default: false,
    help: 'Run the command in a running container of the service instead of a new one-off container.',
    actions: ['deploy'],
    commands: ['exec'],
  },
  host: {
    kind: 'string',
    help: 'Only this host, as listed in hosts or the inventory (default: every host, in order).',
    actions: ['deploy'],
    commands: ['exec'],
  },
  tty: {
    kind: 'choice',
    choices: ['auto', 'true', 'false'],
    default: 'auto',
    help: 'Give the command a PTY (auto: when stdin is a terminal).',
    commands: ['exec'],
  },
  force: {
    kind: 'bool',
    default: false,
    help: "Release another run's lock: when its lease has run out, or (a live one) with confirm naming its holder.",
    actions: ['deploy'],
    commands: ['lock'],
  },
  confirm: {
    kind: 'string',
    help: 'The holder (as lock status shows it) whose live lock force may release.',
    actions: ['deploy'],
    commands: ['lock'],
  },
  'exec-command': {
    kind: 'string',
    help: 'The command of command: exec, as a JSON array of arguments or words separated by spaces (never a shell line).',
    actions: ['deploy'],
  },
  'dry-run': {
    kind: 'bool',
    default: false,
    help: 'Only list what prune would remove and the space it frees.',
    actions: ['deploy'],
    commands: ['prune'],
  },

  // ── pull mode: agent, notify ─────────────────────────────────────────────────────────────────────────────────────
  config: {
    kind: 'string',
    help: 'The agent YAML file (see examples/agent/agent.yml).',
    commands: ['agent'],
  },
  once: {
    kind: 'bool',
    default: false,
    help: 'Check the channel once, deploy if there is something new, exit (cron).',
    commands: ['agent'],
  },
  url: {
    kind: 'string',
    help: 'The agent webhook URL (https://host:8443/).',
    commands: ['notify'],
  },
  'secret-file': {
    kind: 'string',
    help: 'File holding the shared webhook secret (at least 16 characters).',
    commands: ['notify'],
  },
  secret: {
    kind: 'text',
    secret: true,
    help: 'The shared webhook secret itself, at least 16 characters (prefer --secret-file).',
    commands: ['notify'],
  },
  'notify-manifest': {
    name: 'manifest',
    kind: 'text',
    help: 'The manifest file (or its JSON), sent inline.',
    commands: ['notify'],
  },
  location: {
    kind: 'string',
    help: 'Or: where the agent reads the manifest (s3://…, gs://…, https://…).',
    commands: ['notify'],
  },
  channel: {
    kind: 'string',
    help: 'The channel the manifest is for (the agent refuses another one).',
    commands: ['notify'],
  },
  format: {
    kind: 'choice',
    choices: ['lading', 'github'],
    default: 'lading',
    help: 'lading, or github: X-Hub-Signature-256 with the timestamp in the body.',
    commands: ['notify'],
  },
  'ca-file': {
    kind: 'string',
    help: 'CA certificate (PEM) to trust for the agent (self-signed certificates).',
    commands: ['notify'],
  },

  // ── reading manifests (deploy, extract) and signing them (manifest) ────────────────────────────────────────────────
  'manifest-max-size': {
    kind: 'string',
    default: '16m',
    help: 'Largest manifest accepted (bytes, or with k/m); a larger one is refused before it is read to the end.',
    actions: ['extract', 'deploy'],
    commands: ['extract', 'deploy'],
  },
  'manifest-secret': {
    kind: 'text',
    secret: true,
    help: 'Shared secret for manifest signatures (HMAC-SHA256 in <manifest>.sig). The manifest step signs with it; deploy and extract then refuse a fetched manifest without a valid signature.',
    cli: 'shared secret: sign manifests (manifest), or require their signature (deploy, extract)',
    actions: ['lading', 'manifest', 'extract', 'deploy'],
    commands: ['manifest', 'extract', 'deploy'],
  },

  // ── registry credentials (push, extract, stale, deploy) ──────────────────────────────────────────────────────────
  username: {
    kind: 'string',
    help: 'Username for a generic v2 registry (with password).',
    helpIn: { deploy: 'Registry username for pulls (generic v2 registries).' },
    actions: REGISTRY_ACTIONS,
    commands: REGISTRY_COMMANDS,
  },
  password: {
    kind: 'string',
    secret: true,
    help: 'Password or token for a generic v2 registry (with username). Masked.',
    helpIn: {
      lading: 'Password or token for a generic v2 registry (with username). Masked; given to docker on stdin only.',
      push: 'Password or token for a generic v2 registry (with username). Masked; given to docker on stdin only.',
      deploy: 'Registry password for pulls. Masked; reaches the hosts on stdin only, never stored there.',
    },
    cli: 'password or token for a generic v2 registry',
    actions: REGISTRY_ACTIONS,
    commands: REGISTRY_COMMANDS,
  },
  registry: {
    kind: 'string',
    help: 'The registry host (host[:port]) username/password are for; no other registry receives them. Needed when the registries come from a manifest.',
    cli: 'registry host the username/password are for (required with them when a manifest names the registries)',
    actions: ['extract', 'deploy'],
    commands: ['extract', 'deploy', 'rollback', 'releases'],
  },
  'google-credentials': {
    kind: 'text',
    secret: true,
    help: 'Service-account JSON key (or external_account JSON) for GCR/Artifact Registry; empty = Application Default Credentials, e.g. what google-github-actions/auth set up.',
    helpIn: { deploy: 'Google credentials JSON for GCR/Artifact Registry pulls (default ADC).' },
    cli: 'service-account or external_account JSON (default: Application Default Credentials)',
    actions: REGISTRY_ACTIONS,
    commands: REGISTRY_COMMANDS,
  },
  'aws-region': {
    kind: 'string',
    help: 'AWS region for ECR when it cannot be read from the registry host.',
    helpIn: { deploy: 'AWS region for ECR pulls when the host name does not say.' },
    actions: REGISTRY_ACTIONS,
    commands: REGISTRY_COMMANDS,
  },
  'registry-providers': {
    kind: 'list',
    help: 'host=provider overrides (google, ecr, ecr-public, ghcr, dockerhub, generic), one per line, for proxies and mirrors.',
    helpIn: { deploy: 'host=provider overrides (google, ecr, ecr-public, ghcr, dockerhub, generic).' },
    cli: 'host=provider overrides: google, ecr, ecr-public, ghcr, dockerhub, generic (repeatable)',
    actions: REGISTRY_ACTIONS,
    commands: REGISTRY_COMMANDS,
  },
  'registry-github-token': {
    name: 'github-token',
    kind: 'string',
    secret: true,
    default: '${{ github.token }}',
    help: 'Token for ghcr.io when no username/password is given (the job needs packages write). Masked.',
    actions: ['lading', 'build', 'push'],
  },
  'insecure-registries': {
    kind: 'list',
    help: 'Registry hosts reached over plain HTTP (loopback always is).',
    actions: ['lading', 'push', 'extract', 'stale'],
    commands: ['push', 'extract', 'stale', 'newest'],
  },

  // ── store endpoints (export, manifest-store, load, retention, extract, deploy) ───────────────────────────────────
  's3-endpoint': {
    kind: 'string',
    help: 'S3-compatible endpoint URL (MinIO, R2, Ceph); empty = AWS.',
    helpIn: {
      lading: 'S3-compatible endpoint URL (MinIO, R2, Ceph) for store and manifest-store; empty = AWS.',
      manifest: 'S3-compatible endpoint URL (MinIO, R2, Ceph) for store and manifest-store; empty = AWS.',
      deploy: "S3-compatible endpoint for s3:// manifests and registry-less images (default the manifest's, else AWS).",
      extract: 'S3-compatible endpoint (MinIO, R2, …) for s3:// sources.',
    },
    cli: 'S3-compatible endpoint (MinIO, R2, …); path-style addressing then',
    actions: STORE_ACTIONS,
    commands: STORE_COMMANDS,
  },
  's3-region': {
    kind: 'string',
    help: 'S3 region; empty = AWS_REGION or us-east-1.',
    helpIn: {
      deploy: "S3 region for s3:// manifests and images (default the manifest's, AWS_REGION or us-east-1).",
      extract: "S3 region (default from the SDK's chain, or the manifest's transport).",
    },
    cli: 'S3 region (default: AWS_REGION, else us-east-1)',
    actions: STORE_ACTIONS,
    commands: STORE_COMMANDS,
  },
  's3-path-style': {
    kind: 'bool',
    help: 'Path-style S3 addressing (true by default when an endpoint is given).',
    helpIn: { extract: 'Path-style S3 addressing (for most S3-compatible endpoints).' },
    actions: STORE_ACTIONS,
    commands: STORE_COMMANDS,
  },
  'gcs-endpoint': {
    kind: 'string',
    help: 'GCS JSON API endpoint, for emulators; empty = Google.',
    helpIn: { extract: 'GCS API endpoint override (tests, private endpoints).' },
    actions: STORE_ACTIONS,
    commands: STORE_COMMANDS,
  },

  // ── every command ────────────────────────────────────────────────────────────────────────────────────────────────
  json: {
    kind: 'bool',
    default: false,
    help: JSON_OUT,
    commands: [
      'tags',
      'build',
      'push',
      'export',
      'manifest',
      'load',
      'retention',
      'extract',
      'deploy',
      'rollback',
      'releases',
      'maintenance',
      'agent',
      'notify',
      'stale',
      'newest',
      ...OPS_COMMANDS,
    ],
  },
} as const satisfies Record<string, InputDef>;

export type InputId = keyof typeof INPUTS;
type Row<K extends InputId> = (typeof INPUTS)[K];

/** The typed value of a row: what `readInputs` returns for it. */
export type InputValue<D> = D extends { kind: 'bool' }
  ? D extends { default: boolean }
    ? boolean
    : boolean | undefined
  : D extends { kind: 'int' }
    ? D extends { default: number }
      ? number
      : number | undefined
    : D extends { kind: 'choice'; choices: readonly (infer C)[] }
      ? D extends { default: string }
        ? C
        : C | undefined
      : D extends { kind: 'list' }
        ? string[]
        : D extends { kind: 'pairs' }
          ? Array<[string, string]>
          : D extends { default: string }
            ? string
            : string | undefined;

export type InputValues<K extends InputId> = { [P in K]: InputValue<Row<P>> };

/** The user-facing name of a row (the action input and the CLI flag). */
export function inputName(id: InputId): string {
  const row: InputDef = INPUTS[id];
  return row.name ?? id;
}

/** The rows an action takes, in table order. */
export function actionInputs(action: ActionName): InputId[] {
  return (Object.keys(INPUTS) as InputId[]).filter((id) => ((INPUTS[id] as InputDef).actions ?? []).includes(action));
}

/** The rows a CLI command takes, in table order. */
export function commandInputs(command: CommandName): InputId[] {
  return (Object.keys(INPUTS) as InputId[]).filter((id) => ((INPUTS[id] as InputDef).commands ?? []).includes(command));
}

/** The description an action shows for a row. */
export function actionHelp(id: InputId, action: ActionName): string {
  const row: InputDef = INPUTS[id];
  return row.helpIn?.[action] ?? row.help;
}

/** The default as an action.yml shows it (a string; '' when there is none). */
export function defaultText(id: InputId): string {
  const row: InputDef = INPUTS[id];
  return 'default' in row && row.default !== undefined ? String(row.default) : '';
}
