import { createHash, createHmac } from 'node:crypto';

/** OpenSSH known_hosts, the parts lading needs to pin host keys: plain and hashed hosts, [host]:port, markers. */
export interface KnownHost {
  marker?: 'revoked' | 'cert-authority';
  /** Plain patterns (comma separated in the file), or undefined for a hashed entry. */
  patterns?: string[];
  hashed?: { salt: Buffer; hash: Buffer };
  keyType: string;
  key: Buffer;
}

export function parseKnownHosts(text: string): KnownHost[] {
  const out: KnownHost[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    let marker: KnownHost['marker'];
    if (parts[0] === '@revoked' || parts[0] === '@cert-authority')
      marker = parts.shift()!.slice(1) as KnownHost['marker'];
    const [hosts, keyType, b64] = parts;
    if (!hosts || !keyType || !b64) continue;
    const entry: KnownHost = { keyType, key: Buffer.from(b64, 'base64') };
    if (marker) entry.marker = marker;
    const hashed = /^\|1\|([^|]+)\|([^|]+)$/.exec(hosts);
    if (hashed) entry.hashed = { salt: Buffer.from(hashed[1]!, 'base64'), hash: Buffer.from(hashed[2]!, 'base64') };
    else entry.patterns = hosts.split(',');
    out.push(entry);
  }
  return out;
}

/** The name known_hosts uses for a host: `host` on port 22, `[host]:port` otherwise. */
export function hostKeyName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );
  return re.test(name);
}

function matches(entry: KnownHost, name: string): boolean {
  if (entry.hashed) {
    const h = createHmac('sha1', entry.hashed.salt).update(name).digest();
    return h.equals(entry.hashed.hash);
  }
  let ok = false;
  for (const p of entry.patterns ?? []) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) ok = true;
  }
  return ok;
}

/** The entries for host:port (cert-authority lines are not used: lading pins keys, not CAs). */
export function keysFor(entries: KnownHost[], host: string, port: number): KnownHost[] {
  const name = hostKeyName(host, port);
  return entries.filter((e) => e.marker !== 'cert-authority' && matches(e, name));
}

/** SHA256:<base64 without padding>, as ssh-keygen -l prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type inside an SSH public key blob (its first string). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

export type HostKeyCheck =
  { ok: true } | { ok: false; reason: 'unknown-host' | 'mismatch' | 'revoked'; expected: string[] };

export function checkHostKey(entries: KnownHost[], host: string, port: number, key: Buffer): HostKeyCheck {
  const mine = keysFor(entries, host, port);
  if (mine.some((e) => e.marker === 'revoked' && e.key.equals(key))) {
    return { ok: false, reason: 'revoked', expected: [] };
  }
  const pinned = mine.filter((e) => !e.marker);
  if (pinned.length === 0) return { ok: false, reason: 'unknown-host', expected: [] };
  if (pinned.some((e) => e.key.equals(key))) return { ok: true };
  return { ok: false, reason: 'mismatch', expected: pinned.map((e) => `${e.keyType} ${fingerprint(e.key)}`) };
}
