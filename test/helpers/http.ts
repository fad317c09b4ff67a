/**
 * Small HTTP helpers for integration tests: tempauth logins and requests that always consume their body.
 */
import { request as undiciRequest, type Dispatcher } from 'undici';

export interface Login {
  token: string;
  storageUrl: string;
}

export async function login(baseUrl: string, user: string, key: string): Promise<Login> {
  const response = await undiciRequest(`${baseUrl}/auth/v1.0`, { headers: { 'x-auth-user': user, 'x-auth-key': key } });
  await response.body.dump();
  const token = response.headers['x-auth-token'];
  const storageUrl = response.headers['x-storage-url'];
  if (response.statusCode !== 200 || typeof token !== 'string' || typeof storageUrl !== 'string') {
    throw new Error(`login of ${user} at ${baseUrl} failed with ${response.statusCode}`);
  }
  return { token, storageUrl };
}

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export async function call(
  method: Dispatcher.HttpMethod | 'COPY',
  url: string,
  headers: Record<string, string> = {},
  body?: string | Buffer | NodeJS.ReadableStream,
): Promise<Answer> {
  const response = await undiciRequest(url, { method: method as Dispatcher.HttpMethod, headers, body: body as never });
  const text = method === 'HEAD' ? '' : await response.body.text();
  if (method === 'HEAD') await response.body.dump();
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return { status: response.statusCode, headers: flat, body: text };
}

/** Storage URL of an account on another base URL (direct Swift vs the proxy). */
export function accountUrl(baseUrl: string, account: string): string {
  return `${baseUrl}/v1/AUTH_${account}`;
}
