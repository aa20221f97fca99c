/**
 * A scripted browser over plain HTTP: a cookie jar (name, value, Path; Set-Cookie
 * attributes honoured as far as a loopback test needs), redirects not followed (the test
 * reads each Location), and HTML forms filled and submitted the way a browser does (every
 * named input with its value, plus the button that was pressed).
 */

export interface Page {
  url: string;
  status: number;
  headers: Headers;
  html: string;
  /** The Location of a redirect, resolved against the request's URL. */
  location: string | null;
}

export interface FormField {
  name: string;
  value: string;
  type: string;
}

export interface ParsedForm {
  action: string;
  method: string;
  fields: FormField[];
  buttons: FormField[];
}

interface Cookie {
  value: string;
  path: string;
}

const ENTITY = /&(#\d+|#x[0-9a-f]+|amp|lt|gt|quot|apos);/gi;

export function decodeHtml(text: string): string {
  return text.replace(ENTITY, (_, e: string) => {
    const lower = e.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(Number(lower.slice(1)));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[lower] as string;
  });
}

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    out[m[1].toLowerCase()] = decodeHtml(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/** The forms of a page: action (absolute), method, inputs and submit buttons. */
export function parseForms(page: Page): ParsedForm[] {
  const forms: ParsedForm[] = [];
  for (const m of page.html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = attributes(m[1]);
    const fields: FormField[] = [];
    const buttons: FormField[] = [];
    for (const input of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const a = attributes(input[1]);
      if (a.name) fields.push({ name: a.name, value: a.value ?? '', type: (a.type ?? 'text').toLowerCase() });
    }
    for (const button of m[2].matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
      const a = attributes(button[1]);
      if ((a.type ?? 'submit').toLowerCase() === 'submit') buttons.push({ name: a.name ?? '', value: a.value ?? '', type: decodeHtml(button[2].trim()) });
    }
    forms.push({ action: new URL(attrs.action || page.url, page.url).href, method: (attrs.method || 'get').toUpperCase(), fields, buttons });
  }
  return forms;
}

export class Browser {
  private readonly jar = new Map<string, Cookie>();

  /** Cookie names and values the browser holds (for assertions). */
  get cookies(): ReadonlyMap<string, Cookie> {
    return this.jar;
  }

  async open(url: string, init: { method?: string; body?: URLSearchParams } = {}): Promise<Page> {
    const target = new URL(url);
    const headers = new Headers({ Accept: 'text/html' });
    const cookie = [...this.jar].filter(([, c]) => target.pathname.startsWith(c.path)).map(([name, c]) => `${name}=${c.value}`).join('; ');
    if (cookie) headers.set('Cookie', cookie);
    if (init.body) headers.set('Content-Type', 'application/x-www-form-urlencoded');
    const res = await fetch(target, { method: init.method ?? 'GET', headers, body: init.body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) this.store(line, target);
    const location = res.headers.get('location');
    return { url: target.href, status: res.status, headers: res.headers, html: await res.text(), location: location ? new URL(location, target).href : null };
  }

  /**
   * Submits the page's form as a person would: the form's fields with `values` typed in
   * (every field named in `values` must exist), by pressing the submit button whose text
   * contains `button`.
   */
  async submit(page: Page, values: Record<string, string>, button: string): Promise<Page> {
    const form = parseForms(page)[0];
    if (!form) throw new Error(`no form on ${page.url}`);
    const body = new URLSearchParams();
    for (const name of Object.keys(values)) if (!form.fields.some((f) => f.name === name)) throw new Error(`no field ${name} in the form`);
    for (const field of form.fields) body.append(field.name, values[field.name] ?? field.value);
    const pressed = form.buttons.find((b) => b.type.includes(button));
    if (!pressed) throw new Error(`no button "${button}" in the form (buttons: ${form.buttons.map((b) => b.type).join(', ')})`);
    if (pressed.name) body.append(pressed.name, pressed.value);
    return this.open(form.action, { method: form.method, body });
  }

  private store(line: string, url: URL): void {
    const [pair, ...attrs] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let path = url.pathname.replace(/\/[^/]*$/, '/') || '/';
    let expired = false;
    for (const attr of attrs) {
      const [k, v = ''] = attr.trim().split('=');
      if (k.toLowerCase() === 'path') path = v || '/';
      if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) expired = true;
    }
    if (expired || value === '') this.jar.delete(name);
    else this.jar.set(name, { value, path });
  }
}
