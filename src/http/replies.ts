/**
 * Writes the proxy's own answers (quota/answers.ts words them per protocol): the one place they reach the client.
 */
import type { FastifyReply } from 'fastify';
import type { Reply } from '../quota/exchange.js';

export function sendReply(reply: FastifyReply, answer: Reply): void {
  reply.code(answer.status);
  for (const [name, value] of Object.entries(answer.headers)) reply.header(name, value);
  // The client may still be sending a body we will not read: close rather than drain it.
  if (!reply.request.raw.complete) reply.header('connection', 'close');
  reply.send(answer.body);
}
