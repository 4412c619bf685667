import type { AuthClient } from 'google-auth-library';
import { InputError, LadingError } from '../lib/errors.ts';
import { ecrAccountOf, ecrRegionOf, type RegistryProvider } from '../lib/registry.ts';

// The AWS and Google SDKs are loaded when a registry of theirs is logged in to, not when an action starts: most
// runs never need them, and loading them costs more than the rest of a bundle's start-up (bench/coldstart.bench.ts).
const ecrSdk = () => import('./sdk/aws-ecr.ts');
const googleSdk = () => import('./sdk/google-auth.ts');

/**
 * Short-lived registry credentials: static username/password for a plain v2 registry, a Google access token
 * (oauth2accesstoken) for GCR / Artifact Registry, an ECR authorization token for ECR and ECR Public. Every
 * secret goes through `settings.mask` before anything else sees it.
 */

export interface RegistryCredential {
  host: string;
  username: string;
  password: string;
  expiresAt?: Date;
  provider: RegistryProvider;
}

export interface AuthSettings {
  /** Static credentials for generic registries (both or neither). */
  username?: string;
  password?: string;
  /** The registry host username/password are for: no other registry ever receives them. */
  registry?: string;
  /**
   * The hosts come from a manifest (which whoever can write its location can forge), not from the user's inputs:
   * then username/password need `registry`, so the manifest cannot choose where they go.
   */
  hostsFromManifest?: boolean;
  /**
   * A service-account JSON key, or an `external_account` (workload identity federation) JSON, as text or base64.
   * Empty: Application Default Credentials, incl. GOOGLE_APPLICATION_CREDENTIALS that google-github-actions/auth sets.
   */
  googleCredentials?: string;
  /** AWS region for ECR; default: the region in the registry host, then the SDK's default (AWS_REGION …). */
  awsRegion?: string;
  /** ECR API endpoint override (an SDK `endpoint`, for VPC endpoints, proxies and tests). */
  ecrEndpoint?: string;
  /** ECR Public API endpoint override. */
  ecrPublicEndpoint?: string;
  /** ghcr.io: the workflow's GITHUB_TOKEN (the `github-token` input; the job needs `packages: write` to push). */
  githubToken?: string;
  /** ghcr.io: the user the token belongs to (GITHUB_ACTOR). */
  githubActor?: string;
  /** Whether ensureEcrRepository may create a missing repository (default true). */
  ecrCreateRepositories?: boolean;
  /** Registers a secret with the log masker (core.setSecret on a runner). Called before any log line. */
  mask: (secret: string) => void;
  log?: (line: string) => void;
}

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';

/**
 * The credential to log in to `host` with, or undefined for anonymous access (a generic registry without
 * username/password). `provider` comes from detectProvider (overrides included).
 */
export async function credentialFor(
  host: string,
  provider: RegistryProvider,
  settings: AuthSettings,
): Promise<RegistryCredential | undefined> {
  const username = settings.username?.trim() ?? '';
  const password = settings.password ?? '';
  if (password !== '') settings.mask(password);
  if (username !== '' && password === '') {
    throw new InputError('password', `a username is given for ${host} but no password`, 'give both or neither');
  }
  if (username === '' && password !== '') {
    throw new InputError('username', `a password is given for ${host} but no username`, 'give both or neither');
  }
  switch (provider) {
    case 'ghcr':
      if (username === '' && settings.githubToken) {
        settings.mask(settings.githubToken);
        const actor = settings.githubActor?.trim() || 'x-access-token';
        settings.log?.(`registry ${host}: logging in as ${actor} with the workflow's GITHUB_TOKEN`);
        return { host, username: actor, password: settings.githubToken, provider };
      }
      return staticCredential(host, provider, username, password, settings);
    case 'dockerhub':
    case 'generic':
      return staticCredential(host, provider, username, password, settings);
    case 'google':
      return googleCredential(host, settings);
    case 'ecr':
      return ecrCredential(host, settings);
    case 'ecr-public':
      return ecrPublicCredential(host, settings);
  }
}

