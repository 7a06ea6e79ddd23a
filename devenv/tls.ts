import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { trackDir, untrackDir } from './reaper';

/**
 * Certificates for TLS tests, made with `openssl` (execFile, no shell) in a temp dir: a CA, a
 * server certificate for 127.0.0.1 and a client certificate, both signed by that CA.
 * EC P-256 keys (a few ms each, where RSA takes a second on this machine). Keys are 0600.
 */
export interface TestCertificates {
  readonly dir: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Removes the dir; idempotent. */
  remove(): void;
}

const execFileP = promisify(execFile);

async function openssl(args: readonly string[]): Promise<void> {
  await execFileP('openssl', args, { timeout: 30000 }).catch((err: Error & { stderr?: string }) => {
    throw new Error(`openssl ${args[0] ?? ''} failed: ${err.message}\n${err.stderr ?? ''}`);
  });
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A key and a certificate for `cn`, signed by the CA in `dir`, with the extensions given. */
async function signed(
  dir: string,
  name: string,
  serial: number,
  cn: string,
  extensions: string,
): Promise<void> {
  const f = (ext: string) => path.join(dir, `${name}.${ext}`);
  await openssl(['req', ...EC_KEY, '-keyout', f('key'), '-out', f('csr'), '-subj', `/CN=${cn}`]);
  fs.writeFileSync(f('ext'), extensions);
  await openssl([
    'x509',
    '-req',
    '-in',
    f('csr'),
    '-CA',
    path.join(dir, 'ca.pem'),
    '-CAkey',
    path.join(dir, 'ca.key'),
    // Distinct serials without -CAcreateserial's shared serial file (both are signed in parallel).
    '-set_serial',
    String(serial),
    '-days',
    '2',
    '-extfile',
    f('ext'),
    '-out',
    f('pem'),
  ]);
  fs.chmodSync(f('key'), 0o600);
}

/**
 * Makes a fresh CA with a server and a client certificate in a new temp dir (tracked by the
 * reaper). Each call is an independent CA: a second one is "a CA the server does not know".
 * `serverNames`: the server certificate's subjectAltName entries (default IP:127.0.0.1 only, where
 * the servers listen: a check against any other name, 'localhost' included, fails).
 */
export async function makeTestCertificates(
  opts: { readonly serverNames?: readonly string[] } = {},
): Promise<TestCertificates> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zkmha-tls-'));
  trackDir(dir);
  const remove = (): void => {
    fs.rmSync(dir, { recursive: true, force: true });
    untrackDir(dir);
  };
  try {
    await openssl([
      'req',
      '-x509',
      ...EC_KEY,
      '-keyout',
      path.join(dir, 'ca.key'),
      '-out',
      path.join(dir, 'ca.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=zkmha test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    fs.chmodSync(path.join(dir, 'ca.key'), 0o600);
    const names = opts.serverNames ?? ['IP:127.0.0.1'];
    await Promise.all([
      signed(
        dir,
        'server',
        2,
        'zkmha test server',
        `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=${names.join(',')}\n`,
      ),
      signed(
        dir,
        'client',
        3,
        'zkmha test client',
        'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n',
      ),
    ]);
  } catch (err) {
    remove();
    throw err;
  }
  return {
    dir,
    ca: path.join(dir, 'ca.pem'),
    serverCert: path.join(dir, 'server.pem'),
    serverKey: path.join(dir, 'server.key'),
    clientCert: path.join(dir, 'client.pem'),
    clientKey: path.join(dir, 'client.key'),
    remove,
  };
}
