/**
 * The S3 door (s3api): a request read as the Swift requests s3api makes of it, and each admitted as that Swift
 * request through the Swift door. The caller is the tempauth user whose access key signed it (`account:user`,
 * the key is the secret: the signature is checked as s3api checks it), or the owner of a Keystone EC2
 * credential (checked by Keystone as s3token has it checked: auth/ec2.ts); the proxy asks Swift with that
 * caller's own token.
 */
import { isIP } from 'node:net';
import type { Credentials } from '../../auth/authority.js';
import { s3tokenKeepsPath } from '../../auth/ec2.js';
import { accountOfUser, type TempauthUser } from '../../config/load.js';
import type { SwiftView } from '../../proxy/swift-view.js';
import { splitHostPort } from '../../swift/host-addressing.js';
import { SwiftQuery, type SwiftHeaders } from '../../swift/request.js';
import { DEFAULT_S3_CONFIG, s3Action, s3Address, SEGMENTS_SUFFIX, type S3Action } from '../../s3/request.js';
import { checkS3Signature, s3Credential, s3SignedString, SIGNATURE_MISMATCH, type S3SignedString, type SignedRequest } from '../../s3/signature.js';
import { requestIntent } from '../../quota/intent.js';
import { accountKey, containerKey } from '../../quota/ledger/ledger.js';
import type { QuotaCore } from '../../quota/core.js';
import type { Exchange } from '../../quota/exchange.js';
import { WritePath } from '../../quota/writes.js';
import { answerS3 } from '../../quota/answers.js';
import { STORING_METHODS, type DoorRequest } from '../door.js';
import { admitIntent } from '../swift/door.js';
import { admitS3Complete, admitS3Initiate } from './multipart.js';
import { turnsVersioningOn, VERSIONING_BODY_LIMIT } from '../../s3/versioning.js';

/** The request read as s3api reads it, up to its caller; undefined when it needs nothing (or has been answered). */
interface S3Read {
  readonly action: Exclude<S3Action, { kind: 'refuse' | 'pass' }>;
  /** Signed by a tempauth user (its key the secret, checked here already), or with a Keystone EC2 credential. */
  readonly signer: { readonly user: TempauthUser } | { readonly ec2: { readonly accessKey: string; readonly signed: S3SignedString } };
  readonly signed: SignedRequest;
}

export async function admitS3(core: QuotaCore, request: DoorRequest, query: string | undefined): Promise<void> {
  const read = readS3(core, request, query);
  if (!read) return;
  const { view } = request;
  const { action } = read;
  const caller = await callerOf(core, request.exchange, read.signer);
  if (!caller) return; // answered
  const { account, credentials } = caller;
  const as = (method: string, container: string, object: string | undefined, headers: SwiftHeaders, rawQuery?: string, copyRange?: number, framing = view.framing) =>
    new WritePath(core, request.exchange, swiftRequest(view, credentials, account, { method, container, object, headers, rawQuery, copyRange, framing }));
  switch (action.kind) {
    case 'bucket-create':
      return admitAs(as('PUT', action.bucket, undefined, view.headers), request);
    case 'bucket-update':
      return admitAs(as('POST', action.bucket, undefined, view.headers), request);
    case 'bucket-versioning': {
      // s3api reads the XML before it POSTs; the proxy reads the same bytes, sends them on, and decides by them.
      const read = await request.readBody(account, VERSIONING_BODY_LIMIT + 1);
      if (read === undefined) return; // answered: 503 past the buffer budget, 408 for a stalled body
      request.exchange.body = read.body;
      const enabled = turnsVersioningOn(read.head, read.complete) ? 'true' : 'false';
      return admitAs(as('POST', action.bucket, undefined, view.headers.with({ 'x-versions-enabled': enabled })), request);
    }
    case 'object-put': {
      if (!action.copy) return admitAs(as('PUT', action.container, action.object, view.headers), request);
      const from = `/${encodeURIComponent(action.copy.container)}/${action.copy.object.split('/').map(encodeURIComponent).join('/')}`;
      const versionQuery = action.copy.versionId === undefined ? undefined : `version-id=${encodeURIComponent(action.copy.versionId)}`;
      // s3api sends every x-amz-copy-source PUT with CONTENT_LENGTH 0, whatever body the client sent: Swift copies.
      const zeroBody = { contentLength: '0', transferEncoding: undefined };
      return admitAs(as('PUT', action.container, action.object, view.headers.with({ 'x-copy-from': from }), versionQuery, action.copyRange, zeroBody), request);
    }
    case 'initiate':
      return admitS3Initiate(as('PUT', `${action.bucket}${SEGMENTS_SUFFIX}`, undefined, view.headers), action.key);
    case 'complete':
      return admitS3Complete(as('PUT', action.bucket, action.key, view.headers), request, action.uploadId);
  }
}

