import { ZkmhaError } from '../errors';
import type { Flavor } from './flavor';
import { mariadb } from './mariadb';

export * from './connection';
export * from './flavor';
export { mariadb } from './mariadb';

/** The implementation for a group's `flavor` (meta_group record). */
export function flavorFor(name: 'mariadb' | 'mysql'): Flavor {
  switch (name) {
    case 'mariadb':
      return mariadb;
    case 'mysql':
      throw new ZkmhaError('OPERATION_FAILED', `flavor 'mysql' is not implemented yet (only 'mariadb')`);
    default: {
      const never: never = name;
      throw new ZkmhaError('BAD_RECORD', `unknown flavor '${String(never)}'`);
    }
  }
}
