/** Error kinds of the client that commands.ts maps to messages and exit codes. */

/** Bad command line: exit code 2 with the usage. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Content that is not what it claims to be (digests, sizes, ranges): never retried. */
export class IntegrityError extends Error {
  override name = 'IntegrityError';
}