/**
 * Reads the request as s3api will: its address, its action, its credential and signature. Requests s3api
 * answers itself before writing anything are answered so here when they would write (never passed on
 * uncounted); undefined for what needs nothing more.
 */
function readS3(core: QuotaCore, request: DoorRequest, query: string | undefined): S3Read | undefined {
  const { view, exchange } = request;
  const rawPath = pathOf(view.target);
  const host = view.upstream.get('host') ?? view.headers.get('host') ?? core.config.upstream.host;
  const writes = STORING_METHODS.has(view.method);
  if (!core.config.s3 && writes && isIP(splitHostPort(host).domain) === 0) {
    // s3api's storage_domain is not in /info: without its section, a host name may be a bucket's.
    return void answerS3(s3Dialect(exchange), { status: 501, code: 'NotImplemented', message: "S3 writes on a host name need Swift's [filter:s3api] section in the quota proxy's config (its storage_domain says which host names are buckets)." });
  }
  const s3Config = core.config.s3 ?? DEFAULT_S3_CONFIG;
  const address = s3Address(rawPath, host, s3Config);
  // s3api answers 400 InvalidURI itself; a write is answered so here, so that it never goes on uncounted.
  if (!address) return writes ? void answerS3(s3Dialect(exchange), { status: 400, code: 'InvalidURI', message: "Couldn't parse the specified URI." }) : undefined;
  const action = s3Action(view.method, address, query, view.headers, s3Config);
  if (action.kind === 'refuse') return void answerS3(s3Dialect(exchange), action.error);
  const header = (name: string) => view.headers.get(name);
  const signed: SignedRequest = { method: view.method, rawPath, decodedPath: address.decodedPath, query, rawHeaders: request.raw.rawHeaders, bucketInHost: address.bucketInHost };
  const credential = s3Credential(signed, header);
  if ('code' in credential) {
    // s3api answers it, before anything is written; a write is answered so here, never passed on uncounted.
    return action.kind === 'pass' ? undefined : void answerS3(s3Dialect(exchange), credential);
  }
  const user = s3User(core, credential.accessKey);
  if (action.kind === 'pass') {
    const account = user ? accountOfUser(user, core.config.resellerPrefix) : core.ec2?.projectOf(credential.accessKey);
    return void (action.shrinks && account && shrinks(exchange, account, action.shrinks.bucket));
  }
  exchange.dialect = 's3';
  if (!user) {
    // Access keys tempauth does not know are Keystone's EC2 credentials where Swift runs s3token.
    if (!core.ec2) return void answerS3(exchange, { status: 403, code: 'AccessDenied', message: 'The quota proxy counts S3 writes of tempauth users, and of Keystone EC2 credentials when its config has [filter:s3token]: this access key is neither.' });
    if (!s3tokenKeepsPath(credential.accessKey, swiftNames(action))) {
      return void answerS3(exchange, { status: 403, code: 'AccessDenied', message: "Swift's s3token would write this elsewhere than its bucket and key say (the access key has a '/' or is in the bucket or key's name): the quota proxy does not pass it on." });
    }
    const signedString = s3SignedString(signed, header, credential, s3Config, Date.now() / 1000);
    if ('code' in signedString) return void answerS3(exchange, signedString);
    return { action, signer: { ec2: { accessKey: credential.accessKey, signed: signedString } }, signed };
  }
  const error = checkS3Signature(signed, header, credential, user.key, s3Config, Date.now() / 1000);
  if (error) return void answerS3(exchange, error);
  return { action, signer: { user }, signed };
}

