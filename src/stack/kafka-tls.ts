import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { runCheckedAsync } from './process.js';

/**
 * The private broker's TLS material, for its SSL and SASL_SSL listeners (trying
 * KAFKA_SECURITY_PROTOCOL=ssl or sasl_ssl locally), made once per stack folder:
 * - the broker's identity: a self-signed certificate for 127.0.0.1 in a PKCS12 keystore (the JDK's
 *   keytool: Java is there for the broker anyway), and the same certificate as PEM for clients to
 *   trust (KAFKA_SSL_CA_LOCATION);
 * - a client identity for mutual TLS: a self-signed certificate and its unencrypted key as PEM
 *   (openssl; KAFKA_SSL_CERTIFICATE_LOCATION / KAFKA_SSL_KEY_LOCATION), and a PKCS12 truststore
 *   holding that certificate, which the SSL listener checks a client's certificate against (it
 *   requires one: `ssl.client.auth=required`; the SASL_SSL listener asks for none).
 * Local use only: the stores' password is fixed.
 */

export interface BrokerTls {
  keystore: string;
  /** What a client's certificate must chain to: the stack's client certificate itself. */
  truststore: string;
  password: string;
  /** The certificate clients trust: `<STACK_DIR>/kafka/tls/ca.pem`. */
  caPem: string;
}

const PASSWORD = 'engage-stack';

function tlsDir(stackDir: string): string {
  return path.join(stackDir, 'kafka', 'tls');
}

/** The PEM clients trust for the private broker's SSL listener (made by `ensureBrokerTls`). */
export function brokerCaPem(stackDir: string): string {
  return path.join(tlsDir(stackDir), 'ca.pem');
}

/** The client certificate and key the private broker's SSL listener accepts (made by `ensureBrokerTls`). */
export function stackClientIdentity(stackDir: string): { certificate: string; key: string } {
  return { certificate: path.join(tlsDir(stackDir), 'client.pem'), key: path.join(tlsDir(stackDir), 'client.key') };
}

export async function ensureBrokerTls(stackDir: string): Promise<BrokerTls> {
  const dir = tlsDir(stackDir);
  const keystore = path.join(dir, 'broker.p12');
  const truststore = path.join(dir, 'client-trust.p12');
  const caPem = brokerCaPem(stackDir);
  mkdirSync(dir, { recursive: true });
  if (!existsSync(keystore) || !existsSync(caPem)) {
    rmSync(keystore, { force: true });
    const store = ['-keystore', keystore, '-storetype', 'PKCS12', '-storepass', PASSWORD];
    await runCheckedAsync(
      'keytool',
      [
        '-genkeypair',
        '-alias',
        'broker',
        '-keyalg',
        'RSA',
        '-keysize',
        '2048',
        '-validity',
        '3650',
        '-dname',
        'CN=127.0.0.1',
        '-ext',
        'SAN=IP:127.0.0.1',
        '-keypass',
        PASSWORD,
        ...store,
      ],
      "Making the private broker's TLS certificate (keytool)",
    );
    await runCheckedAsync(
      'keytool',
      ['-exportcert', '-alias', 'broker', '-rfc', '-file', caPem, ...store],
      "Exporting the private broker's certificate (keytool)",
    );
  }
  const client = stackClientIdentity(stackDir);
  if (!existsSync(truststore) || !existsSync(client.certificate) || !existsSync(client.key)) {
    rmSync(truststore, { force: true });
    await runCheckedAsync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '3650',
        '-subj',
        '/CN=engage-client',
        '-keyout',
        client.key,
        '-out',
        client.certificate,
      ],
      "Making the private broker's client certificate (openssl)",
    );
    await runCheckedAsync(
      'keytool',
      [
        '-importcert',
        '-noprompt',
        '-alias',
        'engage-client',
        '-file',
        client.certificate,
        '-keystore',
        truststore,
        '-storetype',
        'PKCS12',
        '-storepass',
        PASSWORD,
      ],
      'Trusting the client certificate on the private broker (keytool)',
    );
  }
  return { keystore, truststore, password: PASSWORD, caPem };
}