function staticCredential(
  host: string,
  provider: RegistryProvider,
  username: string,
  password: string,
  settings: AuthSettings,
): RegistryCredential | undefined {
  if (username === '') {
    settings.log?.(`registry ${host}: no username/password given`);
    return undefined;
  }
  if (settings.registry && settings.registry.trim().toLowerCase() !== host.trim().toLowerCase()) {
    settings.log?.(
      `registry ${host}: the username/password are for ${settings.registry}, not sent here; using anonymous access`,
    );
    return undefined;
  }
  if (!settings.registry && settings.hostsFromManifest) {
    throw new InputError(
      'registry',
      `username/password are given, but not the registry they are for (the manifest names ${host})`,
      `set registry to the host they belong to (like ${host}): lading sends them to no other registry, so a forged manifest cannot collect them`,
    );
  }
  settings.log?.(`registry ${host}: logging in as ${username}`);
  return { host, username, password, provider };
}

// ---------------------------------------------------------------------------------------------------------------
// Google (GCR, Artifact Registry)

interface GoogleCredentialsJson {
  type?: string;
  client_email?: string;
  private_key?: string;
  private_key_id?: string;
  project_id?: string;
  audience?: string;
  service_account_impersonation_url?: string;
  [key: string]: unknown;
}

const GOOGLE_HINT =
  'pass a service-account key in `google-credentials` or run google-github-actions/auth first (it sets GOOGLE_APPLICATION_CREDENTIALS)';

/** The `google-credentials` input: JSON text or base64 of it. Never echoes the content in an error. */
export function parseGoogleCredentials(raw: string, input = 'google-credentials'): GoogleCredentialsJson {
  const text = raw.trim();
  let json: unknown;
  const attempts = [text];
  if (!text.startsWith('{')) attempts.push(Buffer.from(text, 'base64').toString('utf8').trim());
  for (const candidate of attempts) {
    try {
      json = JSON.parse(candidate);
      break;
    } catch {
      // try the next form
    }
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InputError(
      input,
      'is not a JSON credentials file (nor base64 of one)',
      'paste the whole service-account key JSON, or leave it empty and run google-github-actions/auth first',
    );
  }
  return json as GoogleCredentialsJson;
}

/** A client for the JSON the user gave, after checking it is a kind we expect (no arbitrary client types). */
async function googleClientFromJson(json: GoogleCredentialsJson, input = 'google-credentials'): Promise<AuthClient> {
  const { ExternalAccountClient, JWT } = await googleSdk();
  if (json.type === 'service_account') {
    if (typeof json.client_email !== 'string' || typeof json.private_key !== 'string') {
      throw new InputError(input, 'the service-account key has no client_email or private_key', GOOGLE_HINT);
    }
    return new JWT({
      email: json.client_email,
      key: json.private_key,
      keyId: json.private_key_id,
      scopes: [CLOUD_PLATFORM],
    });
  }
  if (json.type === 'external_account') {
    const client = ExternalAccountClient.fromJSON({ ...json, scopes: [CLOUD_PLATFORM] } as never);
    if (!client) throw new InputError(input, 'the external_account configuration is not valid', GOOGLE_HINT);
    return client;
  }
  throw new InputError(
    input,
    `credentials of type '${String(json.type)}' are not supported`,
    'use a service_account key or an external_account (workload identity federation) configuration',
  );
}

function googleSource(json: GoogleCredentialsJson | undefined): string {
  if (!json) {
    const file = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    return file ? `Application Default Credentials (${file})` : 'Application Default Credentials';
  }
  if (json.type === 'service_account') return `service account ${json.client_email}`;
  const sa = /serviceAccounts\/([^:/]+):generateAccessToken/.exec(json.service_account_impersonation_url ?? '')?.[1];
  return sa ? `workload identity federation as ${sa}` : 'workload identity federation';
}

