/**
 * Retries with exponential backoff and full jitter, for network calls that are safe to repeat. Pure: the clock
 * (`sleep`) and the dice (`random`) can be passed in; the defaults are setTimeout and Math.random.
 */

export interface RetryOptions {
  /** Attempts in all, the first included (≥ 1). */
  tries: number;
  /** The delay cap before the second attempt; it doubles each attempt (baseMs, 2·baseMs, 4·baseMs …). */
  baseMs: number;
  /** Upper bound of one delay. Default 30 s. */
  maxMs?: number;
  /** Whether an error is worth another attempt; anything else is thrown at once. */
  isRetryable: (err: unknown) => boolean;
  /** Called before each wait, e.g. to log "retrying in …". `attempt` is the attempt that failed (1-based). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/**
 * The wait after failed attempt `attempt` (1-based): half the exponential step plus a random half ("equal
 * jitter"), so concurrent clients spread out while every wait stays meaningful.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs = 30_000, random: () => number = Math.random) {
  const step = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `fn` until it succeeds, an error is not retryable, or `tries` attempts failed (the last error is thrown). */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const tries = Math.max(1, Math.floor(opts.tries));
  const sleep = opts.sleep ?? defaultSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= tries || !opts.isRetryable(err)) throw err;
      const delay = backoffDelay(attempt, opts.baseMs, opts.maxMs, opts.random);
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
