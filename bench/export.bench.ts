// Registry-less export of a ~200 MB image of real binaries, lading vs the seed's pipeline, in the same run against
// the test environment (bash scripts/testenv.sh up first). Prints ratios, asserts nothing:
//   npx tsx bench/export.bench.ts [megabytes]
// Baselines (each measured here, now):
//   seed   = `docker save | xz > file` then the upload of that file (what the seed's workflow does)
//   floor  = the slower of `docker save > /dev/null` and uploading the same compressed bytes alone: no pipeline
//            that saves and uploads can beat both, so ~1× the floor is the best a streaming export can do.
// Goals (#5): lading ≤ 0.05× seed, ≤ 1.5× floor, compressed size ≤ 1.4× xz's, runner memory flat in image size.
import { execFileSync, spawnSync } from 'node:child_process';
import { parseExportSettings } from '../src/settings/export.ts';
import { createReadStream, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { runExportStage } from '../src/stages/export.ts';
import type { Reporter } from '../src/io/reporter.ts';
import { buildJsonFor, docker, testEnv, unique } from '../test/helpers/testenv.ts';

const targetMb = Number(process.argv[2] ?? 200);
const env = testEnv();
process.env.DOCKER_HOST = env.dockerHost;
process.env.AWS_ACCESS_KEY_ID = env.s3.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = env.s3.secretAccessKey;
const work = mkdtempSync(join(tmpdir(), 'lading-export-bench-'));
const quiet: Reporter = { info: () => {}, warning: () => {}, group: (_n, f) => f(), secret: () => {} };
const s3 = new S3Client({
  endpoint: env.s3.endpoint,
  region: env.s3.region,
  forcePathStyle: true,
  credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey },
});
const time = async (fn: () => Promise<unknown> | unknown) => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
};
const sh = (script: string) => {
  const r = spawnSync('sh', ['-c', script], { env: process.env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${script}: ${r.stderr}`);
};
const upload = (file: string, key: string) =>
  new Upload({
    client: s3,
    params: { Bucket: env.s3.bucket, Key: key, Body: createReadStream(file) },
    queueSize: 4,
    partSize: 16 * 1024 * 1024,
  }).done();

// 1. An image of real binaries: executables and shared libraries from this machine, up to the target size.
const ctx = join(work, 'ctx');
mkdirSync(join(ctx, 'payload'), { recursive: true });
let bytes = 0;
let n = 0;
for (const dir of ['/usr/bin', '/usr/sbin', '/usr/lib/x86_64-linux-gnu', '/usr/libexec', '/usr/lib']) {
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    continue;
  }
  for (const name of names) {
    if (bytes >= targetMb * 1024 * 1024) break;
    const p = join(dir, name);
    try {
      const s = statSync(p);
      if (!s.isFile() || s.size < 64 * 1024) continue;
      copyFileSync(p, join(ctx, 'payload', `${n++}-${name}`));
      bytes += s.size;
    } catch {
      // unreadable or vanished: skip
    }
  }
}
execFileSync('cp', [env.busybox, join(ctx, 'busybox')]);
execFileSync('sh', [
  '-c',
  `printf 'FROM scratch\\nCOPY busybox /bin/busybox\\nCOPY payload /payload\\n' > ${ctx}/Dockerfile`,
]);
const name = `lading-bench/${unique('export')}`;
docker(['build', '-q', '-t', `${name}:v1`, ctx]);
const imageId = docker(['image', 'inspect', '--format', '{{.Id}}', `${name}:v1`]);
const imageSize = Number(docker(['image', 'inspect', '--format', '{{.Size}}', imageId]));
console.log(`image: ${(imageSize / 1e6).toFixed(0)} MB of real binaries (${n} files)`);

// 2. Baselines.
const tSave = await time(() => sh(`docker save ${name}:v1 > /dev/null`));
const tSaveZstd = await time(() => sh(`docker save ${name}:v1 | zstd -3 -q -T0 > /dev/null`));
const xzFile = join(work, 'img.tar.xz');
const tXz = await time(() => sh(`docker save ${name}:v1 | xz > ${xzFile}`));
const tXzUp = await time(() => upload(xzFile, `bench/${unique('seed')}.tar.xz`));
const xzSize = statSync(xzFile).size;
const seed = tXz + tXzUp;

// 3. lading: docker save | zstd | multipart upload, streamed.
const build = buildJsonFor({ id: 'app', name, imageId, tag: 'v1', sha: 'b'.repeat(40) });
const rssBefore = process.memoryUsage().rss;
let peakRss = rssBefore;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
const inputs = (prefix: string): Record<string, string> => ({
  'build-json': build,
  store: `s3://${env.s3.bucket}/${prefix}`,
  's3-endpoint': env.s3.endpoint,
  aliases: 'none',
});
let exported: Awaited<ReturnType<typeof runExportStage>> | undefined;
const tLading = await time(async () => {
  const i = inputs(unique('lading'));
  exported = await runExportStage({ ...parseExportSettings((k) => i[k]), env: process.env, reporter: quiet });
});
clearInterval(sampler);
const t = exported!.images[0]!.transport;
const zSize = exported!.images[0]!.size;
const ladingPrefix = t.kind === 's3' ? t.key : '';

// The floor's upload half: the same compressed bytes, uploaded alone from a file.
const zFile = join(work, 'img.tar.zst');
sh(`docker save ${name}:v1 | zstd -3 -q -T0 > ${zFile}`);
const tUpZ = await time(() => upload(zFile, `bench/${unique('floor')}.tar.zst`));
const floor = Math.max(tSave, tUpZ);
const tAgain = await time(async () => {
  const i = { ...inputs(ladingPrefix.split('/')[0]!) };
  await runExportStage({ ...parseExportSettings((k) => i[k]), env: process.env, reporter: quiet });
});

const f = (x: number) => `${x.toFixed(2)} s`;
console.log(`docker save > /dev/null        ${f(tSave)}`);
console.log(`upload of the zstd bytes alone ${f(tUpZ)}  (${(statSync(zFile).size / 1e6).toFixed(0)} MB)`);
console.log(`floor (slower of the two)      ${f(floor)}`);
console.log(`seed: save | xz                ${f(tXz)}  (${(xzSize / 1e6).toFixed(0)} MB)`);
console.log(`seed: upload                   ${f(tXzUp)}`);
console.log(`seed total                     ${f(seed)}`);
console.log(`lading export (streamed)       ${f(tLading)}  (${(zSize / 1e6).toFixed(0)} MB zstd)`);
console.log(`lading re-export (no-op)       ${f(tAgain)}`);
console.log('');
console.log(`lading / seed   = ${(tLading / seed).toFixed(3)}×   (goal ≤ 0.05×)`);
console.log(`lading / floor  = ${(tLading / floor).toFixed(2)}×   (goal ≤ 1.5×)`);
console.log(
  `lading / (save | zstd > /dev/null, ${f(tSaveZstd)}) = ${(tLading / tSaveZstd).toFixed(2)}×   (the compression alone, no upload)`,
);
console.log(`size zstd / xz  = ${(zSize / xzSize).toFixed(2)}×   (goal ≤ 1.4×)`);
console.log(
  `runner RSS      = ${((peakRss - rssBefore) / 1e6).toFixed(0)} MB above the start while exporting ${(imageSize / 1e6).toFixed(0)} MB`,
);
docker(['rmi', '-f', imageId]);
rmSync(work, { recursive: true, force: true });
