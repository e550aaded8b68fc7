// Loads the project's own ext_proc protos (proto/envoy/...) with
// @grpc/proto-loader, once per process. Conventions used everywhere in
// src/extproc: field names as in the .proto (keepCase), enums as their names,
// 64-bit integers as strings, bytes as Buffers, oneofs report the set member
// under the oneof's name (e.g. `msg.request === 'request_body'`).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { replySerializer } from './reply-encoder.js';
import { requestDeserializer } from './request-decoder.js';

import { EXT_PROC_SERVICE } from '../common/wire-headers.js';

export { EXT_PROC_SERVICE };
export const EXT_PROC_PROTO = 'envoy/service/ext_proc/v3/external_processor.proto';

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
};

/** The proto/ directory, found by walking up from this module (src/ or dist/src/). */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, EXT_PROC_PROTO))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`cannot find proto/${EXT_PROC_PROTO} above ${fileURLToPath(import.meta.url)}`);
}

let cachedDefinition: protoLoader.PackageDefinition | undefined;

export function extProcPackageDefinition(): protoLoader.PackageDefinition {
  cachedDefinition ??= protoLoader.loadSync(EXT_PROC_PROTO, { ...LOADER_OPTIONS, includeDirs: [protoDir()] });
  return cachedDefinition;
}

/** The service definition to hand to grpc.Server.addService. */
export function extProcServiceDefinition(): grpc.ServiceDefinition {
  return extProcPackageDefinition()[EXT_PROC_SERVICE] as grpc.ServiceDefinition;
}

let cachedEppDefinition: grpc.ServiceDefinition | undefined;

/**
 * The service definition the EPP serves: the stock one with the EPP's reply
 * serializer (reply-encoder.ts: streamed body chunks and the routed header
 * reply written by hand into a reused buffer, which grpc-js copies at once)
 * and request deserializer (request-decoder.ts: the gateway's usual messages
 * read by hand into the objects the stock decoder gives). Same bytes on the
 * wire, same objects.
 */
export function eppServiceDefinition(): grpc.ServiceDefinition {
  if (!cachedEppDefinition) {
    const stock = extProcServiceDefinition();
    const process = stock.Process!;
    cachedEppDefinition = {
      ...stock,
      Process: {
        ...process,
        requestDeserialize: requestDeserializer(process.requestDeserialize),
        responseSerialize: replySerializer(process.responseSerialize as (m: object) => Buffer),
      },
    };
  }
  return cachedEppDefinition;
}

/** A generated client constructor for ExternalProcessor. */
export function extProcClientConstructor(): grpc.ServiceClientConstructor {
  const pkg = grpc.loadPackageDefinition(extProcPackageDefinition()) as unknown as {
    envoy: { service: { ext_proc: { v3: { ExternalProcessor: grpc.ServiceClientConstructor } } } };
  };
  return pkg.envoy.service.ext_proc.v3.ExternalProcessor;
}

/**
 * The wire codec grpc-js uses for the EPP's Process stream (for tests and
 * tools). encodeResponse is the EPP's serializer, copied out of its reused
 * buffer (grpc-js copies it itself); stockEncodeResponse is proto-loader's.
 * decodeRequest is the EPP's deserializer, stockDecodeRequest proto-loader's.
 */
export function processCodec(): {
  encodeRequest(msg: object): Buffer;
  decodeRequest(buf: Buffer): unknown;
  stockDecodeRequest(buf: Buffer): unknown;
  encodeResponse(msg: object): Buffer;
  stockEncodeResponse(msg: object): Buffer;
  decodeResponse(buf: Buffer): unknown;
} {
  const method = eppServiceDefinition().Process!;
  const stock = extProcServiceDefinition().Process!;
  return {
    encodeRequest: (m) => method.requestSerialize(m),
    decodeRequest: (b) => method.requestDeserialize(b),
    stockDecodeRequest: (b) => stock.requestDeserialize(b),
    encodeResponse: (m) => Buffer.from(method.responseSerialize(m)),
    stockEncodeResponse: (m) => stock.responseSerialize(m),
    decodeResponse: (b) => method.responseDeserialize(b),
  };
}
