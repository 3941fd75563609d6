/**
 * What the dashboard checks stored values against: the manifest's JSON Schemas, or the loaded
 * contracts' own validators (which also run refinements that JSON Schema cannot express).
 */
import { defineEvent, defineTask } from 'absurd-kit';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ContractSchemas, stepNameOf } from '../../packages/cli/src/dashboard/contract-schemas.js';
import { MANIFEST } from './fixtures.js';

describe('ContractSchemas', () => {
  const fromManifest = new ContractSchemas(MANIFEST);

  it('checks params, steps and event payloads against the manifest', async () => {
    await expect(fromManifest.checkParams('order-fulfillment', { orderId: 'A', amount: 3 })).resolves.toMatchObject({ status: 'valid', source: 'manifest' });
    const params = await fromManifest.checkParams('order-fulfillment', { orderId: 'A', amount: 0 });
    expect(params.status).toBe('invalid');
    expect(params.issues.join('\n')).toContain('amount');

    await expect(fromManifest.checkStep('order-fulfillment', 'process-payment#2', { paymentId: 'p' })).resolves.toMatchObject({ status: 'valid' });
    await expect(fromManifest.checkStep('order-fulfillment', 'process-payment', {})).resolves.toMatchObject({ status: 'invalid' });
    await expect(fromManifest.checkStep('order-fulfillment', 'not-declared', 1)).resolves.toMatchObject({ status: 'unchecked' });
    await expect(fromManifest.checkStep('unknown-task', 'process-payment', 1)).resolves.toMatchObject({ status: 'unchecked' });

    await expect(fromManifest.checkEvent('shipment.packed:A-1', { trackingNumber: 'T' })).resolves.toMatchObject({ status: 'valid' });
    await expect(fromManifest.checkEvent('shipment.packed:A-1', { trackingNumber: '' })).resolves.toMatchObject({ status: 'invalid' });
    await expect(fromManifest.checkEvent('other', {})).resolves.toMatchObject({ status: 'unchecked' });
    expect(fromManifest.eventTarget('shipment.packed:A-1')).toMatchObject({ contractName: 'shipment.packed', key: 'A-1' });
    expect(fromManifest.eventNames()).toEqual(['shipment.packed']);
    expect(fromManifest.taskNames()).toEqual(['order-fulfillment']);
  });

  it('does not take inherited keys for declared names', async () => {
    await expect(fromManifest.checkStep('order-fulfillment', 'constructor', 1)).resolves.toMatchObject({ status: 'unchecked' });
    expect(fromManifest.eventTarget('toString')).toEqual({});
  });

  it('prefers the loaded contracts, refinements included', async () => {
    const task = defineTask({
      name: 'order-fulfillment',
      queue: 'orders',
      params: z.object({ orderId: z.string().refine((id) => id.startsWith('A-'), 'order ids start with A-') }),
      result: z.object({ ok: z.boolean() }),
      steps: { 'process-payment': z.object({ paymentId: z.string() }) },
    });
    const event = defineEvent({ name: 'shipment.packed', payload: z.object({ trackingNumber: z.string() }) });
    const schemas = new ContractSchemas(MANIFEST, {
      tasks: new Map([[task.name, task]]),
      events: new Map([[event.name, event]]),
      schedules: new Map(),
      files: [],
    });
    const refused = await schemas.checkParams('order-fulfillment', { orderId: 'B-1' });
    expect(refused).toMatchObject({ status: 'invalid', source: 'contract' });
    expect(refused.issues).toEqual(['orderId: order ids start with A-']);
    await expect(schemas.checkStep('order-fulfillment', 'process-payment', { paymentId: 'p' })).resolves.toMatchObject({ status: 'valid', source: 'contract' });
    expect(schemas.eventTarget('shipment.packed:K').contract).toBe(event);
  });

  it('names the step of a repeated checkpoint', () => {
    expect(stepNameOf('charge#12')).toBe('charge');
    expect(stepNameOf('charge')).toBe('charge');
  });
});

describe('ContractSchemas.load', () => {
  it('reads no schemas from a missing manifest, and names a manifest that is not JSON', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(tmpdir(), 'absurd-manifest-'));
    const missing = await ContractSchemas.load(path.join(dir, 'missing.json'));
    await expect(missing.checkEvent('shipment.packed', {})).resolves.toMatchObject({ status: 'unchecked' });
    const broken = path.join(dir, 'manifest.json');
    await writeFile(broken, '{ not json');
    await expect(ContractSchemas.load(broken)).rejects.toMatchObject({ code: 'MANIFEST_UNREADABLE' });
  });
});
