// Compares the project's ext_proc protos (proto/envoy/..., as loaded at run
// time by src/extproc/proto.ts) with Envoy's own descriptors, taken from the
// generated Go code of github.com/envoyproxy/go-control-plane/envoy
// (.ci/tools.sh exports its module directory as ENVOY_API_DIR).
// Direction: everything WE declare must exist upstream with the same wire
// meaning; upstream fields we leave out are only listed.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { EXT_PROC_PROTO, LOADER_OPTIONS, protoDir } from '../../../src/extproc/proto.js';
import { extractRawDesc } from './go-raw-desc.js';

// Plain-object shapes of google.protobuf.*DescriptorProto as decoded with
// toObject({enums: String}): only the members compared here.
export interface FieldDesc {
  name: string;
  number: number;
  label?: string;
  type?: string;
  typeName?: string;
  oneofIndex?: number;
  proto3Optional?: boolean;
}
export interface EnumDesc {
  name: string;
  value?: { name: string; number: number }[];
}
export interface MessageDesc {
  name: string;
  field?: FieldDesc[];
  nestedType?: MessageDesc[];
  enumType?: EnumDesc[];
  oneofDecl?: { name: string }[];
  options?: { mapEntry?: boolean };
  reservedRange?: { start: number; end: number }[];
  reservedName?: string[];
}
export interface MethodDesc {
  name: string;
  inputType?: string;
  outputType?: string;
  clientStreaming?: boolean;
  serverStreaming?: boolean;
}
export interface ServiceDesc {
  name: string;
  method?: MethodDesc[];
}
export interface FileDesc {
  name: string;
  package?: string;
  messageType?: MessageDesc[];
  enumType?: EnumDesc[];
  service?: ServiceDesc[];
}

export function decodeFileDescriptor(bytes: Uint8Array): FileDesc {
  const msg = descriptor.FileDescriptorProto.decode(bytes);
  return descriptor.FileDescriptorProto.toObject(msg, { enums: String }) as unknown as FileDesc;
}

/** Paths of our .proto files relative to proto/, e.g. envoy/type/v3/http_status.proto. */
export function ourProtoFiles(root = protoDir()): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.proto')) found.push(relative(root, path).split(sep).join('/'));
    }
  };
  walk(join(root, 'envoy'));
  return found.sort();
}

/**
 * Our descriptors, from the protobufjs reflection objects of proto/ loaded
 * the way src/extproc/proto.ts loads them (same entry file, include dir and
 * keepCase). proto-loader's own fileDescriptorProtos are not used: they keep
 * type names relative as written and name map entries after the field, so
 * they differ from protoc output for reasons that never reach the wire.
 * google.protobuf.* (protobufjs's bundled well-known types) is left out.
 */
export function ourDescriptors(root = protoDir()): FileDesc[] {
  const pb = new protobuf.Root();
  pb.resolvePath = (_origin, target) => (isAbsolute(target) ? target : join(root, target));
  pb.loadSync(EXT_PROC_PROTO, { keepCase: LOADER_OPTIONS.keepCase });
  pb.resolveAll();

  const files = new Map<string, FileDesc>();
  const fileOf = (obj: protobuf.ReflectionObject): FileDesc => {
    const name = relative(root, obj.filename ?? '?')
      .split(sep)
      .join('/');
    let file = files.get(name);
    if (!file) {
      const pkg = obj.parent?.fullName.replace(/^\./, '') ?? '';
      file = { name, package: pkg, messageType: [], enumType: [], service: [] };
      files.set(name, file);
    }
    return file;
  };
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj.fullName.startsWith('.google.protobuf.')) continue;
      if (obj instanceof protobuf.Type) fileOf(obj).messageType!.push(messageOf(obj));
      else if (obj instanceof protobuf.Enum) fileOf(obj).enumType!.push(enumOf(obj));
      else if (obj instanceof protobuf.Service) fileOf(obj).service!.push(serviceOf(obj));
      else if (obj instanceof protobuf.Namespace) visit(obj);
    }
  };
  visit(pb);
  return [...files.values()].sort((a, b) => a.name.localeCompare(b.name));
}

const SCALARS = new Set([
  'double',
  'float',
  'int64',
  'uint64',
  'int32',
  'fixed64',
  'fixed32',
  'bool',
  'string',
  'bytes',
  'uint32',
  'sfixed32',
  'sfixed64',
  'sint32',
  'sint64',
]);