function shortCause(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const line = msg.split('\n')[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

async function googleCredential(host: string, settings: AuthSettings): Promise<RegistryCredential> {
  const json = settings.googleCredentials?.trim() ? parseGoogleCredentials(settings.googleCredentials) : undefined;
  if (json?.type === 'service_account' && typeof json.private_key === 'string') settings.mask(json.private_key);
  const source = googleSource(json);
  let token: string | null | undefined;
  let expiry: number | null | undefined;
  try {
    // A registry token needs no project; without one, ADC resolution goes looking for it (gcloud, the metadata
    // server, Cloud Resource Manager with the fresh token): seconds of extra calls that fail on locked-down runners.
    const { GoogleAuth } = await googleSdk();
    const client = json
      ? await googleClientFromJson(json)
      : await new GoogleAuth({ scopes: [CLOUD_PLATFORM], projectId: 'lading-registry-login' }).getClient();
    token = (await client.getAccessToken()).token;
    expiry = client.credentials?.expiry_date;
  } catch (err) {
    if (err instanceof LadingError) throw err;
    const noAdc = /Could not load the default credentials/i.test(shortCause(err));
    throw new LadingError(
      noAdc
        ? `no Google credentials for ${host}: none given and no Application Default Credentials found`
        : `cannot get a Google access token for ${host} from ${source}: ${shortCause(err)}`,
      noAdc
        ? GOOGLE_HINT
        : 'check that the credentials are current and the service account may use Artifact Registry / GCR; ' +
            GOOGLE_HINT,
      { cause: err },
    );
  }
  if (!token) {
    throw new LadingError(`Google returned no access token for ${host} (from ${source})`, GOOGLE_HINT);
  }
  settings.mask(token);
  const expiresAt = expiry ? new Date(expiry) : undefined;
  settings.log?.(
    `registry ${host}: Google access token from ${source}${expiresAt ? ` (expires ${expiresAt.toISOString()})` : ''}`,
  );
  return { host, username: 'oauth2accesstoken', password: token, provider: 'google', ...(expiresAt && { expiresAt }) };
}

// ---------------------------------------------------------------------------------------------------------------
// Amazon ECR and ECR Public

const AWS_CREDENTIALS_HINT =
  'the runner has no AWS credentials: use aws-actions/configure-aws-credentials, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or AWS_PROFILE';

/** Turns an AWS SDK error into a LadingError that says what to do. `action` is the IAM action that failed. */
function awsError(err: unknown, what: string, action: string, where: string): LadingError {
  if (err instanceof LadingError) return err;
  const e = err as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const name = e.name ?? '';
  const message = shortCause(err);
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return new LadingError(`cannot ${what}: no AWS credentials found`, AWS_CREDENTIALS_HINT, { cause: err });
  }
  if (/Region is missing/i.test(message)) {
    return new LadingError(
      `cannot ${what}: no AWS region`,
      'set `aws-region` (or AWS_REGION), or use the registry host <account>.dkr.ecr.<region>.amazonaws.com',
      { cause: err },
    );
  }
  if (/AccessDenied/i.test(name) || e.$metadata?.httpStatusCode === 403) {
    return new LadingError(
      `cannot ${what}: AWS denied ${action} (${name}: ${message})`,
      `allow ${action} for the role or user the runner uses (its IAM policy), then retry`,
      { cause: err },
    );
  }
  if (
    /UnrecognizedClient|InvalidSignature|InvalidClientTokenId|ExpiredToken|SignatureDoesNotMatch|IncompleteSignature/i.test(
      name,
    )
  ) {
    return new LadingError(
      `cannot ${what}: AWS refused the credentials (${name}: ${message})`,
      `the credentials are wrong or expired: ${AWS_CREDENTIALS_HINT}`,
      { cause: err },
    );
  }
  const network = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|socket hang up|TimeoutError/i;
  if (network.test(message) || network.test(name) || network.test(e.code ?? '')) {
    return new LadingError(
      `cannot ${what}: the AWS API at ${where} is unreachable (${message})`,
      'check the network, proxy settings and `aws-region`; a VPC endpoint needs `ecr-endpoint`',
      { cause: err },
    );
  }
  return new LadingError(`cannot ${what}: ${name ? `${name}: ` : ''}${message}`, undefined, { cause: err });
}

function ecrRegion(host: string, settings: AuthSettings): string | undefined {
  return settings.awsRegion?.trim() || ecrRegionOf(host) || undefined;
}

/** The ECR SDK (loaded on first use), a client for `host`, and where it goes (for error messages). */
async function ecr(host: string, settings: AuthSettings) {
  const sdk = await ecrSdk();
  const region = ecrRegion(host, settings);
  const client = new sdk.ECRClient({
    ...(region && { region }),
    ...(settings.ecrEndpoint && { endpoint: settings.ecrEndpoint }),
  });
  return { sdk, client, where: settings.ecrEndpoint || `ECR in ${region ?? 'the default region'}` };
}

function splitToken(host: string, token: string, settings: AuthSettings) {
  const decoded = Buffer.from(token, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw new LadingError(`the ECR authorization token for ${host} is not user:password`);
  const password = decoded.slice(colon + 1);
  settings.mask(password);
  return { username: decoded.slice(0, colon), password };
}

async function ecrCredential(host: string, settings: AuthSettings): Promise<RegistryCredential> {
  const {
    sdk: { GetAuthorizationTokenCommand },
    client,
    where,
  } = await ecr(host, settings);
  try {
    let res;
    try {
      res = await client.send(new GetAuthorizationTokenCommand({}));
    } catch (err) {
      throw awsError(err, `get an ECR login for ${host}`, 'ecr:GetAuthorizationToken', where);
    }
    const data = res.authorizationData?.[0];
    const token = data?.authorizationToken;
    if (!token) throw new LadingError(`ECR returned no authorization token for ${host}`);
    settings.mask(token);
    const { username, password } = splitToken(host, token, settings);
    const expiresAt = data.expiresAt;
    settings.log?.(
      `registry ${host}: ECR authorization token${expiresAt ? ` (expires ${expiresAt.toISOString()})` : ''}`,
    );
    return { host, username, password, provider: 'ecr', ...(expiresAt && { expiresAt }) };
  } finally {
    client.destroy();
  }
}

async function ecrPublicCredential(host: string, settings: AuthSettings): Promise<RegistryCredential> {
  const { ECRPUBLICClient, GetAuthorizationTokenCommand: GetPublicAuthorizationTokenCommand } =
    await import('./sdk/aws-ecr-public.ts');
  // ECR Public issues its tokens in us-east-1 only.
  const client = new ECRPUBLICClient({
    region: 'us-east-1',
    ...(settings.ecrPublicEndpoint && { endpoint: settings.ecrPublicEndpoint }),
  });
  try {
    let res;
    try {
      res = await client.send(new GetPublicAuthorizationTokenCommand({}));
    } catch (err) {
      throw awsError(
        err,
        `get an ECR Public login for ${host}`,
        'ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken',
        settings.ecrPublicEndpoint || 'ECR Public in us-east-1',
      );
    }
    const token = res.authorizationData?.authorizationToken;
    if (!token) throw new LadingError(`ECR Public returned no authorization token for ${host}`);
    settings.mask(token);
    const { username, password } = splitToken(host, token, settings);
    const expiresAt = res.authorizationData?.expiresAt;
    settings.log?.(
      `registry ${host}: ECR Public authorization token${expiresAt ? ` (expires ${expiresAt.toISOString()})` : ''}`,
    );
    return { host, username, password, provider: 'ecr-public', ...(expiresAt && { expiresAt }) };
  } finally {
    client.destroy();
  }
}

/**
 * Makes sure the ECR repository exists: DescribeRepositories, and CreateRepository when it is missing (unless
 * `ecrCreateRepositories` is false, then a missing repository is an error that says so). A repository created
 * concurrently by another job counts as existing.
 */
export async function ensureEcrRepository(
  host: string,
  repository: string,
  settings: AuthSettings,
): Promise<'exists' | 'created'> {
  const {
    sdk: { CreateRepositoryCommand, DescribeRepositoriesCommand },
    client,
    where,
  } = await ecr(host, settings);
  const registryId = ecrAccountOf(host);
  try {
    try {
      await client.send(
        new DescribeRepositoriesCommand({ repositoryNames: [repository], ...(registryId && { registryId }) }),
      );
      return 'exists';
    } catch (err) {
      if ((err as { name?: string }).name !== 'RepositoryNotFoundException') {
        throw awsError(err, `check the ECR repository ${host}/${repository}`, 'ecr:DescribeRepositories', where);
      }
    }
    if (settings.ecrCreateRepositories === false) {
      throw new LadingError(
        `the ECR repository ${host}/${repository} does not exist`,
        `create it (aws ecr create-repository --repository-name ${repository}) or set \`ecr-create-repository: true\``,
      );
    }
    try {
      await client.send(new CreateRepositoryCommand({ repositoryName: repository, ...(registryId && { registryId }) }));
    } catch (err) {
      if ((err as { name?: string }).name === 'RepositoryAlreadyExistsException') return 'exists';
      throw awsError(err, `create the ECR repository ${host}/${repository}`, 'ecr:CreateRepository', where);
    }
    settings.log?.(`registry ${host}: created the ECR repository ${repository}`);
    return 'created';
  } finally {
    client.destroy();
  }
}
