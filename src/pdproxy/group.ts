// The pods of one PD group as the leader knows them, and how a request's
// prefill and decode pods are chosen. Pods come from flags or from an
// endpoints file filtered by group id; a header may only name a pod of the
// right role in this group, so a client can never make the proxy connect to
// an arbitrary address.
import { parseHostPort } from '../common/net.js';
import type { Endpoint } from '../scheduling/types.js';

export type PdRole = 'prefill' | 'decode';

export interface PdPod {
  /** `ip:port` (IPv6 bracketed), the form the EPP writes in the headers. */
  id: string;
  host: string;
  port: number;
}

export class PodChoiceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PodChoiceError';
  }
}

/** A comma list of `host:port` from a flag; throws naming the bad item. */
export function parsePodList(flag: string, text: string): PdPod[] {
  const out: PdPod[] = [];
  for (const item of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const pod = parseHostPort(item);
    if (!pod) throw new Error(`${flag}: "${item}" is not host:port`);
    out.push(pod);
  }
  return out;
}

export interface PdLabels {
  roleLabel: string;
  groupLabel: string;
  prefillValue: string;
  decodeValue: string;
}

export const defaultPdLabels: PdLabels = {
  roleLabel: 'openfuyao.com/pdRole',
  groupLabel: 'openfuyao.com/pdGroupID',
  prefillValue: 'prefill',
  decodeValue: 'decode',
};

/** The prefill and decode pods of group `groupId` among discovered endpoints. */
export function podsOfGroup(
  endpoints: Endpoint[],
  groupId: string,
  labels = defaultPdLabels,
): Record<PdRole, PdPod[]> {
  const out: Record<PdRole, PdPod[]> = { prefill: [], decode: [] };
  for (const e of endpoints) {
    if (e.labels[labels.groupLabel] !== groupId) continue;
    const role = e.labels[labels.roleLabel];
    const pod = { id: e.id, host: e.address, port: e.port };
    if (role === labels.prefillValue) out.prefill.push(pod);
    else if (role === labels.decodeValue) out.decode.push(pod);
  }
  return out;
}

/**
 * The group's current membership plus a round-robin cursor per role.
 * `update` swaps the membership (endpoints file re-read) without dropping
 * the cursors.
 */
export class PdGroup {
  private pods: Record<PdRole, PdPod[]> = { prefill: [], decode: [] };
  private byId: Record<PdRole, Map<string, PdPod>> = { prefill: new Map(), decode: new Map() };
  private next: Record<PdRole, number> = { prefill: 0, decode: 0 };

  constructor(pods?: Record<PdRole, PdPod[]>) {
    if (pods) this.update(pods);
  }

  update(pods: Record<PdRole, PdPod[]>): void {
    this.pods = { prefill: [...pods.prefill], decode: [...pods.decode] };
    this.byId = {
      prefill: new Map(pods.prefill.map((p) => [p.id, p])),
      decode: new Map(pods.decode.map((p) => [p.id, p])),
    };
  }

  list(role: PdRole): readonly PdPod[] {
    return this.pods[role];
  }

  /**
   * The pod a header names, or the next pod round robin when the header is
   * absent. A header that is present but not one of this group's pods of
   * that role is a PodChoiceError (the caller answers 400).
   */
  choose(role: PdRole, header: string | undefined, headerName: string): PdPod {
    if (header !== undefined) {
      const parsed = parseHostPort(header);
      if (!parsed) throw new PodChoiceError(`${headerName} must be ip:port, got "${header}"`);
      const pod = this.byId[role].get(parsed.id);
      if (!pod)
        throw new PodChoiceError(
          `${headerName} names ${parsed.id}, which is not a ${role} pod of this PD group`,
        );
      return pod;
    }
    const list = this.pods[role];
    if (list.length === 0) throw new NoPodError(role);
    const pod = list[this.next[role] % list.length]!;
    this.next[role] = (this.next[role] + 1) % list.length;
    return pod;
  }
}

/** The group has no pod of a role (answered 503: a deployment problem, not the client's). */
export class NoPodError extends Error {
  constructor(readonly role: PdRole) {
    super(`this PD group has no ${role} pod`);
    this.name = 'NoPodError';
  }
}