/** type / typeName of a field whose protobufjs type is `type`, resolved to `resolved`. */
function typeOf(
  type: string,
  resolved: protobuf.Type | protobuf.Enum | null,
): Pick<FieldDesc, 'type' | 'typeName'> {
  if (resolved instanceof protobuf.Type) return { type: 'TYPE_MESSAGE', typeName: resolved.fullName };
  if (resolved instanceof protobuf.Enum) return { type: 'TYPE_ENUM', typeName: resolved.fullName };
  if (!SCALARS.has(type)) throw new Error(`unresolved type ${type}`);
  return { type: `TYPE_${type.toUpperCase()}` };
}

/** protoc's map entry name: field `filter_metadata` -> `FilterMetadataEntry`. */
function mapEntryName(field: string): string {
  return field.replace(/(?:^|_)([a-z0-9])/gi, (_m, c: string) => c.toUpperCase()) + 'Entry';
}

function messageOf(type: protobuf.Type): MessageDesc {
  const oneofs = type.oneofsArray.filter(
    (o) => !o.fieldsArray.every((f) => f.options?.proto3_optional === true),
  );
  const msg: MessageDesc = {
    name: type.name,
    field: [],
    nestedType: [],
    enumType: [],
    oneofDecl: oneofs.map((o) => ({ name: o.name })),
    reservedRange: [],
    reservedName: [],
  };
  for (const f of type.fieldsArray) {
    const desc: FieldDesc = {
      name: f.name,
      number: f.id,
      label: f.repeated ? 'LABEL_REPEATED' : 'LABEL_OPTIONAL',
    };
    if (f.required) desc.label = 'LABEL_REQUIRED';
    if (f instanceof protobuf.MapField) {
      // A map is a repeated message field of a synthesized entry type.
      const entry = mapEntryName(f.name);
      msg.nestedType!.push({
        name: entry,
        options: { mapEntry: true },
        field: [
          { name: 'key', number: 1, label: 'LABEL_OPTIONAL', ...typeOf(f.keyType, null) },
          { name: 'value', number: 2, label: 'LABEL_OPTIONAL', ...typeOf(f.type, f.resolvedType) },
        ],
      });
      Object.assign(desc, {
        label: 'LABEL_REPEATED',
        type: 'TYPE_MESSAGE',
        typeName: `${type.fullName}.${entry}`,
      });
    } else {
      Object.assign(desc, typeOf(f.type, f.resolvedType));
    }
    if (f.options?.proto3_optional === true) desc.proto3Optional = true;
    else if (f.partOf) desc.oneofIndex = oneofs.indexOf(f.partOf);
    msg.field!.push(desc);
  }
  for (const r of type.reserved ?? []) {
    if (typeof r === 'string') msg.reservedName!.push(r);
    else msg.reservedRange!.push({ start: r[0]!, end: r[1]! + 1 }); // descriptor ranges end exclusive
  }
  for (const obj of type.nestedArray) {
    if (obj instanceof protobuf.Type) msg.nestedType!.push(messageOf(obj));
    else if (obj instanceof protobuf.Enum) msg.enumType!.push(enumOf(obj));
  }
  return msg;
}

function enumOf(e: protobuf.Enum): EnumDesc {
  return { name: e.name, value: Object.entries(e.values).map(([name, number]) => ({ name, number })) };
}

function serviceOf(s: protobuf.Service): ServiceDesc {
  return {
    name: s.name,
    method: s.methodsArray.map((m) => ({
      name: m.name,
      inputType: m.resolvedRequestType?.fullName,
      outputType: m.resolvedResponseType?.fullName,
      clientStreaming: !!m.requestStream,
      serverStreaming: !!m.responseStream,
    })),
  };
}

/** The go-control-plane .pb.go that carries `envoy/<path>.proto`. */
export function pbGoPath(envoyApiDir: string, protoFile: string): string {
  if (!protoFile.startsWith('envoy/')) throw new Error(`not an envoy/ proto: ${protoFile}`);
  return join(envoyApiDir, protoFile.slice('envoy/'.length).replace(/\.proto$/, '.pb.go'));
}

/** Upstream descriptors of the same files as ours, read from ENVOY_API_DIR. */
export function upstreamDescriptors(envoyApiDir: string, protoFiles: string[]): FileDesc[] {
  return protoFiles.map((file) => {
    const goFile = pbGoPath(envoyApiDir, file);
    if (!existsSync(goFile)) throw new Error(`${goFile} is missing: upstream has no ${file}?`);
    const desc = decodeFileDescriptor(extractRawDesc(readFileSync(goFile, 'utf8'), goFile));
    if (desc.name !== file) throw new Error(`${goFile} describes ${desc.name}, expected ${file}`);
    return desc;
  });
}

