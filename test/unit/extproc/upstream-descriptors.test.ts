// Proves proto/envoy/... against Envoy's real API: the FileDescriptorProtos
// embedded in go-control-plane's generated code (module directory in
// ENVOY_API_DIR, fetched and pinned by .ci/tools.sh). Every message, field,
// enum value and rpc we declare must exist upstream with the same number,
// type, label and oneof. A missing ENVOY_API_DIR fails every test by name;
// nothing is skipped.
import { basename } from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import {
  compareDescriptors,
  envoyApiDir,
  ourDescriptors,
  ourProtoFiles,
  upstreamDescriptors,
  type FieldDesc,
  type FileDesc,
  type MessageDesc,
} from './descriptor-diff.js';
import { extProcPackageDefinition } from '../../../src/extproc/proto.js';

interface Loaded {
  ours: FileDesc[];
  upstream: FileDesc[];
  source: string;
}
let loaded: Loaded | undefined;

/**
 * Both descriptor sets, read once. Called inside each test (not beforeAll) so
 * that a missing ENVOY_API_DIR fails every test with its message instead of
 * reporting them as skipped.
 */
function load(): Loaded {
  if (loaded) return loaded;
  const dir = envoyApiDir();
  loaded = {
    ours: ourDescriptors(),
    upstream: upstreamDescriptors(dir, ourProtoFiles()),
    source: basename(dir), // e.g. envoy@v1.40.0
  };
  return loaded;
}

/** Counts of what `files` declares, walked independently of the comparison. */
function declared(files: FileDesc[]) {
  const n = { messages: 0, fields: 0, enums: 0, enumValues: 0, methods: 0 };
  const message = (m: MessageDesc): void => {
    n.messages++;
    n.fields += m.field?.length ?? 0;
    m.nestedType?.forEach(message);
    m.enumType?.forEach((e) => ((n.enums += 1), (n.enumValues += e.value?.length ?? 0)));
  };
  for (const f of files) {
    f.messageType?.forEach(message);
    f.enumType?.forEach((e) => ((n.enums += 1), (n.enumValues += e.value?.length ?? 0)));
    f.service?.forEach((s) => (n.methods += s.method?.length ?? 0));
  }
  return n;
}

const clone = (files: FileDesc[]): FileDesc[] => structuredClone(files);
const file = (files: FileDesc[], name: string) => files.find((f) => f.name === name)!;
const message = (f: FileDesc, name: string) => f.messageType!.find((m) => m.name === name)!;
const field = (m: MessageDesc, name: string) => m.field!.find((x) => x.name === name)!;

const EXT_PROC = 'envoy/service/ext_proc/v3/external_processor.proto';
const BASE = 'envoy/config/core/v3/base.proto';
const MODE = 'envoy/extensions/filters/http/ext_proc/v3/processing_mode.proto';

