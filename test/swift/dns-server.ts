/**
 * A loopback DNS server for the test Swift's cname_lookup (and the proxy's): it answers CNAME questions for
 * names under `cname.test`, each name saying what it points to, so tests need no zone files:
 *
 *   <labels>.cname.test            → <labels>.swift.test          (a storage-domain name)
 *   chain.<labels>.cname.test      → <labels>.cname.test          (one more hop)
 *   flip.<a>.<b>.<acct>.cname.test → <a>.<acct>.swift.test, then <b>.<acct>.swift.test, then <a>... (a record
 *                                    that changes on every question: DNS changing between two lookups)
 *   away.cname.test                → elsewhere.example            (not a storage domain)
 *   anything else                  → NXDOMAIN
 *
 * TTL 0, so Swift keeps nothing in memcache. Enough of RFC 1035 for one question per query.
 */
import dgram from 'node:dgram';

export const CNAME_ZONE = 'cname.test';
export const STORAGE_DOMAIN = 'swift.test';

export interface DnsServer {
  /** `127.0.0.1:<port>` */
  readonly address: string;
  close(): Promise<void>;
}

/** The CNAME a name has (the n-th time it is asked), or undefined for none. */
export function cnameOf(name: string, timesAsked: number): string | undefined {
  const lower = name.toLowerCase();
  if (!lower.endsWith(`.${CNAME_ZONE}`)) return undefined;
  const labels = lower.slice(0, -CNAME_ZONE.length - 1).split('.');
  if (labels.length === 1 && labels[0] === 'away') return 'elsewhere.example';
  if (labels[0] === 'chain' && labels.length > 1) return `${labels.slice(1).join('.')}.${CNAME_ZONE}`;
  if (labels[0] === 'flip' && labels.length === 4) return `${labels[1 + (timesAsked % 2)]}.${labels[3]}.${STORAGE_DOMAIN}`;
  if (labels[0] === 'none') return undefined;
  return `${labels.join('.')}.${STORAGE_DOMAIN}`;
}

function readName(message: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let at = offset;
  for (;;) {
    const length = message[at];
    if (length === undefined) throw new Error('truncated name');
    if (length === 0) return { name: labels.join('.'), end: at + 1 };
    labels.push(message.subarray(at + 1, at + 1 + length).toString('latin1'));
    at += 1 + length;
  }
}

function encodeName(name: string): Buffer {
  return Buffer.concat([...name.split('.').map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'latin1')])), Buffer.from([0])]);
}

const TYPE_CNAME = 5;
const CLASS_IN = 1;

function answer(query: Buffer, asked: Map<string, number>): Buffer | undefined {
  if (query.length < 12 || query.readUInt16BE(4) < 1) return undefined;
  const { name, end } = readName(query, 12);
  const type = query.readUInt16BE(end);
  const question = query.subarray(12, end + 4);
  const times = asked.get(name.toLowerCase()) ?? 0;
  asked.set(name.toLowerCase(), times + 1);
  const target = cnameOf(name, times);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // id
  // QR, AA, the client's RD; RCODE 3 (NXDOMAIN) for a name without a record.
  header.writeUInt16BE(0x8400 | (query.readUInt16BE(2) & 0x0100) | (target === undefined ? 3 : 0), 2);
  header.writeUInt16BE(1, 4);
  const answers = target !== undefined && (type === TYPE_CNAME || type === 255 || type === 1 || type === 28) ? 1 : 0;
  header.writeUInt16BE(answers, 6);
  if (answers === 0) return Buffer.concat([header, question]);
  const rdata = encodeName(target!);
  const record = Buffer.alloc(12);
  record.writeUInt16BE(0xc00c, 0); // the question's name
  record.writeUInt16BE(TYPE_CNAME, 2);
  record.writeUInt16BE(CLASS_IN, 4);
  record.writeUInt32BE(0, 6); // TTL
  record.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([header, question, record, rdata]);
}

export async function startDnsServer(): Promise<DnsServer> {
  const socket = dgram.createSocket('udp4');
  const asked = new Map<string, number>();
  socket.on('message', (message, remote) => {
    try {
      const reply = answer(message, asked);
      if (reply) socket.send(reply, remote.port, remote.address);
    } catch {
      // A query this server cannot read gets no answer; the resolver times out.
    }
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  socket.unref();
  return {
    address: `127.0.0.1:${socket.address().port}`,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