export interface DiffReport {
  /** Differences in anything we declare: each one is a wire incompatibility. */
  mismatches: string[];
  /** Upstream fields/values of the types we use that our proto leaves out. */
  omitted: string[];
  checked: { messages: number; fields: number; enums: number; enumValues: number; methods: number };
}

type Indexed =
  | { kind: 'message'; desc: MessageDesc; file: string }
  | { kind: 'enum'; desc: EnumDesc; file: string }
  | { kind: 'service'; desc: ServiceDesc; file: string };

const dotted = (name: string | undefined): string => (!name ? '' : name.startsWith('.') ? name : `.${name}`);

function indexFiles(files: FileDesc[]): Map<string, Indexed> {
  const index = new Map<string, Indexed>();
  const addEnum = (scope: string, e: EnumDesc, file: string) =>
    index.set(`${scope}.${e.name}`, { kind: 'enum', desc: e, file });
  const addMessage = (scope: string, m: MessageDesc, file: string) => {
    const fq = `${scope}.${m.name}`;
    index.set(fq, { kind: 'message', desc: m, file });
    for (const n of m.nestedType ?? []) addMessage(fq, n, file);
    for (const e of m.enumType ?? []) addEnum(fq, e, file);
  };
  for (const f of files) {
    const scope = dotted(f.package);
    for (const m of f.messageType ?? []) addMessage(scope, m, f.name);
    for (const e of f.enumType ?? []) addEnum(scope, e, f.name);
    for (const s of f.service ?? [])
      index.set(`${scope}.${s.name}`, { kind: 'service', desc: s, file: f.name });
  }
  return index;
}

/** The field's real oneof (proto3 `optional` synthetic oneofs are not one). */
function oneofOf(m: MessageDesc, f: FieldDesc): string {
  if (f.oneofIndex === undefined || f.proto3Optional) return '(none)';
  return m.oneofDecl?.[f.oneofIndex]?.name ?? `(#${f.oneofIndex})`;
}

function describeField(f: FieldDesc): string {
  const type = f.typeName ? dotted(f.typeName) : (f.type ?? '?').replace(/^TYPE_/, '').toLowerCase();
  return `${f.label === 'LABEL_REPEATED' ? 'repeated ' : ''}${type} = ${f.number}`;
}

