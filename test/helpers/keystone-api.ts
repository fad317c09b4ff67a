/**
 * Keystone's v3 API as the tests use it: tokens, and the projects, users, roles and application credentials a
 * test needs, made with the admin's token. Names are unique per test run's Keystone, so every call that makes
 * something takes the name it gives.
 */
import { request } from 'undici';

export interface ScopedToken {
  token: string;
  userId: string;
  projectId: string;
  roles: string[];
}

interface TokenAnswer {
  token: { user: { id: string }; project?: { id: string }; roles?: Array<{ name: string }> };
}

async function send(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, headers: Record<string, string>, body?: unknown) {
  const response = await request(url, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, json: text ? (JSON.parse(text) as unknown) : undefined, text };
}

/** A project-scoped token of a user named in the default domain: what a Swift client gets from Keystone. */
export async function projectToken(keystone: string, user: string, password: string, projectId: string): Promise<ScopedToken> {
  const answer = await send('POST', `${keystone}/v3/auth/tokens?nocatalog`, {}, {
    auth: {
      identity: { methods: ['password'], password: { user: { name: user, domain: { id: 'default' }, password } } },
      scope: { project: { id: projectId } },
    },
  });
  const token = answer.headers['x-subject-token'];
  if (answer.status !== 201 || typeof token !== 'string') throw new Error(`token of ${user} in project ${projectId}: ${answer.status} ${answer.text}`);
  const body = answer.json as TokenAnswer;
  return { token, userId: body.token.user.id, projectId: body.token.project!.id, roles: (body.token.roles ?? []).map((r) => r.name) };
}

/** What the admin (bootstrap's, in project admin) does: every call checks Keystone's status. */
export class KeystoneAdmin {
  private readonly roles = new Map<string, string>();

  private constructor(
    readonly url: string,
    /** The admin's token, scoped to project admin (role admin: a Swift operator of that project's account). */
    readonly token: string,
    readonly projectId: string,
  ) {}

  static async login(url: string, password: string): Promise<KeystoneAdmin> {
    const answer = await send('POST', `${url}/v3/auth/tokens?nocatalog`, {}, {
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password } } },
        scope: { project: { name: 'admin', domain: { id: 'default' } } },
      },
    });
    const token = answer.headers['x-subject-token'];
    if (answer.status !== 201 || typeof token !== 'string') throw new Error(`admin login at ${url}: ${answer.status} ${answer.text}`);
    return new KeystoneAdmin(url, token, (answer.json as TokenAnswer).token.project!.id);
  }

  private async call(method: 'POST' | 'PUT' | 'PATCH' | 'GET' | 'DELETE', path: string, body: unknown, expected: number): Promise<unknown> {
    const answer = await send(method, `${this.url}/v3${path}`, { 'x-auth-token': this.token }, body);
    if (answer.status !== expected) throw new Error(`${method} /v3${path}: ${answer.status} ${answer.text}`);
    return answer.json;
  }

  /** The role's id, making the role if Keystone has none of that name. */
  async role(name: string): Promise<string> {
    const known = this.roles.get(name);
    if (known) return known;
    const found = (await this.call('GET', `/roles?name=${encodeURIComponent(name)}`, undefined, 200)) as { roles: Array<{ id: string }> };
    const id = found.roles[0]?.id ?? ((await this.call('POST', '/roles', { role: { name } }, 201)) as { role: { id: string } }).role.id;
    this.roles.set(name, id);
    return id;
  }

  async project(name: string): Promise<string> {
    return ((await this.call('POST', '/projects', { project: { name, domain_id: 'default' } }, 201)) as { project: { id: string } }).project.id;
  }

  async user(name: string, password: string): Promise<string> {
    return ((await this.call('POST', '/users', { user: { name, password, domain_id: 'default' } }, 201)) as { user: { id: string } }).user.id;
  }

  async grant(userId: string, projectId: string, roleName: string): Promise<void> {
    await this.call('PUT', `/projects/${projectId}/users/${userId}/roles/${await this.role(roleName)}`, undefined, 204);
  }

  /** Disabling a user revokes every token it holds (Keystone records a revocation event); enabling it again does not bring them back. */
  async setEnabled(userId: string, enabled: boolean): Promise<void> {
    await this.call('PATCH', `/users/${userId}`, { user: { enabled } }, 200);
  }
}

/** An application credential the token's user makes for itself, limited to `roles` of the token's project. */
export async function applicationCredential(keystone: string, owner: ScopedToken, name: string, roles: string[]): Promise<{ id: string; secret: string }> {
  const answer = await send('POST', `${keystone}/v3/users/${owner.userId}/application_credentials`, { 'x-auth-token': owner.token }, {
    application_credential: { name, roles: roles.map((role) => ({ name: role })) },
  });
  if (answer.status !== 201) throw new Error(`application credential ${name}: ${answer.status} ${answer.text}`);
  const { id, secret } = (answer.json as { application_credential: { id: string; secret: string } }).application_credential;
  return { id, secret };
}
