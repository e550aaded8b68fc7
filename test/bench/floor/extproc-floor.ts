// The protocol floor for the ext_proc benchmark: an ExternalProcessor that
// does only what Envoy needs from any FULL_DUPLEX_STREAMED processor, in the
// same runtime as the EPP (Node, @grpc/grpc-js, the same proto loading and
// server options): it keeps the request body chunks it receives (the Buffers
// as decoded, no copy), answers the request headers at end of body with a
// fixed destination header + envoy.lb metadata, echoes the chunks back as
// streamed_response, and passes the response through the same way. No
// parsing, no scheduling, no metrics. The EPP's cost above this is what
// routing costs; this process's cost is what any ext_proc server would pay.
//
// With --epp-codec it serializes its replies with the EPP's own serializer
// (src/extproc/reply-encoder.ts) instead of proto-loader's: the floor of a
// server as tuned as the EPP on the wire.
// With --transport http2 it runs on the EPP's lean gRPC transport
// (src/extproc/h2-transport.ts) instead of grpc-js's server, with the same
// handler: the floor to hold an EPP on that transport against.
//
//   node dist/test/bench/floor/extproc-floor.js --port N [--epp-codec] [--transport grpc-js|http2]
// prints "listening <port>" once bound.
import * as grpc from '@grpc/grpc-js';
import { LeanGrpcServer } from '../../../src/extproc/h2-transport.js';
import type { ExtProcCall } from '../../../src/extproc/server.js';
import { eppServiceDefinition, extProcServiceDefinition } from '../../../src/extproc/proto.js';
import type { ProcessingRequest, ProcessingResponse } from '../../../src/extproc/messages.js';
import { setHeader, toStruct } from '../../../src/extproc/messages.js';
import { BODY_CHUNK_BYTES } from '../../../src/extproc/replies.js';
import { splitStreamedBody } from '../../../src/extproc/reply-encoder.js';
import { DESTINATION_HEADER } from '../../../src/common/wire-headers.js';

const DESTINATION = '127.0.0.1:8000';

const HEADERS_REPLY: ProcessingResponse = {
  request_headers: {
    response: {
      header_mutation: { set_headers: [setHeader(DESTINATION_HEADER, DESTINATION)] },
      clear_route_cache: true,
    },
  },
  dynamic_metadata: toStruct({ 'envoy.lb': { [DESTINATION_HEADER]: DESTINATION } }),
};
const CONTINUE_RESPONSE_HEADERS: ProcessingResponse = { response_headers: { response: {} } };

function echo(phase: 'request_body' | 'response_body', body: Buffer, eos: boolean): ProcessingResponse {
  return { [phase]: { response: { body_mutation: { streamed_response: { body, end_of_stream: eos } } } } };
}

/** Writes the chunks back unchanged (split only where one exceeds Envoy's 64 KiB buffer). */
function echoAll(
  call: ExtProcCall,
  phase: 'request_body' | 'response_body',
  chunks: Buffer[],
  eos: boolean,
): void {
  if (chunks.length === 0) chunks = [Buffer.alloc(0)];
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i]!;
    const lastChunk = i === chunks.length - 1;
    if (c.length <= BODY_CHUNK_BYTES) {
      call.write(echo(phase, c, lastChunk && eos));
      continue;
    }
    for (let off = 0; off < c.length; off += BODY_CHUNK_BYTES) {
      const end = Math.min(off + BODY_CHUNK_BYTES, c.length);
      call.write(echo(phase, c.subarray(off, end), lastChunk && end === c.length && eos));
    }
  }
}

function onProcess(call: ExtProcCall): void {
  let body: Buffer[] = [];
  let answered = false;
  const answer = (eos: boolean) => {
    if (answered) return;
    answered = true;
    call.write(HEADERS_REPLY);
    echoAll(call, 'request_body', body, eos);
    body = [];
  };
  call.on('data', (m: ProcessingRequest) => {
    switch (m.request) {
      case 'request_headers':
        if (m.request_headers?.end_of_stream) {
          answered = true;
          call.write(HEADERS_REPLY);
        }
        return;
      case 'request_body': {
        const b = m.request_body!;
        if (b.body && b.body.length > 0) body.push(b.body);
        if (b.end_of_stream) answer(true);
        return;
      }
      case 'request_trailers':
        answer(false);
        call.write({ request_trailers: {} });
        return;
      case 'response_headers':
        call.write(CONTINUE_RESPONSE_HEADERS);
        return;
      case 'response_body': {
        const b = m.response_body!;
        echoAll(call, 'response_body', b.body && b.body.length > 0 ? [b.body] : [], b.end_of_stream === true);
        return;
      }
      case 'response_trailers':
        call.write({ response_trailers: {} });
        return;
      default:
        return;
    }
  });
  call.on('end', () => call.end());
  call.on('error', () => undefined);
}

function main(): void {
  const i = process.argv.indexOf('--port');
  const port = i >= 0 ? Number(process.argv[i + 1]) : 0;
  const t = process.argv.indexOf('--transport');
  const transport = t >= 0 ? process.argv[t + 1] : 'grpc-js';
  const eppCodec = process.argv.includes('--epp-codec');
  const definition = eppCodec ? eppServiceDefinition() : extProcServiceDefinition();
  // The EPP's own server options (src/epp/build.ts), at its default 16 MiB body limit.
  const maxReceive = 2 * 16 * 1024 * 1024 + 1024 * 1024;
  const fail = (e: Error) => {
    process.stderr.write(`extproc-floor: ${e.message}\n`);
    process.exit(1);
  };
  let stop: () => void;
  if (transport === 'http2') {
    const lean = new LeanGrpcServer({
      maxReceiveMessageBytes: maxReceive,
      keepaliveTimeMs: 30_000,
      keepaliveTimeoutMs: 10_000,
    });
    const method = definition.Process!;
    lean.addMethod<ProcessingRequest, ProcessingResponse>({
      path: method.path,
      deserialize: (b) => method.requestDeserialize(b) as ProcessingRequest,
      serialize: (m) => method.responseSerialize(m),
      // With the EPP's codec, its zero-copy body writes too (as ExtProcService.addToLean).
      ...(eppCodec
        ? { split: (m: ProcessingResponse, reserve: number) => splitStreamedBody(m, reserve, 4096) }
        : {}),
      handler: onProcess,
    });
    lean.listen(port, '127.0.0.1').then((bound) => process.stdout.write(`listening ${bound}\n`), fail);
    stop = () => lean.forceShutdown();
  } else {
    const server = new grpc.Server({
      'grpc.max_receive_message_length': maxReceive,
      'grpc.max_send_message_length': -1,
      'grpc.enable_channelz': 0,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
    });
    server.addService(definition, {
      Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => onProcess(call),
    });
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) fail(err);
      else process.stdout.write(`listening ${bound}\n`);
    });
    stop = () => server.forceShutdown();
  }
  process.on('SIGTERM', () => {
    stop();
    process.exit(0);
  });
}

main();
