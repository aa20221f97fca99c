/**
 * Text for HTML: `& < > " '` as numeric character references, so it is safe in element
 * content and quoted attributes (the web UI's pages and the OAuth consent page).
 */
const ESCAPES: Record<string, string> = { '&': '&#38;', '<': '&#60;', '>': '&#62;', '"': '&#34;', "'": '&#39;' };
const SPECIAL = /[&<>"']/g;
const HAS_SPECIAL = /[&<>"']/;

export function escapeHtml(text: string): string {
  // Most text has nothing to escape: no new string then.
  return HAS_SPECIAL.test(text) ? text.replace(SPECIAL, (c) => ESCAPES[c]) : text;
}
