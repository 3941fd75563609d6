import { defineSchedule } from 'absurd-kit';
import { sendReceipt } from './orders.js';

/**
 * A canary of the receipt path: every morning at 06:00 Berlin time the shop sends itself a receipt
 * for a test order, so that a broken mail path shows up before customers notice. A late tick (no
 * worker on `receipts` at 06:00) is skipped: yesterday's canary is no news.
 */
export const receiptCanary = defineSchedule({
  name: 'receipt-canary',
  task: sendReceipt,
  cron: '0 6 * * *',
  timezone: 'Europe/Berlin',
  params: { orderId: 'canary', email: 'ops@example.com', amount: 1 },
  catchUp: 'skip',
  options: { maxAttempts: 1 },
});
