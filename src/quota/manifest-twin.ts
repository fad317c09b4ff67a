/**
 * A copy asked with `?multipart-manifest=get` of an object that is no SLO manifest copies the object's bytes.
 * Swift pins the copy to the ETag the proxy read, but the ETag of an SLO manifest read that way is the MD5 of
 * the manifest's stored text, which a plain object (or a DLO manifest's body) holding that very text
 * reproduces. If the source has become such a manifest by the time Swift copies it, the copy middleware reads
 * it `format=raw` (slo.py `convert_segment_listing`) and SLO stores a manifest of its own, rebuilt from the
 * segments as they are then: a few hundred bytes counted can be stored as far more (a segment's content type
 * grown meanwhile). This module turns the bytes the proxy read into the manifest SLO would then be given, so
 * that the copy is sized (and its segments pinned) as that manifest as well. Pure.
 */
import { PyNumber, pythonJson, pythonJsonText } from '../swift/python-readers.js';

/** The keys `convert_segment_listing` drops, and those it renames to the `multipart-manifest=put` format. */
const DROPPED = new Set(['content_type', 'last_modified', 'sub_slo']);
const RENAMED: Readonly<Record<string, string>> = { name: 'path', bytes: 'size_bytes', hash: 'etag' };

/**
 * The manifest SLO is given if `body` is what an SLO manifest read with `format=raw` has become; undefined where
 * it cannot be an SLO's stored manifest (not a JSON list of objects, as SLO always stores): then SLO would be
 * given `[]` or refuse the entries, and store nothing.
 */
export function manifestOfTwin(body: Buffer): Buffer | undefined {
  const text = pythonJsonText(body);
  const parsed = text === undefined ? undefined : pythonJson(text);
  if (!Array.isArray(parsed) || parsed.length === 0) return undefined;
  const converted: unknown[] = [];
  for (const item of parsed) {
    if (typeof item !== 'object' || item === null || Array.isArray(item) || item instanceof PyNumber) return undefined;
    const entry = item as Record<string, unknown>;
    if ('data' in entry) {
      converted.push(entry);
      continue;
    }
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(entry)) {
      if (DROPPED.has(key) || key in RENAMED) continue;
      out[key] = value;
    }
    // `seg_dict.pop('name', None)`: a missing key becomes null.
    for (const [from, to] of Object.entries(RENAMED)) out[to] = from in entry ? entry[from] : null;
    converted.push(out);
  }
  return Buffer.from(pythonJsonDump(converted), 'utf8');
}

/** JSON text of what pythonJson read, numbers written as they were. */
function pythonJsonDump(value: unknown): string {
  if (value instanceof PyNumber) return value.token;
  if (Array.isArray(value)) return `[${value.map(pythonJsonDump).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    const fields = Object.keys(value).sort().map((key) => `${JSON.stringify(key)}: ${pythonJsonDump((value as Record<string, unknown>)[key])}`);
    return `{${fields.join(', ')}}`;
  }
  return JSON.stringify(value);
}
