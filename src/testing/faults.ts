/**
 * Fault injection for the test double: rules matched on every request before routing, so
 * any route of any face (v1 registry, Index, Hub API, and Registry API v2)
 * can be made slow, failing or cut off mid-download, as a flaky network or an overloaded
 * registry would. The first rule (in the order they were added) that matches a request
 * applies to it; a rule with `times` is spent after that many requests.
 *
 *   delayMs                 waits first (then does what the rest of the rule says, or routes)
 *   drop: 'before-headers'  closes the connection without an answer
 *   status (+ body)         answers instead of the route (default body: a JSON error in the
 *                           face's shape: {"error"} v1, {"detail","message"} Hub, {"errors"} v2)
 *   drop: 'mid-body'        sends `afterBytes` body bytes (default 0: the head only) of the
 *                           answer (the route's, or the rule's status), then closes the connection
 *   headers                 set on the answer (the route's, or the rule's)
 *
 * The rules are plain data (a JSON file of them is what `registry serve --faults` reads);
 * double-middleware.ts applies them.
 */
import http from 'node:http';

export type FaultPath = string | RegExp | { regex: string; flags?: string };

export interface Fault {
  /** Any method when absent (case does not matter). */
  method?: string;
  /** The exact request path (no query), or a pattern tested against it; in JSON `{"regex": "…"}`. */
  path: FaultPath;
  status?: number;
  /** With `status`: the body (an object or array is sent as JSON). */
  body?: string | Uint8Array | object;
  headers?: Record<string, string>;
  delayMs?: number;
  drop?: 'before-headers' | 'mid-body';
  /** With `drop: 'mid-body'`: body bytes sent before the connection is closed (default 0). */
  afterBytes?: number;
  /** Applies to this many matching requests, then is spent (default: every one). */
  times?: number;
}

export interface FaultHandle {
  readonly fault: Readonly<Fault>;
  /** Requests the rule has applied to so far. */
  readonly hits: number;
  /** Applied `times` times: it no longer applies. */
  readonly spent: boolean;
  /** Stops the rule applying (requests it is applying to right now go on). */
  remove(): void;
}

interface Rule {
  fault: Fault;
  method: string | null;
  matches: (path: string) => boolean;
  hits: number;
  spent: boolean;
}

export class Faults {
  private rules: Rule[] = [];

  add(fault: Fault): FaultHandle {
    const rule: Rule = { fault: Object.freeze({ ...fault }), method: fault.method?.toUpperCase() ?? null, matches: matcher(fault), hits: 0, spent: false };
    validate(fault);
    this.rules.push(rule);
    return {
      fault: rule.fault,
      get hits() {
        return rule.hits;
      },
      get spent() {
        return rule.spent;
      },
      remove: () => {
        this.rules = this.rules.filter((r) => r !== rule);
      },
    };
  }

  clear(): void {
    this.rules = [];
  }

  /** The rule for this request, counted as applied; null when none matches. */
  take(method: string, path: string): Fault | null {
    const rule = this.rules.find((r) => (r.method === null || r.method === method) && r.matches(path));
    if (!rule) return null;
    rule.hits += 1;
    if (rule.fault.times !== undefined && rule.hits >= rule.fault.times) {
      rule.spent = true;
      this.rules = this.rules.filter((r) => r !== rule);
    }
    return rule.fault;
  }
}

function matcher(fault: Fault): (path: string) => boolean {
  const { path } = fault;
  if (typeof path === 'string') return (p) => p === path;
  if (path instanceof RegExp) return (p) => {
    path.lastIndex = 0;
    return path.test(p);
  };
  if (path && typeof path === 'object' && typeof path.regex === 'string') {
    const re = new RegExp(path.regex, path.flags);
    return (p) => re.test(p);
  }
  throw new TypeError('fault: `path` must be a path, a RegExp or {"regex": "…"}');
}

function validate(fault: Fault): void {
  const fail = (message: string): never => {
    throw new TypeError(`fault: ${message}`);
  };
  const count = (value: unknown) => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
  if (fault.method !== undefined && (typeof fault.method !== 'string' || !/^[A-Za-z]+$/.test(fault.method))) fail('`method` must be an HTTP method');
  if (fault.status !== undefined && !(Number.isInteger(fault.status) && fault.status >= 200 && fault.status <= 599)) fail('`status` must be an HTTP status from 200 to 599');
  if (fault.body !== undefined && fault.status === undefined) fail('`body` needs a `status`');
  if (fault.drop !== undefined && fault.drop !== 'before-headers' && fault.drop !== 'mid-body') fail("`drop` must be 'before-headers' or 'mid-body'");
  if (fault.afterBytes !== undefined && (fault.drop !== 'mid-body' || !count(fault.afterBytes))) fail("`afterBytes` is a byte count, with `drop: 'mid-body'`");
  if (fault.delayMs !== undefined && !count(fault.delayMs)) fail('`delayMs` must be a whole number of milliseconds');
  if (fault.times !== undefined && !(count(fault.times) && fault.times > 0)) fail('`times` must be a whole number above 0');
  for (const [name, value] of Object.entries(fault.headers ?? {})) {
    try {
      http.validateHeaderName(name);
      http.validateHeaderValue(name, value);
    } catch (err) {
      fail(`header ${JSON.stringify(name)}: ${(err as Error).message}`);
    }
  }
}
