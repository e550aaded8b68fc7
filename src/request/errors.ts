// Client mistakes as values: an HTTP status, a message, the offending
// parameter, and the OpenAI-shaped error body every service answers with.

/** A client mistake, answered with `status` and an OpenAI-style error body. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param?: string,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/** The OpenAI error body for a status and message. */
export function openAIErrorBody(status: number, message: string, param?: string): string {
  const type =
    status === 400 || status === 413
      ? 'invalid_request_error'
      : status === 429
        ? 'rate_limit_error'
        : status >= 500
          ? 'server_error'
          : 'invalid_request_error';
  return JSON.stringify({ error: { message, type, param: param ?? null, code: status } });
}
