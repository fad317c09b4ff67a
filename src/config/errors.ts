/**
 * A configuration problem found at start-up. The message always names the file, and the line and key
 * when the problem is tied to one, so an operator can go straight to it:
 *   proxy-server.conf:42: [filter:quota] quota: level "L1" of container_count must be a whole number >= 0
 */
export class ConfigError extends Error {
  readonly code = 'SQP_ERR_CONFIG';

  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly section: string | undefined,
    readonly key: string | undefined,
    readonly reason: string,
  ) {
    const where = line === undefined ? file : `${file}:${line}`;
    const what = [section === undefined ? '' : `[${section}]`, key ?? ''].filter(Boolean).join(' ');
    super(`${where}: ${what ? `${what}: ` : ''}${reason}`);
    this.name = 'ConfigError';
  }
}
