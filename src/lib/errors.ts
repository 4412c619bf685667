/**
 * The one error type lading raises for anything the user can act on.
 * `message` says what went wrong; `hint` says what to do about it. Entry points print both, without a stack.
 */
export class LadingError extends Error {
  override readonly name = 'LadingError';
  constructor(
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Message and hint as one line, as entry points print it. */
  describe(): string {
    return this.hint ? `${this.message} — ${this.hint}` : this.message;
  }
}

/** An error about one named input (an action input, a CLI flag, a config key). */
export class InputError extends LadingError {
  constructor(
    readonly input: string,
    problem: string,
    hint?: string,
  ) {
    super(`input '${input}': ${problem}`, hint);
  }
}

/** Turns anything thrown into the line a user should see. Unknown errors keep their message. */
export function describeError(err: unknown): string {
  if (err instanceof LadingError) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}
