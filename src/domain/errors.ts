/**
 * Domain errors. Services throw these; they carry a stable `code` and a message meant for
 * the client, and know nothing of HTTP. Each HTTP face maps codes once: `src/http/shared/error-map.ts`
 * (v1, operations and the Hub double) and `src/http/v2/errors.ts` (the v2 envelope and codes).
 */
export type ErrorCode =
  | 'INVALID_NAME' // an id, namespace, repository or tag failed validation
  | 'INVALID_INPUT' // a body or header is malformed
  | 'NOT_FOUND'
  | 'IMAGE_INCOMPLETE' // the image exists but its upload has not been verified yet
  | 'ALREADY_EXISTS' // a completed image cannot be written again
  | 'UPLOAD_IN_PROGRESS' // another request is writing the same image right now
  | 'IN_USE' // still referenced (an image a tag reaches)
  | 'CHECKSUM_MISMATCH'
  | 'CHECKSUM_REQUIRED' // the client must send X-Docker-Checksum-Payload (pre-0.10 clients)
  | 'RANGE_NOT_SATISFIABLE'
  | 'PAYLOAD_TOO_LARGE'
  | 'REQUEST_TIMEOUT' // the client stopped sending a request body (upload_idle_timeout_seconds)
  | 'UNAUTHORIZED' // no or wrong credentials
  | 'FORBIDDEN' // known caller, not allowed
  | 'INACTIVE_ACCOUNT'
  | 'SIGNUP_DISABLED'
  | 'TOO_MANY_REQUESTS'
  | 'INSUFFICIENT_STORAGE'
  | 'UNAVAILABLE'
  // Registry API v2 (content-addressed blobs and manifests); each face maps them once.
  | 'BLOB_UNKNOWN' // no such blob in the repository
  | 'BLOB_UPLOAD_UNKNOWN' // no such upload session
  | 'BLOB_UPLOAD_INVALID' // the upload cannot go on (another request is writing it, a bad chunk)
  | 'DIGEST_INVALID' // a malformed digest, or content that does not hash to it
  | 'SIZE_INVALID' // a length that does not match the content
  | 'MANIFEST_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN' // a manifest names a blob or child manifest the repository lacks
  | 'NAME_UNKNOWN' // no such repository
  | 'UNSUPPORTED'; // an operation this registry does not do (schema 1 manifests, other digest algorithms)

export class RegistryError extends Error {
  readonly code: ErrorCode;
  /** Extra facts for the HTTP layer (e.g. the size of a blob for a 416). */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'RegistryError';
    this.code = code;
    this.details = details;
  }
}

export const invalidName = (message: string) => new RegistryError('INVALID_NAME', message);
export const invalidInput = (message: string) => new RegistryError('INVALID_INPUT', message);
export const notFound = (message: string) => new RegistryError('NOT_FOUND', message);

export function isRegistryError(err: unknown, code?: ErrorCode): err is RegistryError {
  return err instanceof RegistryError && (code === undefined || err.code === code);
}
