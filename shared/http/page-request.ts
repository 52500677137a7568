/**
 * A browser's own request for a page, not a script's or the HIS's (docs/console.md "Errors"): it
 * asks for HTML (`Accept: text/html`, as every browser's navigation does), and it is not a call of
 * an API path (`/api/…`) unless it is a page's form posted there (代码映射's forms post to
 * /api/codes). The console function answers its refusals to such a request as a page, and the
 * runtime its own on the console's port (docs/runtime.md "Hospital ports"): one rule for both.
 * The console's own scripts ask for JSON (`Accept: application/json`) or name no type, and keep the
 * JSON answer.
 */
export const FORM_POST = /^(application\/x-www-form-urlencoded|multipart\/form-data)/i;

const ACCEPTS_HTML = /\btext\/html\b/i;

export function isPageRequest(r: { accept: string | undefined; contentType: string | undefined; path: string }): boolean {
  return ACCEPTS_HTML.test(r.accept ?? '') && (!r.path.startsWith('/api/') || FORM_POST.test(r.contentType ?? ''));
}
