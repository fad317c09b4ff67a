/**
 * The logger the core writes to: only what it calls. Fastify's logger (pino) has this shape, so the HTTP edge
 * (app.ts) hands `app.log` over as it is; the core never imports Fastify for it, and a test can pass a plain
 * object.
 */

/** One level: fields (`err` for an error) with a message, or a message alone. */
export interface LogMethod {
  (fields: object, message: string): void;
  (message: string): void;
}

export interface Log {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
}
