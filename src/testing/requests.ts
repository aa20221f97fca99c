/**
 * What the test double received: one entry per request, in arrival order, completed when
 * the response is over (sent, cut off, or dropped). Credentials are redacted: an
 * `Authorization` header keeps its scheme (`Basic [redacted]`, `Token [redacted]`), cookies
 * are `[redacted]`. double-middleware.ts fills it.
 */
export interface RecordedRequest {
  method: string;
  /** Without the query string. */
  path: string;
  query: Record<string, string | string[]>;
  /** Request headers (names in lower case), credentials redacted. */
  headers: Record<string, string | string[]>;
  /** The status sent; 0 while the response is not over, or when the connection closed without one. */
  status: number;
  /** Request body bytes received. */
  bytesIn: number;
  /** Response body bytes sent (0 for HEAD, 204, 304). */
  bytesOut: number;
  /** A fault rule applied to this request (known once it is done). */
  fault: boolean;
  /** The response is over. */
  done: boolean;
}

/** The record: an array (filter, find, length, …) that `clear()` empties. */
export type RecordedRequests = RecordedRequest[] & { clear(): void };

export function recordedRequests(): RecordedRequests {
  const list: RecordedRequest[] = [];
  Object.defineProperty(list, 'clear', {
    value: () => {
      list.length = 0;
    },
  });
  return list as RecordedRequests;
}
