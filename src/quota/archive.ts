/**
 * Bulk extraction (`PUT ...?extract-archive=tar|tar.gz`), counted entry by entry. Swift's bulk middleware turns
 * every regular file of the archive into an object (and makes the containers they need), reading the archive
 * with Python's tarfile as it streams in. The proxy reads it first (tar-reader.ts: as tarfile reads it, or
 * refused where that is not certain): each file is admitted before any of its bytes go on, and Swift is sent a
 * tar the proxy writes itself (tar-writer.ts) from what it read: for each admitted file exactly the name it
 * counted, the size it counted (the bytes it forwards), and the metadata bulk takes from pax records; no other
 * record of the client's reaches Swift. So Swift's own extraction stores exactly what was admitted.
 *
 * What Swift would make of each file (its object path) is worked out here, as bulk.py does: a leading `./`
 * and `/` dropped, the request's path (container, or container/prefix) in front, base-level files of an
 * account-level extraction ignored.
 */
import { createGunzip } from 'node:zlib';
import { PassThrough, type Readable } from 'node:stream';
import { ByteReader, TarReader, TarRefusal, TarTruncated, type TarMember } from './tar-reader.js';
import { END_OF_ARCHIVE, REFUSAL, fileHeader, padding } from './tar-writer.js';

/** A regular file of the archive, where Swift will store it. */
export interface ArchiveFile {
  readonly container: string;
  readonly object: string;
  readonly size: number;
  /** The pax records bulk turns into the object's Content-Type and X-Object-Meta-*, in bulk's order. */
  readonly metadata: ReadonlyArray<readonly [string, string]>;
}

/**
 * Where Swift stores an archive member (`name`) extracted at `base` (container[/prefix], or '' for an
 * account), and the member's path below `base` (`relative`, which names the file to Swift again).
 */
export function memberDestination(name: string, base: string): { container: string; object: string; relative: string } | undefined {
  const relative = (name.startsWith('./') ? name.slice(2) : name).replace(/^\/+/, '');
  const trimmedBase = base.replace(/\/+$/, '');
  const path = trimmedBase ? `${trimmedBase}/${relative}` : relative;
  const slash = path.indexOf('/');
  if (slash < 0) return undefined; // a base-level file: bulk ignores it
  return { container: path.slice(0, slash), object: path.slice(slash + 1), relative };
}

/** The pax keys bulk turns into headers (pax_key_to_swift_header): user.mime_type and user.meta.* xattrs. */
export function isBulkMetadata(key: string): boolean {
  return (
    key === 'SCHILY.xattr.user.mime_type' ||
    key === 'LIBARCHIVE.xattr.user.mime_type' ||
    key.startsWith('SCHILY.xattr.user.meta.') ||
    key.startsWith('LIBARCHIVE.xattr.user.meta.')
  );
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The file bulk makes of a regular member, and the name it is sent to Swift under; undefined for a file bulk
 * ignores. Refused where bulk would not store it under the name counted: a name that is not UTF-8 or holds
 * a NUL (bulk answers 412; the proxy will not guess the server's locale), an empty object name (a container
 * request), a name ending in '/' (a pax path loses it).
 */
export function fileOf(member: TarMember, base: string): (ArchiveFile & { readonly sentName: string }) | undefined {
  // Bulk works on the name's bytes; the parts that decide whether a file is ignored are ASCII.
  if (!memberDestination(member.name.toString('latin1'), Buffer.from(base, 'utf8').toString('latin1'))) return undefined;
  let name: string;
  try {
    name = utf8.decode(member.name);
  } catch {
    throw new TarRefusal('a file name that is not UTF-8');
  }
  const destination = memberDestination(name, base)!;
  if (name.includes('\0')) throw new TarRefusal('a file name with a NUL');
  if (destination.object === '') throw new TarRefusal('a file with an empty object name');
  if (name.endsWith('/')) throw new TarRefusal("a file name ending in '/'");
  const metadata = [...member.pax].filter(([key]) => isBulkMetadata(key));
  // './' in front: bulk drops it, and nothing else, whatever `relative` starts with.
  return { container: destination.container, object: destination.object, size: member.size, metadata, sentName: `./${destination.relative}` };
}

/** What to do with a file: send it on, or stop the archive before it (a refusal). */
export type FileVerdict = 'send' | 'stop';

export interface ArchiveFilterOptions {
  readonly gzip: boolean;
  readonly base: string;
  /** Decides each regular file before any of its bytes go on; resolves once it holds what the file may add. */
  readonly file: (file: ArchiveFile) => Promise<FileVerdict>;
  /** The archive could not be read, or is refused: Swift is sent a tar it refuses (or cut short inside a file). */
  readonly broken?: (error: Error) => void;
}

/** The output was destroyed (the client went away): nothing more to do. */
class Cancelled extends Error {}

/** Writes to `out`, waiting while it is full. */
function sender(out: PassThrough): (chunk: Buffer) => Promise<void> {
  return async (chunk) => {
    if (out.destroyed) throw new Cancelled();
    if (out.write(chunk)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        out.off('drain', done);
        out.off('close', done);
        resolve();
      };
      out.on('drain', done);
      out.on('close', done);
    });
  };
}

