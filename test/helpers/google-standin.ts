import { randomBytes } from 'node:crypto';
import { sendJson, startStandin, type StandinServer } from './standin-server.ts';

/**
 * A stand-in for the Google endpoints workload identity federation uses, driven by the real google-auth-library.
 * google-auth-library honours `token_url` and `service_account_impersonation_url` of an `external_account`
 * configuration (baseexternalclient.js; a service-account key's `token_uri` is NOT honoured: gtoken always posts
 * to oauth2.googleapis.com), so the configuration google-github-actions/auth writes can point here:
 *
 * - `GET /oidc?audience=…` plays GitHub's OIDC token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL): with the request
 *   token as Bearer it answers `{"value": <subject token>}` (credential_source.url + format json/value);
 * - `POST /v1/token` plays sts.googleapis.com: RFC 8693 token exchange of the subject token for an access token;
 * - `POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken` plays iamcredentials.googleapis.com.
 *
 * The final access token is `accessToken` (give it the registry password of `oauth2accesstoken`).
 */
export interface GoogleStandin extends StandinServer {
  subjectToken: string;
  requestToken: string;
  /** The intermediate STS token when impersonating. */
  stsToken: string;
  /** Makes the STS exchange fail with an OAuth error, e.g. ['invalid_grant', 'the token is expired']. */
  failSts?: [error: string, description: string];
  /**
   * An external_account configuration like the one google-github-actions/auth writes, pointing here.
   * `source: 'url'` reads the subject token from the OIDC stand-in; `{ file }` from a file.
   */
  externalAccount(opts?: { impersonate?: string; source?: 'url' | { file: string } }): Record<string, unknown>;
}

export const STS_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const AUDIENCE = '//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/gh/providers/lading';

export async function startGoogleStandin(opts: { accessToken: string; expiresIn?: number }): Promise<GoogleStandin> {
  const subjectToken = `oidc-${randomBytes(12).toString('hex')}`;
  const requestToken = `gh-request-${randomBytes(12).toString('hex')}`;
  const stsToken = `sts-${randomBytes(12).toString('hex')}`;
  const expiresIn = opts.expiresIn ?? 3600;
  const state: { impersonating: boolean; standin?: GoogleStandin } = { impersonating: false };
  const server = await startStandin((req, res) => {
    const url = new URL(req.url, 'http://standin');
    if (req.method === 'GET' && url.pathname === '/oidc') {
      if (req.headers.authorization !== `Bearer ${requestToken}`) return sendJson(res, 401, { message: 'bad token' });
      return sendJson(res, 200, { count: 1, value: subjectToken });
    }
    if (req.method === 'POST' && url.pathname === '/v1/token') {
      const form = new URLSearchParams(req.body);
      const fail = state.standin?.failSts;
      if (fail) return sendJson(res, 400, { error: fail[0], error_description: fail[1] });
      if (
        form.get('grant_type') !== STS_GRANT ||
        form.get('subject_token') !== subjectToken ||
        form.get('subject_token_type') !== JWT_TOKEN_TYPE ||
        form.get('audience') !== AUDIENCE
      ) {
        return sendJson(res, 400, { error: 'invalid_request', error_description: 'unexpected token exchange' });
      }
      return sendJson(res, 200, {
        access_token: state.impersonating ? stsToken : opts.accessToken,
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        token_type: 'Bearer',
        expires_in: expiresIn,
      });
    }
    const gen = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/.exec(url.pathname);
    if (req.method === 'POST' && gen) {
      if (req.headers.authorization !== `Bearer ${stsToken}`) {
        return sendJson(res, 401, { error: { code: 401, message: 'bad STS token', status: 'UNAUTHENTICATED' } });
      }
      return sendJson(res, 200, {
        accessToken: opts.accessToken,
        expireTime: new Date(Date.now() + expiresIn * 1000).toISOString(),
      });
    }
    return sendJson(res, 404, { error: `no ${req.method} ${url.pathname} here` });
  });
  const standin: GoogleStandin = Object.assign(server, {
    subjectToken,
    requestToken,
    stsToken,
    externalAccount(o: { impersonate?: string; source?: 'url' | { file: string } } = {}) {
      state.impersonating = Boolean(o.impersonate);
      const source = o.source ?? 'url';
      return {
        type: 'external_account',
        audience: AUDIENCE,
        subject_token_type: JWT_TOKEN_TYPE,
        token_url: `${server.url}/v1/token`,
        ...(o.impersonate && {
          service_account_impersonation_url: `${server.url}/v1/projects/-/serviceAccounts/${o.impersonate}:generateAccessToken`,
        }),
        credential_source:
          source === 'url'
            ? {
                url: `${server.url}/oidc?audience=${encodeURIComponent(AUDIENCE)}`,
                headers: { Authorization: `Bearer ${requestToken}` },
                format: { type: 'json', subject_token_field_name: 'value' },
              }
            : { file: source.file },
      };
    },
  });
  state.standin = standin;
  return standin;
}
