export { fulfillOrder, sendReceipt, shipmentPacked } from './orders.js';
