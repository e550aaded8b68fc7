// The ext_proc server transports (--extproc-transport), in a module of its
// own so that option parsing (src/epp/options.ts) loads no server code.
//   grpc-js: @grpc/grpc-js's server;
//   http2:   the lean gRPC transport on node:http2 (h2-transport.ts).
export const EXTPROC_TRANSPORTS = ['grpc-js', 'http2'] as const;
export type ExtProcTransport = (typeof EXTPROC_TRANSPORTS)[number];
