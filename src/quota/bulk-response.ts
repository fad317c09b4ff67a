/**
 * Swift's bulk extraction answer (bulk.py `get_response_body`: text/plain, application/json, or XML), read and
 * written again with a refusal of the proxy's added: the file the archive was stopped at, with the status a
 * quota refusal has, in `Errors`; the answer's status becomes bulk's for failed files (400 Bad Request) and
 * its `Response Body` says which limit. Pure.
 */

export interface BulkResult {
  status: string;
  body: string;
  created: number;
  errors: Array<[string, string]>;
}

function xmlUnescape(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Reads bulk's answer (after its heartbeat whitespace); undefined when it is none of its formats. */
export function parseBulkAnswer(text: string, contentType: string | undefined): BulkResult | undefined {
  const body = text.replace(/^\s+/, '').replace(/^<\?xml[^>]*\?>\s*/, '');
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  try {
    if (type === 'application/json') {
      const data = JSON.parse(body) as Record<string, unknown>;
      return {
        status: String(data['Response Status'] ?? ''),
        body: String(data['Response Body'] ?? ''),
        created: Number(data['Number Files Created'] ?? 0),
        errors: ((data.Errors ?? []) as Array<[string, string]>).map(([name, status]) => [String(name), String(status)]),
      };
    }
    if (type.endsWith('/xml')) {
      const field = (tag: string) => xmlUnescape(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(body)?.[1] ?? '');
      const errors = [...body.matchAll(/<object><name>([\s\S]*?)<\/name><status>([\s\S]*?)<\/status><\/object>/g)].map((m) => [xmlUnescape(m[1]!), xmlUnescape(m[2]!)] as [string, string]);
      return { status: field('response_status'), body: field('response_body'), created: Number(field('number_files_created') || 0), errors };
    }
    const [head, tail = ''] = body.split(/\nErrors:\n/);
    const fields = new Map(head!.split('\n').map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]));
    const errors = tail.split('\n').filter(Boolean).map((line) => {
      const at = line.lastIndexOf(', ');
      return [line.slice(0, at), line.slice(at + 2)] as [string, string];
    });
    return { status: fields.get('Response Status') ?? '', body: fields.get('Response Body') ?? '', created: Number(fields.get('Number Files Created') ?? 0), errors };
  } catch {
    return undefined;
  }
}

/** Writes a result as bulk does, in the same format (keys sorted, as bulk sorts them). */
export function formatBulkAnswer(result: BulkResult, contentType: string | undefined): string {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const data: Record<string, string | number> = { 'Number Files Created': result.created, 'Response Body': result.body, 'Response Status': result.status };
  if (type === 'application/json') {
    // As Python's json.dumps writes bulk's dict: its key order, ", " and ": ", non-ASCII as \uXXXX.
    const json = (value: unknown) => JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const errors = `[${result.errors.map(([name, status]) => `[${json(name)}, ${json(status)}]`).join(', ')}]`;
    return `{"Response Status": ${json(result.status)}, "Response Body": ${json(result.body)}, "Number Files Created": ${result.created}, "Errors": ${errors}}`;
  }
  const keys = Object.keys(data).sort();
  if (type.endsWith('/xml')) {
    const fields = keys.map((key) => `<${key.replace(/ /g, '_').toLowerCase()}>${xmlEscape(String(data[key]))}</${key.replace(/ /g, '_').toLowerCase()}>\n`).join('');
    const errors = result.errors.map(([name, status]) => `<object><name>${xmlEscape(name)}</name><status>${xmlEscape(status)}</status></object>\n`).join('');
    return `<?xml version="1.0" encoding="UTF-8"?>\n<extract>\n${fields}<errors>\n${errors}</errors>\n</extract>\n`;
  }
  return `${keys.map((key) => `${key}: ${data[key]}\n`).join('')}Errors:\n${result.errors.map(([name, status]) => `${name}, ${status}\n`).join('')}`;
}

/** Swift's answer with the proxy's refusal of `path` (quoted as bulk quotes names) added. */
export function withRefusal(result: BulkResult, path: string, status: string, reason: string): BulkResult {
  return {
    ...result,
    status: '400 Bad Request',
    // "No Valid Files" when the refused file was the first: the refusal is the whole story.
    body: result.created === 0 && /No Valid Files/.test(result.body) ? reason : [result.body, reason].filter(Boolean).join('\n'),
    errors: [...result.errors, [quoteLikePython(path), status]],
  };
}

/** Python's `urllib.parse.quote(name)` (safe "/"), as bulk lists failed names. */
export function quoteLikePython(name: string): string {
  return encodeURIComponent(name).replace(/%2F/g, '/').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
