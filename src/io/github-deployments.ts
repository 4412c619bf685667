import type { getOctokit } from '@actions/github';
import { LadingError } from '../lib/errors.ts';

export type DeploymentState = 'in_progress' | 'success' | 'failure' | 'error';

/**
 * A GitHub Deployment for one deploy: created at the start, given statuses as it goes. The API base comes from
 * GITHUB_API_URL, so GHES (and a local stand-in in tests) work. A failure to talk to the API is a warning, never a
 * failed deploy.
 */
export class GitHubDeployment {
  private constructor(
    private readonly octokit: ReturnType<typeof getOctokit>,
    private readonly owner: string,
    private readonly repo: string,
    readonly id: number,
    private readonly environment: string,
    private readonly environmentUrl: string | undefined,
    private readonly logUrl: string | undefined,
  ) {}

  static async create(opts: {
    token: string;
    apiUrl: string;
    repository: string;
    ref: string;
    environment: string;
    environmentUrl?: string;
    logUrl?: string;
    description: string;
    payload: Record<string, unknown>;
  }): Promise<GitHubDeployment> {
    const [owner, repo] = opts.repository.split('/');
    if (!owner || !repo)
      throw new LadingError(`cannot create a GitHub deployment: repository '${opts.repository}' is not owner/name`);
    // Octokit is loaded only when a deploy makes a GitHub Deployment (the deploy action's start-up stays light).
    const { getOctokit } = await import('@actions/github');
    const octokit = getOctokit(opts.token, { baseUrl: opts.apiUrl.replace(/\/$/, '') });
    const res = await octokit.rest.repos.createDeployment({
      owner,
      repo,
      ref: opts.ref,
      environment: opts.environment,
      description: opts.description.slice(0, 140),
      auto_merge: false,
      required_contexts: [],
      payload: opts.payload as never,
      production_environment: /^prod/i.test(opts.environment),
    });
    const id = (res.data as { id?: number }).id;
    if (!id)
      throw new LadingError(
        `GitHub did not create a deployment: ${(res.data as { message?: string }).message ?? res.status}`,
      );
    return new GitHubDeployment(octokit, owner, repo, id, opts.environment, opts.environmentUrl, opts.logUrl);
  }

  async status(state: DeploymentState, description: string): Promise<void> {
    await this.octokit.rest.repos.createDeploymentStatus({
      owner: this.owner,
      repo: this.repo,
      deployment_id: this.id,
      state,
      description: description.slice(0, 140),
      environment: this.environment as never,
      ...(this.environmentUrl ? { environment_url: this.environmentUrl } : {}),
      ...(this.logUrl ? { log_url: this.logUrl } : {}),
      auto_inactive: true,
    });
  }
}
