import type { FlagSpec } from './args.ts';

/** Flags every command that reads or writes a bucket shares (export, load, manifest, retention, deploy). */
export const STORE_FLAGS: FlagSpec[] = [
  { name: 's3-endpoint', help: 'S3-compatible endpoint (MinIO, R2, …); path-style addressing then' },
  { name: 's3-region', help: 'S3 region (default: AWS_REGION, else us-east-1)' },
  { name: 's3-path-style', help: 'true | false: path-style S3 addressing (default true with an endpoint)' },
  { name: 'gcs-endpoint', help: 'GCS JSON API endpoint (emulators); default: Google' },
  { name: 'upload-concurrency', help: 'parallel part uploads (default 4)' },
];
