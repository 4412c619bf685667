import type { FlagSpec } from './args.ts';

/** Flags every command that reads or writes a bucket shares (export, load, manifest, retention, deploy, extract). */
export const STORE_FLAGS: FlagSpec[] = [
  { name: 's3-endpoint', help: 'S3-compatible endpoint (MinIO, R2, …); path-style addressing then' },
  { name: 's3-region', help: 'S3 region (default: AWS_REGION, else us-east-1)' },
  { name: 's3-path-style', help: 'true | false: path-style S3 addressing (default true with an endpoint)' },
  { name: 'gcs-endpoint', help: 'GCS JSON API endpoint (emulators); default: Google' },
  { name: 'upload-concurrency', help: 'parallel part uploads (default 4)' },
];

/** Registry credential flags (push, extract, stale, deploy): the same inputs as the actions' credential inputs. */
export const REGISTRY_FLAGS: FlagSpec[] = [
  { name: 'username', help: 'username for a generic v2 registry' },
  { name: 'password', help: 'password for a generic v2 registry (prefer LADING_PASSWORD)' },
  { name: 'google-credentials', help: 'service-account or external_account JSON (default: ADC)' },
  { name: 'aws-region', help: 'AWS region for ECR when the host does not say' },
  { name: 'registry-providers', multiple: true, help: 'host=provider overrides (google, ecr, ecr-public, generic)' },
  { name: 'insecure-registries', multiple: true, help: 'registry hosts reached over plain HTTP (loopback always is)' },
];

/** A flag list without the named flags (a command that does not read them). */
export const without = (flags: FlagSpec[], ...names: string[]) => flags.filter((f) => !names.includes(f.name));
