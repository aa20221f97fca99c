/** Request bodies. Layers are never read here: they stream straight to the blob store. */
import type { Context, Next } from 'koa';
import { HttpMethodEnum, koaBody } from 'koa-body';
import { RegistryError } from '../domain/errors.js';

/** Reads a small body as exact bytes (image JSON must be kept byte-exact). */
export async function readRawBody(ctx: Context, limit: number): Promise<Buffer> {
  const declared = Number(ctx.get('Content-Length') || NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(limit: number): RegistryError {
  return new RegistryError('PAYLOAD_TOO_LARGE', `Request body larger than ${limit} bytes`);
}

/**
 * JSON bodies for the small v1 routes (tags, properties, image lists, users). They carry
 * JSON whatever Content-Type the client sent (curl -d sends a form type), and a bare JSON
 * string is valid (a tag's image id), so parsing is forced and non-strict.
 */
export function jsonBody(limit: number) {
  const parse = koaBody({
    json: true,
    jsonStrict: false,
    jsonLimit: limit,
    urlencoded: false,
    text: false,
    multipart: false,
    parsedMethods: [HttpMethodEnum.POST, HttpMethodEnum.PUT, HttpMethodEnum.PATCH, HttpMethodEnum.DELETE],
  });
  return async (ctx: Context, next: Next) => {
    ctx.request.headers['content-type'] = 'application/json';
    return parse(ctx, next);
  };
}