describe(`proto/ against go-control-plane descriptors (ENVOY_API_DIR)`, () => {
  test('every .proto under proto/ is loaded by src/extproc/proto.ts and exists upstream', () => {
    const { ours, upstream } = load();
    expect(ours.map((f) => f.name)).toEqual(ourProtoFiles());
    expect(upstream.map((f) => [f.name, f.package])).toEqual(ours.map((f) => [f.name, f.package]));
  });

  test('the descriptors compared are the ones grpc-js serves (proto-loader definition)', () => {
    const { ours } = load();
    const def = extProcPackageDefinition();
    const seen: string[] = [];
    const visit = (scope: string, m: MessageDesc): void => {
      const fq = `${scope}.${m.name}`;
      if (m.options?.mapEntry) return; // proto-loader lists no map entry types
      seen.push(fq);
      const served = (def[fq] as { type?: MessageDesc } | undefined)?.type;
      expect(served, fq).toBeDefined();
      // proto-loader keeps type names relative and fills absent oneof indexes
      // with 0 (toObject defaults): name, number, type and label are comparable.
      const shape = (fields: FieldDesc[] = []) =>
        fields.map((f) => [f.name, f.number, f.type, f.label]).sort();
      expect(shape(served!.field), fq).toEqual(shape(m.field));
      m.nestedType?.forEach((n) => visit(fq, n));
    };
    for (const f of ours) f.messageType?.forEach((m) => visit(f.package!, m));
    expect(seen.length).toBeGreaterThan(20);
  });

  test('every message, field, enum value and rpc we declare matches upstream', () => {
    const { ours, upstream, source } = load();
    const report = compareDescriptors(ours, upstream);
    // Informational: what upstream has that we do not decode or send.
    console.info(
      `upstream (${source}) fields/values our proto omits (${report.omitted.length}):\n  ` +
        report.omitted.join('\n  '),
    );
    expect(report.mismatches, `mismatches against ${source}:\n${report.mismatches.join('\n')}`).toEqual([]);
    // Everything we declare was looked at (map entries included).
    expect(report.checked).toEqual(declared(ours));
    expect(report.checked.fields).toBeGreaterThan(60);
  });

  test('the comparison reports each kind of difference', () => {
    const { ours, upstream } = load();
    const bad = clone(ours);
    const ext = file(bad, EXT_PROC);
    field(message(ext, 'HttpBody'), 'end_of_stream').number = 9;
    field(message(ext, 'GrpcStatus'), 'status').type = 'TYPE_INT32';
    field(message(ext, 'HeadersResponse'), 'response').typeName = '.envoy.service.ext_proc.v3.BodyResponse';
    delete field(message(ext, 'BodyMutation'), 'clear_body').oneofIndex;
    message(ext, 'HttpBody').field = message(ext, 'HttpBody').field!.filter(
      (f) => f.name !== 'grpc_message_compressed',
    );
    message(ext, 'HttpTrailers').field!.push({
      name: 'extra',
      number: 1,
      label: 'LABEL_OPTIONAL',
      type: 'TYPE_BOOL',
    });
    message(ext, 'HttpTrailers').name = 'HttpTrailerz';
    ext.service![0]!.method![0]!.clientStreaming = false;
    const base = file(bad, BASE);
    field(message(base, 'HeaderMap'), 'headers').label = 'LABEL_OPTIONAL';
    message(base, 'Metadata').nestedType![0]!.options = {};
    const mode = message(file(bad, MODE), 'ProcessingMode');
    mode.enumType!.find((e) => e.name === 'BodySendMode')!.value!.find((v) => v.name === 'GRPC')!.number = 6;
    // A type moved to another file changes what importing it means.
    file(bad, BASE).messageType!.push(message(ext, 'GrpcStatus'));
    ext.messageType = ext.messageType!.filter((m) => m.name !== 'GrpcStatus');

    const report = compareDescriptors(bad, upstream);
    const P = '.envoy.service.ext_proc.v3';
    expect(report.mismatches).toHaveLength(9);
    expect(report.mismatches).toEqual(
      expect.arrayContaining([
        `field ${P}.HttpBody.end_of_stream: number is 9, upstream 2`,
        `field ${P}.HeadersResponse.response: type name is ${P}.BodyResponse, upstream ${P}.CommonResponse`,
        `field ${P}.BodyMutation.clear_body: oneof is (none), upstream mutation`,
        expect.stringMatching(/^message \.envoy\.service\.ext_proc\.v3\.HttpTrailerz: not defined upstream/),
        `method ${P}.ExternalProcessor.Process: client streaming is false, upstream true`,
        `field .envoy.config.core.v3.HeaderMap.headers: label is LABEL_OPTIONAL, upstream LABEL_REPEATED`,
        `message .envoy.config.core.v3.Metadata.FilterMetadataEntry: map entry false, upstream true`,
        `enum value .envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode.GRPC: number 6, upstream 5`,
        // GrpcStatus now sits in base.proto's package scope: not found there
        // under that name, which is reported; its field change is not reached.
        expect.stringMatching(/^message \.envoy\.config\.core\.v3\.GrpcStatus: not defined upstream/),
      ]),
    );
    expect(report.omitted).toContain(`field ${P}.HttpBody.grpc_message_compressed: bool = 4`);
  });

  test('a field renamed or a type moved between files is reported', () => {
    const { ours, upstream } = load();
    const bad = clone(ours);
    const ext = file(bad, EXT_PROC);
    field(message(ext, 'GrpcStatus'), 'status').type = 'TYPE_INT32';
    field(message(ext, 'HttpBody'), 'body').name = 'payload';
    // Same package, other file: the name resolves but the file differs.
    const moved = { ...bad.find((f) => f.name === EXT_PROC)!, name: 'envoy/service/ext_proc/v3/other.proto' };
    moved.messageType = [message(ext, 'GrpcStatus')];
    moved.service = [];
    ext.messageType = ext.messageType!.filter((m) => m.name !== 'GrpcStatus');
    bad.push(moved);

    const mismatches = compareDescriptors(bad, upstream).mismatches;
    expect(mismatches).toContain(
      'field .envoy.service.ext_proc.v3.HttpBody.payload (bytes = 1): no such field upstream; upstream number 1 is body (bytes = 1)',
    );
    expect(mismatches).toContain(
      `message .envoy.service.ext_proc.v3.GrpcStatus: we define it in envoy/service/ext_proc/v3/other.proto, upstream in ${EXT_PROC}`,
    );
    expect(mismatches).toContain(
      'field .envoy.service.ext_proc.v3.GrpcStatus.status: type is TYPE_INT32, upstream TYPE_UINT32',
    );
  });
});

describe('ENVOY_API_DIR', () => {
  afterEach(() => vi.unstubAllEnvs());

  test('missing or wrong, it fails with the way to get it', () => {
    vi.stubEnv('ENVOY_API_DIR', '');
    expect(() => envoyApiDir()).toThrow(/ENVOY_API_DIR is not set: run `source \.ci\/tools\.sh`/);
    vi.stubEnv('ENVOY_API_DIR', '/nonexistent/envoy@v0');
    expect(() => envoyApiDir()).toThrow(
      /ENVOY_API_DIR=\/nonexistent\/envoy@v0 holds no .*source \.ci\/tools\.sh/,
    );
  });
});
