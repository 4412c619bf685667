import { type SeenRequest, sendJson, startStandin, type StandinServer } from './standin-server.ts';

/**
 * A stand-in for the Amazon ECR (and ECR Public) API, speaking AWS JSON 1.1 as the real `@aws-sdk/client-ecr`
 * does: POST / with `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>` (ECR Public:
 * `SpencerFrontendService.<Operation>`), a SigV4 `Authorization` header, JSON in and out, errors as
 * `{"__type": "<Name>", "message": "…"}` with HTTP 400.
 *
 * Point the SDK at it with `endpoint: standin.url`. It hands out `token` (base64 of `user:password`).
 */
export interface EcrStandin extends StandinServer {
  /** Operations called, in order, e.g. ['GetAuthorizationToken', 'DescribeRepositories']. */
  calls: Array<{ operation: string; body: Record<string, unknown>; authorization: string }>;
  repositories: Set<string>;
  /** Makes an operation fail with an AWS error, e.g. { GetAuthorizationToken: ['AccessDeniedException', '…'] }. */
  failures: Record<string, [type: string, message: string]>;
}

export const ECR_TARGET = 'AmazonEC2ContainerRegistry_V20150921';
export const ECR_PUBLIC_TARGET = 'SpencerFrontendService';

export async function startEcrStandin(opts: {
  token: string;
  proxyEndpoint: string;
  registryId?: string;
  expiresAt?: Date;
  repositories?: string[];
}): Promise<EcrStandin> {
  const registryId = opts.registryId ?? '123456789012';
  const expiresAt = opts.expiresAt ?? new Date(Date.now() + 12 * 3600_000);
  const calls: EcrStandin['calls'] = [];
  const repositories = new Set(opts.repositories ?? []);
  const failures: EcrStandin['failures'] = {};
  const repo = (name: string) => ({
    repositoryName: name,
    registryId,
    repositoryArn: `arn:aws:ecr:us-east-1:${registryId}:repository/${name}`,
    repositoryUri: `${opts.proxyEndpoint.replace(/^https?:\/\//, '')}/${name}`,
    createdAt: Math.floor(Date.now() / 1000),
    imageTagMutability: 'MUTABLE',
  });
  const awsError = (res: Parameters<typeof sendJson>[0], type: string, message: string) =>
    sendJson(
      res,
      400,
      { __type: type, message },
      { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type },
    );

  const handle = (req: SeenRequest, res: Parameters<typeof sendJson>[0]) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    const [service, operation = ''] = target.split('.');
    if (req.method !== 'POST' || (service !== ECR_TARGET && service !== ECR_PUBLIC_TARGET)) {
      return awsError(res, 'UnknownOperationException', `unexpected ${req.method} ${req.url} target=${target}`);
    }
    const body = (req.body ? JSON.parse(req.body) : {}) as Record<string, unknown>;
    calls.push({ operation, body, authorization: String(req.headers.authorization ?? '') });
    const failure = failures[operation];
    if (failure) return awsError(res, failure[0], failure[1]);
    const ok = (data: unknown) => sendJson(res, 200, data, { 'content-type': 'application/x-amz-json-1.1' });
    const expires = expiresAt.getTime() / 1000;
    switch (`${service}.${operation}`) {
      case `${ECR_TARGET}.GetAuthorizationToken`:
        return ok({
          authorizationData: [
            { authorizationToken: opts.token, expiresAt: expires, proxyEndpoint: opts.proxyEndpoint },
          ],
        });
      case `${ECR_PUBLIC_TARGET}.GetAuthorizationToken`:
        return ok({ authorizationData: { authorizationToken: opts.token, expiresAt: expires } });
      case `${ECR_TARGET}.DescribeRepositories`: {
        const names = (body.repositoryNames as string[] | undefined) ?? [...repositories];
        const missing = names.find((n) => !repositories.has(n));
        if (missing) {
          return awsError(
            res,
            'RepositoryNotFoundException',
            `The repository with name '${missing}' does not exist in the registry with id '${registryId}'`,
          );
        }
        return ok({ repositories: names.map(repo) });
      }
      case `${ECR_TARGET}.CreateRepository`: {
        const name = String(body.repositoryName ?? '');
        if (repositories.has(name)) {
          return awsError(
            res,
            'RepositoryAlreadyExistsException',
            `The repository with name '${name}' already exists in the registry with id '${registryId}'`,
          );
        }
        repositories.add(name);
        return ok({ repository: repo(name) });
      }
      default:
        return awsError(res, 'UnknownOperationException', `the stand-in does not implement ${target}`);
    }
  };
  const server = await startStandin(handle);
  return Object.assign(server, { calls, repositories, failures });
}
