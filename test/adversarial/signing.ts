/**
 * Signatures for the suite's signed requests, made by an implementation that is not the proxy's:
 * python-swiftclient's `generate_temp_url` (Debian's python3-swiftclient) for temp URLs, and the
 * documented FormPost HMAC for forms.
 */
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TempUrlOptions {
  /** Seconds from now (default 300); negative for an expired URL. */
  seconds?: number;
  prefix?: boolean;
  iso8601?: boolean;
  ipRange?: string;
  digest?: 'sha1' | 'sha256' | 'sha512';
}

/** `path?temp_url_sig=...&temp_url_expires=...`, as python-swiftclient signs it. */
export async function tempUrl(method: string, path: string, key: string, options: TempUrlOptions = {}): Promise<string> {
  const script = [
    'import sys, time',
    'from swiftclient.utils import generate_temp_url',
    'path, seconds, key, method, prefix, iso, ip, digest = sys.argv[1:9]',
    'seconds = int(seconds)',
    'absolute = seconds < 0',
    'when = int(time.time()) + seconds if absolute else seconds',
    "print(generate_temp_url(path, when, key, method, absolute=absolute, prefix=prefix == '1', iso8601=iso == '1', ip_range=ip or None, digest=digest))",
  ].join('\n');
  const { stdout } = await run('/usr/bin/python3', [
    '-c',
    script,
    path,
    String(options.seconds ?? 300),
    key,
    method,
    options.prefix ? '1' : '0',
    options.iso8601 ? '1' : '0',
    options.ipRange ?? '',
    options.digest ?? 'sha256',
  ]);
  return stdout.trim();
}

export interface FormFields {
  path: string;
  redirect?: string;
  maxFileSize: number;
  maxFileCount: number;
  expires: number;
}

/** The FormPost signature: HMAC over path, redirect, max_file_size, max_file_count and expires. */
export function formSignature(fields: FormFields, key: string, digest: 'sha1' | 'sha256' | 'sha512' = 'sha256'): string {
  const message = [fields.path, fields.redirect ?? '', fields.maxFileSize, fields.maxFileCount, fields.expires].join('\n');
  return createHmac(digest, key).update(message).digest('hex');
}

export interface FormFile {
  name: string;
  filename: string;
  content: Buffer | string;
  contentType?: string;
}

/** A multipart/form-data body as browsers send it: the signed fields first, then the files. */
export function formBody(boundary: string, fields: Record<string, string>, files: FormFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  for (const file of files) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${file.name}"; filename="${file.filename}"\r\nContent-Type: ${file.contentType ?? 'application/octet-stream'}\r\n\r\n`));
    parts.push(Buffer.isBuffer(file.content) ? file.content : Buffer.from(file.content));
    parts.push(Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(parts);
}
