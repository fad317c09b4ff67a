/**
 * Attack shapes shared by the files that run them through one proxy (bulk, s3, copies) and the file that runs
 * them through two proxies sharing one Redis ledger (two-proxies): the hostile archives, S3 spellings and copy
 * ranges themselves, and the small clients that send them. A test file cannot export them (importing it would
 * run its tests), so they live here.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import tar from 'tar-stream';
import { request } from 'undici';
import { rawRequest, type HeaderList, type RawResponse } from '../helpers/raw-http.js';
import { makeContainer, putDirect, type Arena, type Tenant } from './arena.js';
import { END, file, header, pax, padded } from './tar-blocks.js';

// --- bulk extraction: pax records Python's tarfile reads differently from a JavaScript tar reader ---

/** An ordinary tar (tar-stream) of `[name, size]` files, each of `size` bytes of 'x'. */
export async function archive(files: Array<[string, number]>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, size] of files) pack.entry({ name }, Buffer.alloc(size, 'x'));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A sparse member (pax GNU.sparse.*, format 1.0): 1,024 bytes in the archive, `realsize` once expanded. */
export function sparseArchive(name: string, realsize: number): Buffer {
  return Buffer.concat([
    pax([['GNU.sparse.major', '1'], ['GNU.sparse.minor', '0'], ['GNU.sparse.name', name], ['GNU.sparse.realsize', String(realsize)]]),
    header({ name, size: 1024 }),
    padded('1\n0\n1\n'),
    padded('x'),
    END,
  ]);
}

/** A member named `path` whose pax GNU.sparse.name says `renamed` (where tarfile puts it). */
export function renamedArchive(renamed: string, path: string, data: string): Buffer {
  return Buffer.concat([pax([['GNU.sparse.name', renamed]]), file(path, data), END]);
}

/**
 * `first` counts 1 byte; read by tarfile (pax size `1_536`) it is 1,536 bytes: its block, then `second`'s
 * header and 10 bytes of data.
 */
export function swallowingArchive(first: string, second: string): Buffer {
  return Buffer.concat([pax([['size', '1_536']]), header({ name: first, size: 1 }), padded('x'), file(second, 'y'.repeat(10)), END]);
}

// --- S3: values s3api reads in spellings the proxy refuses ---

/** partNumber spellings Python's int() reads (10, 2, 3, 4, 5, 6, 7), percent-encoded as sent. */
export const PART_NUMBER_SPELLINGS = ['1_0', '%D9%A2', '%E3%80%803', '4%C2%A0', '%2B5', '06', '%E2%80%837'] as const;

/** x-amz-copy-source-range spellings s3api's Range reads, for a 9,000-byte source. */
export const COPY_RANGE_SPELLINGS = ['bytes=0-', 'bytes=-9000', 'bytes=+0-8999', 'bytes=0_0-8999', 'bytes=0 -8999', 'Bytes=0-8999', 'bytes=00-8999'] as const;

const S3_CLIENT = fileURLToPath(new URL('./s3_client.py', import.meta.url));

export interface S3Answer {
  ok: boolean;
  status?: number;
  code?: string;
  url?: string;
  upload_id?: string;
  etag?: string;
  stage?: string;
  /** A `parallel` command's answers, in its commands' order. */
  answers?: S3Answer[];
}

/** Runs boto3 commands (in order, s3_client.py) and returns their answers. */
export async function s3(commands: Array<Record<string, unknown>>): Promise<S3Answer[]> {
  const child = spawn('/usr/bin/python3', [S3_CLIENT], { stdio: ['pipe', 'pipe', 'inherit'] });
  const out: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  for (const command of commands) child.stdin.write(`${JSON.stringify(command)}\n`);
  child.stdin.end();
  await new Promise<void>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`s3_client exited ${code}`)))));
  return Buffer.concat(out).toString('utf8').trim().split('\n').map((line) => JSON.parse(line) as S3Answer);
}

// --- server-side copies ---

/** A content type of 2,000 characters, which swob writes into every part of a multipart/byteranges body. */
export const LONG_TYPE = `application/x-${'t'.repeat(1986)}`;

/** A Range of `spec` `times` times: `bytes=spec,spec,...`. */
export const repeatRange = (spec: string, times: number): string => `bytes=${Array.from({ length: times }, () => spec).join(',')}`;

/** A request through the proxy at `origin` with header names, duplicates and bytes exactly as given. */
export function sendRaw(origin: string, tenant: Tenant, method: string, path: string, headers: HeaderList, body = ''): Promise<RawResponse> {
  const target = `/v1/${tenant.swiftAccount}${path}`;
  return rawRequest(origin, method, target, [['Host', new URL(origin).host], ['X-Auth-Token', tenant.token], ['Content-Length', String(Buffer.byteLength(body))], ...headers], body).response;
}

/** Swift's own answer to a GET of the source with these headers: its status and body length. */
export async function swiftGet(tenant: Tenant, path: string, headers: HeaderList): Promise<{ status: number; length: number }> {
  const response = await request(tenant.direct(path), { headers: ['x-auth-token', tenant.token, ...headers.flat()] });
  const body = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, length: body.length };
}

/**
 * Another account's 50,000-byte DLO (`/src/o`, readable by all), and the attacker's own 32-byte `/src/o` with the
 * same ETag (the MD5 of the DLO's segment's hash): a copy sized from the wrong account counts 32 bytes.
 */
export async function dloTwinOf(arena: Arena): Promise<{ attacker: Tenant; other: Tenant }> {
  const attacker = await arena.tenant();
  const other = await arena.tenant();
  const readable = { 'x-container-read': '.r:*,.rlistings' };
  await makeContainer(other, 'seg', readable);
  await makeContainer(other, 'src', readable);
  const segment = Buffer.alloc(50_000, 'x');
  await putDirect(other, '/seg/s0', segment);
  await putDirect(other, '/src/o', '', { 'x-object-manifest': 'seg/s' });
  await makeContainer(attacker, 'src');
  await putDirect(attacker, '/src/o', createHash('md5').update(segment).digest('hex'));
  return { attacker, other };
}
