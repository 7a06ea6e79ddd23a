/**
 * Procedures shared by the server's failover and the CLI's switchover / add / setmaster:
 * the MySQL steps (fence, drain, catch up, promote, re-point), position gathering, and the
 * ZooKeeper writes (fencing route, the one master-change multi).
 */
export * from './connections';
export * from './positions';
export * from './promote';
export * from './drain';
export * from './commit';
export * from './switchover';
