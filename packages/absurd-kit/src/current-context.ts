/**
 * The task context of the current async scope, for code a handler calls that was not handed the
 * context (loggers, tracing).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { TaskContext } from './task-context.js';

const currentContext = new AsyncLocalStorage<TaskContext>();

/**
 * The context of the task running in the current async scope (handlers, and anything they call),
 * or undefined outside one.
 *
 * @example
 * function audit(message: string) {
 *   const ctx = getCurrentContext();
 *   console.log(ctx ? `[${ctx.taskID}] ${message}` : message);
 * }
 */
export function getCurrentContext(): TaskContext | undefined {
  return currentContext.getStore();
}

/** Runs `fn` with `ctx` as the current context (see {@link getCurrentContext}). */
export function runWithContext<T>(ctx: TaskContext, fn: () => T): T {
  return currentContext.run(ctx, fn);
}
