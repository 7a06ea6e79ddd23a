import type { z } from 'zod';
import { decodeRecord, encodeRecord } from '../records';
import type { Stat, Zk } from './client';

/**
 * Typed znode access: every read is validated by its record schema (BAD_RECORD naming the path
 * on any defect), every write is validated before it leaves the process.
 */
export interface Versioned<T> {
  readonly value: T;
  readonly stat: Stat;
}

/** Throws ZK_NO_NODE when missing, BAD_RECORD when the value is malformed. */
export async function readRecord<S extends z.ZodTypeAny>(
  zk: Zk,
  schema: S,
  path: string,
): Promise<Versioned<z.output<S>>> {
  const nd = await zk.get(path);
  return { value: decodeRecord(schema, nd.data, path), stat: nd.stat };
}

/** Null when missing; BAD_RECORD when malformed. */
export async function readRecordOrNull<S extends z.ZodTypeAny>(
  zk: Zk,
  schema: S,
  path: string,
): Promise<Versioned<z.output<S>> | null> {
  const nd = await zk.getOrNull(path);
  if (nd === null) return null;
  return { value: decodeRecord(schema, nd.data, path), stat: nd.stat };
}

/** Creates a persistent record; ZK_NODE_EXISTS if present. */
export function createRecord<S extends z.ZodTypeAny>(
  zk: Zk,
  schema: S,
  path: string,
  value: z.input<S>,
): Promise<string> {
  return zk.create(path, encodeRecord(schema, value, path), 'persistent');
}

/** Compare-and-set (version >= 0, 0 included) or unconditional (-1). */
export function setRecord<S extends z.ZodTypeAny>(
  zk: Zk,
  schema: S,
  path: string,
  value: z.input<S>,
  version: number,
): Promise<Stat> {
  return zk.set(path, encodeRecord(schema, value, path), version);
}
