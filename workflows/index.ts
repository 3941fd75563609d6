export { fulfillOrder, sendReceipt, shipmentPacked } from './orders.js';
export { receiptCanary } from './schedules.js';
