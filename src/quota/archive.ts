/**
 * Bulk extraction (`PUT ...?extract-archive=tar|tar.gz`), counted entry by entry. Swift's bulk middleware turns
 * every regular file of the archive into an object (and makes the containers they need), reading the archive
 * as it streams in. The proxy reads it first: each file is admitted before any of its bytes go on, and Swift is
 * sent a plain tar of the files admitted, ending before the first one past a limit. So Swift's own extraction
 * stores exactly what was admitted, and the archive's framing can never hide a file from the count.
 *
 * What Swift would make of each file (its object path) is worked out here, as bulk.py does: a leading `./`
 * and `/` dropped, the request's path (container, or container/prefix) in front, base-level files of an
 * account-level extraction ignored.
 */
import { createGunzip } from 'node:zlib';
import { PassThrough, type Readable } from 'node:stream';
import tar from 'tar-stream';

/** A regular file of the archive, where Swift will store it. */
export interface ArchiveFile {
  readonly container: string;
  readonly object: string;
  readonly size: number;
}

/** Where Swift stores an archive member (`name`) extracted at `base` (container[/prefix], or '' for an account). */
export function memberDestination(name: string, base: string): { container: string; object: string } | undefined {
  let path = name.startsWith('./') ? name.slice(2) : name;
  path = path.replace(/^\/+/, '');
  const trimmedBase = base.replace(/\/+$/, '');
  if (trimmedBase) path = `${trimmedBase}/${path}`;
  const slash = path.indexOf('/');
  if (slash < 0) return undefined; // a base-level file: bulk ignores it
  return { container: path.slice(0, slash), object: path.slice(slash + 1) };
}

/** What to do with a file: send it on, or stop the archive before it (a refusal). */
export type FileVerdict = 'send' | 'stop';

export interface ArchiveFilterOptions {
  readonly gzip: boolean;
  readonly base: string;
  /** Decides each regular file before any of its bytes go on; resolves once it holds what the file may add. */
  readonly file: (file: ArchiveFile) => Promise<FileVerdict>;
  /** The archive could not be read (bad tar, bad gzip): Swift is sent a cut tar, which it refuses as it would. */
  readonly broken?: (error: Error) => void;
}

const FILE_TYPES = new Set(['file', 'contiguous-file']);
/** A tar block that is no header: its checksum field is not a number. */
const INVALID_BLOCK = Buffer.alloc(512, 'x');

/**
 * The plain tar Swift is sent for `source`: its regular files as `file` lets them through, up to the first it
 * stops (then a well-formed end of archive). Other members (directories, links) are left out: bulk skips them.
 */
export function filterArchive(source: Readable, options: ArchiveFilterOptions): Readable {
  const out = new PassThrough();
  const extract = tar.extract();
  const pack = tar.pack();
  // Copied by hand rather than piped, so that a broken archive can cut the copy short.
  let cut = false;
  pack.on('data', (chunk) => {
    if (!cut && !out.write(chunk as Buffer)) pack.pause();
  });
  out.on('drain', () => pack.resume());
  pack.on('end', () => {
    if (!cut) out.end();
  });
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    source.unpipe();
    source.pause();
    pack.finalize();
  };
  const broken = (error: Error) => {
    if (stopped) return;
    stopped = true;
    options.broken?.(error);
    // What was sent ends in a block no tar reader takes: Swift's tarfile refuses it where the original broke
    // (400 Invalid Tar File at the start; later, the extraction ends there), and a file cut short is not stored.
    cut = true;
    out.end(INVALID_BLOCK);
  };
  extract.on('entry', (header, stream, next) => {
    if (stopped) {
      stream.resume();
      return;
    }
    const destination = FILE_TYPES.has(header.type ?? 'file') ? memberDestination(header.name, options.base) : undefined;
    if (!destination) {
      stream.on('end', () => next());
      stream.resume();
      return;
    }
    const size = header.size ?? 0;
    options.file({ ...destination, size }).then(
      (verdict) => {
        if (verdict === 'stop') {
          stop();
          stream.resume();
          return;
        }
        const entry = pack.entry({ name: header.name, size, mode: header.mode, mtime: header.mtime, type: 'file', ...(header.pax ? { pax: header.pax } : {}) }, (error) => {
          if (error) broken(error);
          else next();
        });
        stream.pipe(entry);
      },
      (error: Error) => {
        out.destroy(error);
        source.destroy();
      },
    );
  });
  extract.on('finish', () => {
    if (!stopped) {
      stopped = true;
      pack.finalize();
    }
  });
  extract.on('error', broken);
  if (options.gzip) {
    const gunzip = createGunzip();
    gunzip.on('error', broken);
    source.pipe(gunzip).pipe(extract);
  } else {
    source.pipe(extract);
  }
  source.on('error', (error) => out.destroy(error));
  source.on('aborted', () => out.destroy(new Error('client aborted the upload')));
  return out;
}
