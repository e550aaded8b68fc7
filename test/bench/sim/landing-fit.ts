// Bench-only (branch pdstep): when a request's KV lands on its decode pod,
// learned from what a router sees, without the servers' constants. For a
// streamed request the router knows when it picked (t0), the prefill work
// ahead of it (x = prompt tokens + the prefill pod's pending tokens at the
// pick) and, from the decode pod's step clock, the boundary its first
// token's step started at (J, seen with the same chunk lag as the clock):
// the KV landed within the step before J, (J - T, J]. Requests whose
// decode pod was chosen by phase land just before their boundary by
// design, so only phase-blind ones (EXPLORE_EVERY-th request, decided by
// the product's rule) are samples: their landing is uniform in the step,
// y = J - T / 2 is unbiased. Fit y = c0 + c1 * x by least squares,
// exponentially weighted so that old samples fade (DECAY per sample). Samples with x > MAX_X tokens stay
// out: a chunked long prefill is not linear in the same constants.
export const DECAY = 0.99;
/** One request in this many is decided phase-blind and feeds the fit. */
export const EXPLORE_EVERY = 4;

/** Whether a simulated request (id `req-N`) is one of the phase-blind samples. */
export function explores(requestId: string): boolean {
  const n = Number(requestId.slice(requestId.lastIndexOf('-') + 1));
  return Number.isInteger(n) && n % EXPLORE_EVERY === 0;
}
export const MAX_X = 4096;
/** Samples before the fit is used. */
export const MIN_SAMPLES = 5;

export class LandingFit {
  private sw = 0;
  private sx = 0;
  private sy = 0;
  private sxx = 0;
  private sxy = 0;
  private n = 0;

  add(x: number, y: number): void {
    if (!(x >= 0 && x <= MAX_X) || !Number.isFinite(y)) return;
    this.sw = this.sw * DECAY + 1;
    this.sx = this.sx * DECAY + x;
    this.sy = this.sy * DECAY + y;
    this.sxx = this.sxx * DECAY + x * x;
    this.sxy = this.sxy * DECAY + x * y;
    this.n++;
  }

  /** Predicted y for x, or undefined before MIN_SAMPLES samples (or with no spread in x). */
  predict(x: number): number | undefined {
    if (this.n < MIN_SAMPLES) return undefined;
    const det = this.sw * this.sxx - this.sx * this.sx;
    if (!(det > 1e-9 * this.sw * this.sxx)) return undefined;
    const c1 = (this.sw * this.sxy - this.sx * this.sy) / det;
    const c0 = (this.sy - c1 * this.sx) / this.sw;
    return c0 + c1 * x;
  }
}