/**
 * Each regular file of the archive bulk would store, admitted (or the archive stopped before it), then sent
 * under the proxy's own headers with its bytes; what ended the archive.
 */
async function copyFiles(bytes: ByteReader, options: ArchiveFilterOptions, send: (chunk: Buffer) => Promise<void>, progress: { inFile: boolean }): Promise<'end' | 'empty' | 'stopped'> {
  const reader = new TarReader(bytes);
  for (;;) {
    const member = await reader.next();
    // No bytes at all: Swift is sent none either, and answers as it does for an empty upload.
    if (!member) return bytes.offset === 0 ? 'empty' : 'end';
    const file = member.regular ? fileOf(member, options.base) : undefined;
    if (!file) continue;
    const { sentName, ...admitted } = file;
    if ((await options.file(admitted)) === 'stop') return 'stopped';
    progress.inFile = true;
    await send(fileHeader(sentName, file.size, file.metadata));
    for await (const piece of reader.data()) await send(piece);
    await send(padding(file.size));
    progress.inFile = false;
  }
}

/**
 * The tar Swift is sent for `source`: its regular files as `file` lets them through, up to the first it
 * stops (then a well-formed end of archive), written by the proxy. Other members (directories, links) are
 * left out: bulk skips them.
 */
export function filterArchive(source: Readable, options: ArchiveFilterOptions): Readable {
  const out = new PassThrough();
  const input = options.gzip ? source.pipe(createGunzip()) : source;
  const bytes = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const send = sender(out);
  const halt = () => {
    source.unpipe();
    source.pause();
  };
  const progress = { inFile: false };

  copyFiles(new ByteReader(bytes), options, send, progress).then(
    async (outcome) => {
      out.end(outcome === 'empty' ? undefined : END_OF_ARCHIVE);
      if (outcome === 'stopped') return halt();
      // The rest of the upload (a tar's trailing blocks) is read, so that the client is not left sending.
      for (;;) if ((await bytes.next().catch(() => ({ done: true }))).done) return;
    },
    (error: Error) => {
      if (error instanceof Cancelled || out.destroyed) return;
      if (!(error instanceof TarRefusal || error instanceof TarTruncated || isZlibError(error))) {
        // The admission itself failed: no answer can be trusted.
        out.destroy(error);
        source.destroy();
        return;
      }
      options.broken?.(error);
      halt();
      // Cut inside a file: Swift reads that file short and stores nothing of it. Between files: tarfile
      // refuses the archive there (400 Invalid Tar File, the files before stored, as Swift does with a tar
      // that breaks off).
      if (progress.inFile) out.end();
      else out.end(REFUSAL);
    },
  );
  if (input !== source) input.on('error', () => undefined); // read through the iterator
  source.on('error', (error) => {
    out.destroy(error);
    if (input !== source) input.destroy();
  });
  source.on('aborted', () => {
    out.destroy(new Error('client aborted the upload'));
    if (input !== source) input.destroy();
  });
  return out;
}

function isZlibError(error: Error): boolean {
  return typeof (error as { errno?: unknown }).errno === 'number' && /^Z_/.test(String((error as { code?: unknown }).code));
}
