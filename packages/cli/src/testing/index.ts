/**
 * `@absurd-kit/cli/testing`: test durable workflows on a real PostgreSQL, with time under the
 * test's control. Each test file (or test) gets a fresh database with the engine; nothing runs in
 * the background: due work runs in the test's process when the test says so, time moves only when
 * it says so, and tasks are read back typed by their contracts. Needs no particular test runner.
 *
 * @example
 * import { createTestEnvironment } from '@absurd-kit/cli/testing';
 *
 * const t = await createTestEnvironment();
 * const orders = await t.client('orders');
 * orders.registerTask(fulfillOrder, handleOrder);
 * const handle = await orders.spawn(fulfillOrder, { orderId: 'o-1', amount: 1999, items: ['sku-1'], email: 'a@example.com' });
 * await t.runUntilIdle();                       // runs until it waits for shipment.packed:o-1
 * await t.advance('1 day');
 * await orders.emitEvent(shipmentPacked, 'o-1', { trackingNumber: 'TRK-1' });
 * await t.runUntilIdle();
 * const order = await t.inspect(handle);        // typed by fulfillOrder
 * console.log(order.state, order.steps['process-payment']?.paymentId, order.result?.trackingNumber);
 * await t.close();
 */

// The environment: clients, clock, running, inspecting.
export { createTestEnvironment, TestEnvironment } from './test-environment.js';
export type { Log, RunUntilIdleOptions, TestClientOptions, TestEnvironmentOptions } from './test-environment.js';
export type { TaskRef } from './task-inspection.js';
export type {
  AbandonedRun,
  AwaitedEvent,
  ChildTask,
  EmittedEvent,
  FailureReason,
  InspectedRun,
  LogLine,
  RunOutcome,
  RunReport,
  StepResults,
  TaskInspection,
  TaskSummary,
} from './types.js';

// Time.
export { durationMs } from './duration.js';
export type { Duration } from './duration.js';
export type { TimeInput } from './test-clock.js';

// Databases and the server.
export { createTestDatabase } from './create-test-database.js';
export type { TestDatabaseOptions } from './create-test-database.js';
export { TestDatabase } from './test-database.js';
export { startTestServer } from './test-server.js';
export type { TestServer, TestServerOptions, TestServerSource } from './test-server.js';
