// The body side of a model rewrite (GIE): the request body is sent on with
// `model` set to the target; every response chunk has the target's name put
// back to the one the client asked for (`"model":"<target>"`, also with a
// space after the colon), byte-wise so a UTF-8 character split across chunks
// stays intact. Like GIE, a name split across two chunks is not rewritten.

/** The request body with `model` replaced (other fields and their order kept). */
export function rewrittenRequestBody(body: Record<string, unknown>, target: string): Buffer {
  return Buffer.from(JSON.stringify({ ...body, model: target }), 'utf8');
}

function replaceAll(buf: Buffer, from: Buffer, to: Buffer): Buffer {
  let at = buf.indexOf(from);
  if (at < 0) return buf;
  const parts: Buffer[] = [];
  let off = 0;
  while (at >= 0) {
    parts.push(buf.subarray(off, at), to);
    off = at + from.length;
    at = buf.indexOf(from, off);
  }
  parts.push(buf.subarray(off));
  return Buffer.concat(parts);
}

export interface ResponseModelRestorer {
  (chunk: Buffer): Buffer;
}

/** Puts the client's model name back into response chunks; identity when nothing was rewritten. */
export function responseModelRestorer(target: string, incoming: string): ResponseModelRestorer {
  if (target === incoming) return (c) => c;
  const t = JSON.stringify(target);
  const i = JSON.stringify(incoming);
  const pairs = [`"model":${t}`, `"model": ${t}`].map(
    (f, k) => [Buffer.from(f), Buffer.from(k === 0 ? `"model":${i}` : `"model": ${i}`)] as const,
  );
  return (chunk) => {
    let out = chunk;
    for (const [from, to] of pairs) out = replaceAll(out, from, to);
    return out;
  };
}
