/**
 * The proxy's own answers, worded per protocol: Swift's text, or s3api's XML (s3response.py). Each sets the
 * exchange's reply and the decision the access log shows; the HTTP edge sends it (http/replies.ts), adding
 * `Connection: close` where the client is still sending a body the proxy will not read.
 */
import type { SwiftAnswer } from '../auth/authority.js';
import type { Metrics } from '../metrics.js';
import type { S3Error } from '../s3/signature.js';
import type { Denied } from './admission.js';
import type { Exchange } from './exchange.js';
import { rejectionResponse, type Rejection } from './responses.js';

/** Swift's answer to a path it does not know. */
export const NOT_FOUND: SwiftAnswer = Object.freeze({
  status: 404,
  headers: { 'content-type': 'text/html; charset=UTF-8' },
  body: Buffer.from('<html><h1>Not Found</h1><p>The resource could not be found.</p></html>'),
});

/** Swift's answer to a request whose If-Match the object does not meet. */
export const PRECONDITION_FAILED: SwiftAnswer = Object.freeze({
  status: 412,
  headers: { 'content-type': 'text/html; charset=UTF-8' },
  body: Buffer.from('<html><h1>Precondition Failed</h1><p>A precondition for this request was not met.</p></html>'),
});

/** Swift's answer to an upload announcing more than max_file_size (constraints.check_object_creation). */
export const TOO_LARGE: SwiftAnswer = Object.freeze({
  status: 413,
  headers: { 'content-type': 'text/plain' },
  body: Buffer.from('Your request is too large.'),
});

/** formpost's answer to a form it refuses, as it words it. */
export function formAnswer(status: 400 | 401, message: string): SwiftAnswer {
  return { status, headers: { 'content-type': 'text/plain' }, body: Buffer.from(`FormPost: ${message}`) };
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** An S3 error answer (s3response.py's XML). */
export function s3ErrorBody(error: S3Error, resource?: string): string {
  return `<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>${error.code}</Code><Message>${escapeXml(error.message)}</Message>${resource ? `<Resource>${escapeXml(resource)}</Resource>` : ''}</Error>`;
}

/** An S3 error, as s3api would answer it. */
export function answerS3(exchange: Exchange, error: S3Error, headers: Record<string, string> = {}): void {
  exchange.decision ??= `refused:${error.status}`;
  exchange.reply = { status: error.status, headers: { ...headers, 'content-type': 'application/xml' }, body: s3ErrorBody(error) };
}

/** Swift's own answer to the caller (a refusal it gave the proxy's question with the caller's credentials). */
export function answerSwift(exchange: Exchange, answer: SwiftAnswer): void {
  if (exchange.dialect === 's3') {
    // s3api turns Swift's refusals into its own: 401 → SignatureDoesNotMatch, 403 → AccessDenied, ...
    const code = answer.status === 401 ? 'SignatureDoesNotMatch' : answer.status === 403 ? 'AccessDenied' : answer.status === 404 ? 'NoSuchBucket' : answer.status === 412 ? 'PreconditionFailed' : 'InvalidRequest';
    return answerS3(exchange, { status: answer.status === 401 ? 403 : answer.status, code, message: answer.body.toString('utf8').replace(/<[^>]*>/g, ' ').trim() || code });
  }
  exchange.decision ??= `refused:${answer.status}`;
  exchange.reply = { status: answer.status, headers: answer.headers, body: answer.body };
}

/** The proxy refuses the request itself (`headers` first, as a Retry-After). */
export function refuse(exchange: Exchange, status: number, body: string, headers: Record<string, string> = {}): void {
  if (exchange.dialect === 's3') return answerS3(exchange, { status, code: status === 503 ? 'ServiceUnavailable' : status === 411 ? 'MissingContentLength' : 'InvalidRequest', message: body.trim() }, headers);
  exchange.decision ??= `refused:${status}`;
  exchange.reply = { status, headers: { ...headers, 'content-type': 'text/plain; charset=utf-8' }, body: body.endsWith('\n') ? body : `${body}\n` };
}

/** A quota refusal: counted, noted for the access log, and worded as Swift's own quota refusals are. */
export function reject(exchange: Exchange, metrics: Metrics, decision: Denied): void {
  exchange.decision = `rejected:${decision.kind}`;
  exchange.refusal = decision;
  metrics.rejections.inc({ kind: decision.kind, level: decision.level });
  const { status, body, headers } = rejectionResponse(decision as Rejection);
  if (exchange.dialect === 's3') {
    // As s3api words Swift's own quota refusals: EntityTooLarge for objects, TooManyBuckets for buckets.
    const code = decision.kind === 'container_count' ? 'TooManyBuckets' : 'EntityTooLarge';
    return answerS3(exchange, { status: 400, code, message: body.trim().replace(/\n/g, ' ') }, headers);
  }
  refuse(exchange, status, body, headers);
}
