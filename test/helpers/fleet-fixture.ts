import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeFile, createManifest, type Manifest } from '../../src/lib/manifest.ts';
import { pushVersion, removeProject, testEnv, unique, versionSource } from './testenv.ts';

/**
 * An app many "hosts" can run side by side on the one test dockerd: no network, no port, a busybox process that
 * stays up. With `healthcheck`, a 1 s-interval check (a file test) gates the deploy as a real app's would.
 * Each host deploys it under its own compose project (the inventory's per-host `project`) and root.
 */
export function fleetApp(opts: { healthcheck?: boolean } = {}) {
  const env = testEnv();
  const id = unique('fleet');
  const name = `${env.registry.host}/${id}/idle`;
  const health = opts.healthcheck
    ? `    healthcheck:
      test: ["CMD", "/bin/busybox", "test", "-f", "/srv/index.html"]
      interval: 1s
      timeout: 2s
      retries: 2
`
    : '';
  const compose = `version: "3.7"
services:
  idle:
    image: ${name}:\${DOCKER_TAG:-latest}
    network_mode: none
    command: ["/bin/busybox", "sleep", "86400"]
${health}`;
  const projects: string[] = [];
  const roots: string[] = [];
  let calls = 0;

  function version(n: number): Manifest {
    const { tag, digest } = pushVersion(name, n, { 'index.html': `v${n}\n` });
    return createManifest({
      source: versionSource(n, 'acme/fleet'),
      tags: [tag],
      primary: tag,
      images: [
        {
          id: 'idle',
          services: ['idle'],
          name,
          tags: [tag],
          digest,
          ref: `${name}@${digest}`,
          transport: { kind: 'registry', registry: env.registry.host, provider: 'generic' },
        },
      ],
      compose: { project: 'fleet', files: [composeFile('docker-compose.yml', compose)], env: { DOCKER_TAG: tag } },
    });
  }

  /**
   * An inventory for the given `user@host:port` entries: each host with its own root (under a fresh temp dir) and
   * compose project, so the "hosts" share nothing but the dockerd. `root` overrides a host's root by index.
   */
  function inventory(hosts: string[], over: Record<number, { root?: string }> = {}): string {
    const base = mkdtempSync(join(tmpdir(), 'lading-fleet-roots-'));
    roots.push(base);
    const call = calls++;
    return hosts
      .map((h, i) => {
        const project = `${id.replace(/[^a-z0-9-]/g, '-')}-${call}-h${i}`.slice(-50).replace(/^[^a-z0-9]+/, '');
        projects.push(project);
        return `- host: ${h}\n  root: ${over[i]?.root ?? `${base}/h${i}`}\n  project: ${project}\n`;
      })
      .join('');
  }

  /** Removes the containers of every project handed out, and the roots. */
  function cleanup(): void {
    removeProject(...projects);
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  }

  return { name, version, inventory, cleanup, projects };
}
