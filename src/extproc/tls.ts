// Server credentials for --secure-serving: <cert-path>/tls.crt + tls.key when
// given (as GIE's --cert-path), else a self-signed certificate made at start;
// gateways are configured to accept it (Istio: insecureSkipVerify).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generate } from 'selfsigned';

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  selfSigned: boolean;
}

export async function loadTlsMaterial(certPath: string | undefined): Promise<TlsMaterial> {
  if (certPath) {
    const crt = join(certPath, 'tls.crt');
    const key = join(certPath, 'tls.key');
    try {
      return { cert: readFileSync(crt), key: readFileSync(key), selfSigned: false };
    } catch (e) {
      throw new Error(`--cert-path ${certPath}: cannot read tls.crt and tls.key (${(e as Error).message})`);
    }
  }
  const pems = await generate([{ name: 'commonName', value: 'hermes-router-epp' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 365 * 24 * 3600 * 1000),
    extensions: [
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  return { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private), selfSigned: true };
}

export function serverCredentials(tls: TlsMaterial | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(null, [{ cert_chain: tls.cert, private_key: tls.key }], false);
}
