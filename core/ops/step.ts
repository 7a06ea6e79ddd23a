import { errorMessage, ZkmhaError } from '../errors';

// Named steps and refusals of the procedures the CLI runs (core/ops and cli/ share them): a failed
// step's error says which step, and the CLI prints it.

/**
 * Runs one named step of a command; a failure becomes "<step>: <reason>" with the original code
 * kept (so exit codes stay right), the form every failed command prints (exit 1).
 */
export async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ZkmhaError && err.details?.step !== undefined) throw err;
    const code = err instanceof ZkmhaError ? err.code : 'OPERATION_FAILED';
    throw new ZkmhaError(code, `${name}: ${errorMessage(err)}`, {
      ...(err instanceof ZkmhaError ? err.details : {}),
      step: name,
    });
  }
}

/** A refusal found while checking (the cluster is not as the command needs): exit 1, nothing changed. */
export function refuse(stepName: string, reason: string): ZkmhaError {
  return new ZkmhaError('CONFLICT', `${stepName}: ${reason}`, { step: stepName });
}
