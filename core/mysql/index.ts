import { ZkmhaError } from '../errors';
import type { Flavor, FlavorName } from './flavor';
import { galera } from './galera';
import { mariadb } from './mariadb';

export * from './connection';
export * from './flavor';
export { mariadb } from './mariadb';
export { galera, isRoutable, readGaleraState, type GaleraState } from './galera';

/** The implementation for a group's `flavor` (meta_group record). */
export function flavorFor(name: FlavorName): Flavor {
  switch (name) {
    case 'mariadb':
      return mariadb;
    case 'galera':
      return galera;
    case 'mysql':
      throw new ZkmhaError('OPERATION_FAILED', `flavor 'mysql' is not implemented yet (only 'mariadb')`);
    default: {
      const never: never = name;
      throw new ZkmhaError('BAD_RECORD', `unknown flavor '${String(never)}'`);
    }
  }
}
