import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { runCheckedAsync } from './process.js';

/**
 * The private broker's TLS identity, for its SSL listener (trying KAFKA_SECURITY_PROTOCOL=ssl
 * locally): a self-signed certificate for 127.0.0.1 in a PKCS12 keystore, made once per stack
 * folder with the JDK's keytool (Java is there for the broker anyway), and the same certificate
 * as PEM for clients to trust (KAFKA_SSL_CA_LOCATION). Local use only: the key's password is fixed.
 */

export interface BrokerTls {
  keystore: string;
  password: string;
  /** The certificate clients trust: `<STACK_DIR>/kafka/tls/ca.pem`. */
  caPem: string;
}

const PASSWORD = 'engage-stack';

/** The PEM clients trust for the private broker's SSL listener (made by `ensureBrokerTls`). */
export function brokerCaPem(stackDir: string): string {
  return path.join(stackDir, 'kafka', 'tls', 'ca.pem');
}

export async function ensureBrokerTls(stackDir: string): Promise<BrokerTls> {
  const dir = path.join(stackDir, 'kafka', 'tls');
  const keystore = path.join(dir, 'broker.p12');
  const caPem = brokerCaPem(stackDir);
  if (existsSync(keystore) && existsSync(caPem)) return { keystore, password: PASSWORD, caPem };
  mkdirSync(dir, { recursive: true });
  const store = ['-keystore', keystore, '-storetype', 'PKCS12', '-storepass', PASSWORD];
  await runCheckedAsync(
    'keytool',
    ['-genkeypair', '-alias', 'broker', '-keyalg', 'RSA', '-keysize', '2048', '-validity', '3650', '-dname', 'CN=127.0.0.1', '-ext', 'SAN=IP:127.0.0.1', '-keypass', PASSWORD, ...store],
    "Making the private broker's TLS certificate (keytool)",
  );
  await runCheckedAsync('keytool', ['-exportcert', '-alias', 'broker', '-rfc', '-file', caPem, ...store], "Exporting the private broker's certificate (keytool)");
  return { keystore, password: PASSWORD, caPem };
}