/**
 * The account the request writes in and the credentials the proxy asks Swift with on its caller's behalf: a
 * tempauth user's own token, or a Keystone EC2 credential's (checked by Keystone first: auth/ec2.ts). Undefined
 * when answered (Keystone does not accept the signature: s3api's SignatureDoesNotMatch).
 */
async function callerOf(core: QuotaCore, exchange: Exchange, signer: S3Read['signer']): Promise<{ account: string; credentials: Credentials } | undefined> {
  if ('user' in signer) {
    const { user } = signer;
    return { account: accountOfUser(user, core.config.resellerPrefix), credentials: { headers: { 'x-auth-token': await core.swift.userToken(user) }, key: `s3 ${user.account}:${user.user}` } };
  }
  const caller = await core.ec2!.caller(signer.ec2.accessKey, signer.ec2.signed);
  if (!caller) return void answerS3(exchange, SIGNATURE_MISMATCH);
  return { account: caller.account, credentials: { headers: { 'x-auth-token': caller.token }, key: `s3 ec2 ${signer.ec2.accessKey}` } };
}

/** The containers and objects (and upload) the Swift requests s3api makes for the action name: s3token rewrites them too. */
function swiftNames(action: S3Read['action']): string[] {
  switch (action.kind) {
    case 'bucket-create':
    case 'bucket-update':
    case 'bucket-versioning':
      return [action.bucket];
    case 'object-put':
      return [action.container, action.object];
    case 'initiate':
      return [action.bucket, `${action.bucket}${SEGMENTS_SUFFIX}`, action.key];
    case 'complete':
      return [action.bucket, `${action.bucket}${SEGMENTS_SUFFIX}`, action.key, action.uploadId];
  }
}

/** A delete of a bucket's objects: usage went down by what only Swift knows. */
function shrinks(exchange: Exchange, account: string, bucket: string): void {
  exchange.invalidates.push(containerKey(account, bucket), containerKey(account, `${bucket}${SEGMENTS_SUFFIX}`), accountKey(account));
  exchange.shrinks = { account };
}

function s3User(core: QuotaCore, accessKey: string): TempauthUser | undefined {
  // The key is bytes here and UTF-8 text to s3api: only ASCII keys name the same user on both sides.
  if (!/^[\x20-\x7e]*$/.test(accessKey)) return undefined;
  return core.config.users.find((user) => `${user.account}:${user.user}` === accessKey);
}

function pathOf(target: string): string {
  const at = target.indexOf('?');
  return at < 0 ? target : target.slice(0, at);
}

interface SwiftRequest {
  method: string;
  container: string;
  object: string | undefined;
  headers: SwiftHeaders;
  rawQuery: string | undefined;
  copyRange: number | undefined;
  framing: SwiftView['framing'];
}

/** The Swift request s3api makes: its path, the client's headers (s3api passes them on), no client query. */
function swiftRequest(view: SwiftView, credentials: Credentials, account: string, { method, container, object, headers, rawQuery, copyRange, framing }: SwiftRequest): SwiftView {
  const decoded = `/v1/${account}/${container}${object === undefined ? '' : `/${object}`}`;
  return {
    method,
    target: view.target,
    headers,
    path: { version: 'v1', account, container, ...(object === undefined ? {} : { object }), query: SwiftQuery.parse(rawQuery), decoded, rawQuery },
    framing,
    upstream: view.upstream,
    s3: { credentials, ...(copyRange !== undefined ? { copyRange } : {}) },
  };
}

/** Admits a Swift request s3api makes, as the Swift door would. */
async function admitAs(writes: WritePath, request: DoorRequest): Promise<void> {
  const { view } = writes;
  const intent = requestIntent({ method: view.method, path: view.path!, headers: view.headers, framing: view.framing });
  // A part, like a Swift object, is on its way until Swift answers (admitIntent marks it so): a completion
  // checked meanwhile reads it once it has landed.
  if (intent.type !== 'pass') await admitIntent(writes, request, intent);
}

/** The exchange, answered in S3's words from now on. */
function s3Dialect(exchange: Exchange): Exchange {
  exchange.dialect = 's3';
  return exchange;
}
