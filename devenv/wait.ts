/**
 * Await a condition instead of sleeping: polls `cond` until it returns a truthy value (which is
 * returned) or the timeout passes (then throws, naming `what` and the last error seen).
 */
export interface WaitOptions {
  readonly timeoutMs: number;
  /** Poll interval; default 25 ms. */
  readonly intervalMs?: number;
  /** What is awaited, for the error message. */
  readonly what?: string;
}

export async function waitFor<T>(cond: () => T | Promise<T>, opts: WaitOptions): Promise<NonNullable<T>> {
  const interval = opts.intervalMs ?? 25;
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v !== undefined && v !== null && v !== false && v !== 0 && v !== '') return v as NonNullable<T>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why =
        lastError instanceof Error
          ? `: last error: ${lastError.message}`
          : lastError !== undefined
            ? `: last error: ${String(lastError)}`
            : '';
      throw new Error(`waitFor ${opts.what ?? 'condition'} timed out after ${opts.timeoutMs} ms${why}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(interval, Math.max(1, deadline - Date.now()))));
  }
}