export function compareDescriptors(ours: FileDesc[], upstream: FileDesc[]): DiffReport {
  const up = indexFiles(upstream);
  const upFiles = upstream.map((f) => f.name).join(', ');
  const report: DiffReport = {
    mismatches: [],
    omitted: [],
    checked: { messages: 0, fields: 0, enums: 0, enumValues: 0, methods: 0 },
  };
  const bad = (what: string) => report.mismatches.push(what);

  // Also checks the defining file: importing our file must mean the same.
  const lookup = <K extends Indexed['kind']>(
    fq: string,
    kind: K,
    file: string,
  ): Extract<Indexed, { kind: K }> | undefined => {
    const hit = up.get(fq);
    if (!hit) bad(`${kind} ${fq}: not defined upstream (searched ${upFiles})`);
    else if (hit.kind !== kind) bad(`${kind} ${fq}: upstream it is a ${hit.kind} (${hit.file})`);
    else {
      if (hit.file !== file) bad(`${kind} ${fq}: we define it in ${file}, upstream in ${hit.file}`);
      return hit as Extract<Indexed, { kind: K }>;
    }
    return undefined;
  };

  const checkField = (fq: string, m: MessageDesc, um: MessageDesc, f: FieldDesc) => {
    report.checked.fields++;
    const where = `field ${fq}.${f.name}`;
    const uf = um.field?.find((x) => x.name === f.name);
    if (!uf) {
      const sameNumber = um.field?.find((x) => x.number === f.number);
      bad(
        `${where} (${describeField(f)}): no such field upstream` +
          (sameNumber
            ? `; upstream number ${f.number} is ${sameNumber.name} (${describeField(sameNumber)})`
            : ''),
      );
      return;
    }
    const pairs: [string, unknown, unknown][] = [
      ['number', f.number, uf.number],
      ['type', f.type, uf.type],
      ['type name', dotted(f.typeName), dotted(uf.typeName)],
      ['label', f.label ?? 'LABEL_OPTIONAL', uf.label ?? 'LABEL_OPTIONAL'],
      ['oneof', oneofOf(m, f), oneofOf(um, uf)],
      ['proto3 optional', !!f.proto3Optional, !!uf.proto3Optional],
    ];
    for (const [what, mine, theirs] of pairs) {
      if (mine !== theirs) bad(`${where}: ${what} is ${String(mine)}, upstream ${String(theirs)}`);
    }
  };

  const checkEnum = (fq: string, e: EnumDesc, file: string) => {
    report.checked.enums++;
    const ue = lookup(fq, 'enum', file)?.desc;
    if (!ue) return;
    for (const v of e.value ?? []) {
      report.checked.enumValues++;
      const uv = ue.value?.find((x) => x.name === v.name);
      if (!uv) bad(`enum value ${fq}.${v.name} = ${v.number}: not defined upstream`);
      else if (uv.number !== v.number)
        bad(`enum value ${fq}.${v.name}: number ${v.number}, upstream ${uv.number}`);
    }
    for (const uv of ue.value ?? []) {
      if (!e.value?.some((v) => v.name === uv.name))
        report.omitted.push(`enum value ${fq}.${uv.name} = ${uv.number}`);
    }
  };

  const checkMessage = (fq: string, m: MessageDesc, file: string) => {
    report.checked.messages++;
    const um = lookup(fq, 'message', file)?.desc;
    if (!um) return;
    if (!!m.options?.mapEntry !== !!um.options?.mapEntry) {
      bad(`message ${fq}: map entry ${!!m.options?.mapEntry}, upstream ${!!um.options?.mapEntry}`);
    }
    for (const f of m.field ?? []) checkField(fq, m, um, f);
    // What we reserve must not be a live field upstream.
    for (const r of m.reservedRange ?? []) {
      for (const uf of um.field ?? []) {
        if (uf.number >= r.start && uf.number < r.end)
          bad(`message ${fq}: we reserve ${uf.number}, upstream uses it for ${uf.name}`);
      }
    }
    for (const name of m.reservedName ?? []) {
      if (um.field?.some((uf) => uf.name === name))
        bad(`message ${fq}: we reserve "${name}", upstream it is a field`);
    }
    for (const uf of um.field ?? []) {
      if (!m.field?.some((f) => f.name === uf.name))
        report.omitted.push(`field ${fq}.${uf.name}: ${describeField(uf)}`);
    }
    for (const n of m.nestedType ?? []) checkMessage(`${fq}.${n.name}`, n, file);
    for (const e of m.enumType ?? []) checkEnum(`${fq}.${e.name}`, e, file);
  };

  const checkService = (fq: string, s: ServiceDesc, file: string) => {
    const us = lookup(fq, 'service', file)?.desc;
    if (!us) return;
    for (const method of s.method ?? []) {
      report.checked.methods++;
      const um = us.method?.find((x) => x.name === method.name);
      if (!um) {
        bad(`method ${fq}.${method.name}: not defined upstream`);
        continue;
      }
      const pairs: [string, unknown, unknown][] = [
        ['input', dotted(method.inputType), dotted(um.inputType)],
        ['output', dotted(method.outputType), dotted(um.outputType)],
        ['client streaming', !!method.clientStreaming, !!um.clientStreaming],
        ['server streaming', !!method.serverStreaming, !!um.serverStreaming],
      ];
      for (const [what, mine, theirs] of pairs) {
        if (mine !== theirs)
          bad(`method ${fq}.${method.name}: ${what} is ${String(mine)}, upstream ${String(theirs)}`);
      }
    }
  };

  for (const f of ours) {
    const scope = dotted(f.package);
    for (const m of f.messageType ?? []) checkMessage(`${scope}.${m.name}`, m, f.name);
    for (const e of f.enumType ?? []) checkEnum(`${scope}.${e.name}`, e, f.name);
    for (const s of f.service ?? []) checkService(`${scope}.${s.name}`, s, f.name);
  }
  return report;
}

/** ENVOY_API_DIR, or an error saying how to get it (the test never skips). */
export function envoyApiDir(): string {
  const dir = process.env.ENVOY_API_DIR;
  const how =
    'run `source .ci/tools.sh` (it downloads github.com/envoyproxy/go-control-plane/envoy with ' +
    '`go mod download` and exports ENVOY_API_DIR), or `bash scripts/test-setup.sh` before vitest';
  if (!dir) throw new Error(`ENVOY_API_DIR is not set: ${how}`);
  if (!existsSync(join(dir, 'service/ext_proc/v3/external_processor.pb.go'))) {
    throw new Error(`ENVOY_API_DIR=${dir} holds no service/ext_proc/v3/external_processor.pb.go: ${how}`);
  }
  return dir;
}
