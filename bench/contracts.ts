/**
 * The typed contract version of the three-step task, for the validation overhead figure: params,
 * every step result and the result are checked by Zod schemas at run time.
 */
import { z } from 'zod';
import { defineTask } from 'absurd-kit';
import { BENCH_QUEUE, TASK } from './settings.js';

const stepValue = z.object({ n: z.number().int(), ok: z.boolean() });

export const threeStepContract = defineTask({
  name: TASK.steps,
  queue: BENCH_QUEUE,
  params: z.object({ i: z.number().int() }),
  result: z.object({ i: z.number().int(), n: z.number().int() }),
  steps: { a: stepValue, b: stepValue, c: stepValue },
});
