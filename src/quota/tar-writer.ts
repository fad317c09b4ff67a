/**
 * The tar the proxy writes Swift for a bulk extraction: for each file it admitted, the name, the size and the
 * metadata records it counted, each in the one spelling Python's tarfile reads exactly, whatever the server's
 * locale: a plain ASCII name of up to 100 bytes in the ustar name field, any other in a pax `path` record
 * (UTF-8, which tarfile decodes strictly); the size in octal (GNU base-256 from 8 GiB); the metadata as pax
 * records with their keys and values as read. No other field means anything: no prefix, no link, mode 0644.
 */

const BLOCK = 512;

function numberField(block: Buffer, at: number, width: number, value: number): void {
  if (value < 8 ** (width - 1)) {
    block.write(`${value.toString(8).padStart(width - 1, '0')}\0`, at, width, 'latin1');
    return;
  }
  block[at] = 0x80;
  let rest = BigInt(value);
  for (let i = width - 1; i > 0; i--) {
    block[at + i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
}

function headerBlock(name: string, size: number, type: '0' | 'x'): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'latin1');
  numberField(block, 100, 8, 0o644);
  numberField(block, 108, 8, 0);
  numberField(block, 116, 8, 0);
  numberField(block, 124, 12, size);
  numberField(block, 136, 12, 0);
  block.write(type, 156, 1, 'latin1');
  block.write('ustar\u000000', 257, 8, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

/** One pax record; its length counts its own digits. */
function paxRecord(key: string, value: string): Buffer {
  const body = Buffer.from(` ${key}=${value}\n`, 'utf8');
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length), 'latin1'), body]);
}

/** NULs to the next block boundary after `size` bytes. */
export function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** A name tarfile reads the same from the ustar name field under any locale. */
const plainName = (name: string) => /^[\x20-\x7e]{1,100}$/.test(name);

/** The header blocks of a regular file `name` of `size` bytes carrying `metadata` (pax key, value). */
export function fileHeader(name: string, size: number, metadata: ReadonlyArray<readonly [string, string]>): Buffer {
  const records = [...(plainName(name) ? [] : [paxRecord('path', name)]), ...metadata.map(([key, value]) => paxRecord(key, value))];
  const member = headerBlock(plainName(name) ? name : 'pax-path', size, '0');
  if (records.length === 0) return member;
  const data = Buffer.concat(records);
  return Buffer.concat([headerBlock('PaxHeader', data.length, 'x'), data, padding(data.length), member]);
}

/** The end of an archive: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

/**
 * What makes tarfile refuse the archive wherever it comes (bulk then answers 400 Invalid Tar File, having
 * stored the files before): an extended header, then a block that is no header.
 */
export const REFUSAL = Buffer.concat([headerBlock('PaxHeader', 0, 'x'), Buffer.alloc(BLOCK, 'x')]);
