import { runRouter } from '../router/main';

/** `node dist/bench/router-proc.js <config>`: the router agent in its own process for benchmarks. */
runRouter(process.argv[2]).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`router: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
