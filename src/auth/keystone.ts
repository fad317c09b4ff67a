/**
 * The proxy's own Keystone v3 login: one `POST /v3/auth/tokens` with the identity of the config file, and what
 * the answer says (the token in X-Subject-Token, how long it lives, its project, its roles). Keeping the token
 * and renewing it is the Swift client's job (swift/client.ts), as for a tempauth service user.
 */
import type { Dispatcher } from 'undici';
import { readBody } from '../swift/response-body.js';
import { describeKeystoneIdentity, type KeystoneIdentity, type KeystoneRef } from '../config/keystone.js';

/** Keystone could not be asked, or would not issue the token: no usage can be read as the service identity. */
export class KeystoneLoginError extends Error {
  readonly code = 'SQP_ERR_KEYSTONE_LOGIN';
}

export interface IssuedToken {
  readonly value: string;
  /** How long the token is valid, by Keystone's own clock (expires_at - issued_at): no clock skew enters. */
  readonly lifetimeMs: number;
  /** The project the token is scoped to: Swift's keystoneauth acts for it on account <reseller_prefix><id>. */
  readonly projectId: string;
}

const LOGIN_TIMEOUT_MS = 10_000;
// Keystone's token answers are a few KiB with the catalog; without it (nocatalog) far less.
const MAX_ANSWER_BYTES = 1024 * 1024;

function refBody(ref: KeystoneRef): Record<string, unknown> {
  return 'id' in ref ? { id: ref.id } : { name: ref.name, domain: { ...ref.domain } };
}

/** The JSON body of the token request (Keystone v3 API: password or application_credential method). */
export function tokenRequestBody(identity: KeystoneIdentity): unknown {
  const { auth } = identity;
  if (auth.type === 'password') {
    return {
      auth: {
        identity: { methods: ['password'], password: { user: { ...refBody(auth.user), password: auth.password } } },
        scope: { project: refBody(auth.project) },
      },
    };
  }
  const credential = 'id' in auth.credential
    ? { id: auth.credential.id, secret: auth.secret }
    : { name: auth.credential.name, user: refBody(auth.credential.user), secret: auth.secret };
  // No scope: Keystone scopes an application credential's token to the credential's own project (and refuses another).
  return { auth: { identity: { methods: ['application_credential'], application_credential: credential } } };
}

interface TokenBody {
  token?: {
    expires_at?: string;
    issued_at?: string;
    project?: { id?: string };
    roles?: Array<{ name?: string }>;
  };
  error?: { message?: string };
}

/**
 * What Keystone's answer means for the proxy: the token, or why it cannot serve as the service identity. Pure,
 * so that every refusal is worded (and tested) without a Keystone. `now` stands in for issued_at when absent.
 */
export function readTokenAnswer(identity: KeystoneIdentity, status: number, subjectToken: string | undefined, body: TokenBody | undefined, now: number): IssuedToken {
  const who = describeKeystoneIdentity(identity);
  if (status !== 201 && status !== 200) {
    const message = body?.error?.message ? `: ${body.error.message}` : '';
    throw new KeystoneLoginError(`Keystone refused the service identity, ${who} (status ${status}${message})`);
  }
  const token = body?.token;
  if (!subjectToken || !token) throw new KeystoneLoginError(`Keystone answered ${status} without a token for ${who}`);
  const projectId = token.project?.id;
  if (!projectId) throw new KeystoneLoginError(`the token of ${who} is not scoped to a project: Swift's keystoneauth maps a project to an account`);
  // keystoneauth compares roles without case.
  const wanted = identity.resellerAdminRole.toLowerCase();
  if (!(token.roles ?? []).some((role) => role.name?.toLowerCase() === wanted)) {
    throw new KeystoneLoginError(
      `the token of ${who} lacks the role ${identity.resellerAdminRole}: Swift's keystoneauth lets only that role read and write every account ` +
        `(grant it on the project, or name Swift's role with reseller_admin_role in [filter:keystoneauth])`,
    );
  }
  const expires = Date.parse(token.expires_at ?? '');
  if (!Number.isFinite(expires)) throw new KeystoneLoginError(`Keystone's token for ${who} has no valid expires_at`);
  const issued = Date.parse(token.issued_at ?? '');
  const lifetimeMs = expires - (Number.isFinite(issued) ? issued : now);
  if (lifetimeMs <= 0) throw new KeystoneLoginError(`Keystone's token for ${who} has already expired (expires_at ${token.expires_at})`);
  return Object.freeze({ value: subjectToken, lifetimeMs, projectId });
}

/** Asks Keystone for a token of the configured identity. Throws KeystoneLoginError when none is issued. */
export async function issueToken(identity: KeystoneIdentity, dispatcher: Dispatcher): Promise<IssuedToken> {
  const url = new URL(identity.tokensUrl);
  // The catalog is not read: the account follows from the project id, as keystoneauth derives it.
  url.searchParams.set('nocatalog', '');
  let status: number;
  let subjectToken: string | undefined;
  let body: TokenBody | undefined;
  try {
    const response = await dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      headers: { host: url.host, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(tokenRequestBody(identity)),
      signal: AbortSignal.timeout(LOGIN_TIMEOUT_MS),
    });
    status = response.statusCode;
    const header = response.headers['x-subject-token'];
    subjectToken = Array.isArray(header) ? header[0] : header;
    const text = (await readBody(response.body, MAX_ANSWER_BYTES)).toString('utf8');
    try {
      body = JSON.parse(text) as TokenBody;
    } catch {
      body = undefined;
    }
  } catch (error) {
    throw new KeystoneLoginError(`cannot reach Keystone for the service identity, ${describeKeystoneIdentity(identity)}: ${(error as Error).message}`, { cause: error });
  }
  return readTokenAnswer(identity, status, subjectToken, body, Date.now());
}

/** Keystone's project list is one answer (no pages); 16 MiB holds some 50,000 projects. */
const MAX_PROJECTS_BYTES = 16 * 1024 * 1024;

/**
 * The ids of the projects `token` may list (`GET /v3/projects`, Keystone's `identity:list_projects` policy: an
 * admin, or a reader of the system or a domain); undefined when Keystone does not let it (401, 403).
 */
export async function listProjects(identity: KeystoneIdentity, token: string, dispatcher: Dispatcher): Promise<string[] | undefined> {
  const url = new URL(identity.tokensUrl);
  url.pathname = url.pathname.replace(/\/auth\/tokens\/?$/, '/projects');
  const response = await dispatcher.request({
    origin: url.origin,
    path: url.pathname,
    method: 'GET',
    headers: { host: url.host, accept: 'application/json', 'x-auth-token': token },
    signal: AbortSignal.timeout(LOGIN_TIMEOUT_MS),
  });
  const text = (await readBody(response.body, MAX_PROJECTS_BYTES)).toString('utf8');
  if (response.statusCode === 401 || response.statusCode === 403) return undefined;
  if (response.statusCode >= 300) throw new KeystoneLoginError(`Keystone answered ${response.statusCode} to the project list`);
  return ((JSON.parse(text) as { projects?: Array<{ id: string }> }).projects ?? []).map((project) => project.id);
}
