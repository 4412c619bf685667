import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeFile, createManifest, type Manifest } from '../../src/lib/manifest.ts';
import { docker, pushVersion, removeProject, testEnv, unique, versionSource } from './testenv.ts';

/**
 * An app for the day-2 verbs: one service, `writer`, a busybox loop that prints `tick <n>` every 0.3 s (no network,
 * no port), so many "hosts" run it side by side on the one test dockerd, each under its own root and project.
 * `version(n)` builds and pushes image n; `inventory(hosts)` gives each host its own root and project.
 */
export function writerApp() {
  const env = testEnv();
  const id = unique('ops');
  const name = `${env.registry.host}/${id}/writer`;
  const compose = `version: "3.7"
services:
  writer:
    image: ${name}:\${DOCKER_TAG:-latest}
    network_mode: none
    environment:
      GREETING: hello-from-the-release
    command: ["/bin/busybox", "sh", "-c", "i=0; while :; do i=$$((i+1)); echo tick $$i; sleep 0.3; done"]
`;
  const projects: string[] = [];
  const roots: string[] = [];
  const files: string[] = [];
  let calls = 0;

  function version(n: number): Manifest {
    const { tag, digest } = pushVersion(name, n, { 'version.txt': `v${n}\n`, 'nonce.txt': unique('nonce') });
    // the deploy pulls by digest: the tag stays out of the engine, as on a real host
    docker(['rmi', '--no-prune', `${name}:${tag}`]);
    return createManifest({
      source: { ...versionSource(n, 'acme/ops'), actor: 'alice' },
      tags: [tag],
      primary: tag,
      images: [
        {
          id: 'writer',
          services: ['writer'],
          name,
          tags: [tag],
          digest,
          ref: `${name}@${digest}`,
          transport: { kind: 'registry', registry: env.registry.host, provider: 'generic' },
        },
      ],
      compose: { project: 'ops', files: [composeFile('docker-compose.yml', compose)], env: { DOCKER_TAG: tag } },
    });
  }

  /** An inventory file: each `user@host:port` with its own root (under a fresh temp dir) and compose project. */
  function inventory(hosts: string[]): {
    file: string;
    entries: Array<{ host: string; root: string; project: string }>;
  } {
    const base = mkdtempSync(join(tmpdir(), 'lading-ops-roots-'));
    roots.push(base);
    const call = calls++;
    const entries = hosts.map((h, i) => {
      const project = `${id.replace(/[^a-z0-9-]/g, '-')}-${call}-h${i}`.slice(-50).replace(/^[^a-z0-9]+/, '');
      projects.push(project);
      return { host: h, root: `${base}/h${i}`, project };
    });
    const file = join(base, 'inventory.yml');
    writeFileSync(file, entries.map((e) => `- host: ${e.host}\n  root: ${e.root}\n  project: ${e.project}\n`).join(''));
    return { file, entries };
  }

  const manifestFile = (m: Manifest) => {
    const file = join(mkdtempSync(join(tmpdir(), 'lading-ops-manifest-')), 'manifest.json');
    writeFileSync(file, JSON.stringify(m));
    files.push(file);
    return file;
  };

  /** The project's containers on the test dockerd. */
  const containers = (project: string) =>
    docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`])
      .split('\n')
      .filter(Boolean);

  function cleanup(): void {
    removeProject(...projects);
    for (const r of roots) rmSync(r, { recursive: true, force: true });
    for (const f of files) rmSync(join(f, '..'), { recursive: true, force: true });
  }

  return { name, version, inventory, manifestFile, containers, cleanup };
}
