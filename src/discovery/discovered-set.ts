// What this replica's own discovery delivered, used to read the shared
// endpoint list (Redis) as a cache and not as the authority: an entry is
// scheduled only if discovery delivered an endpoint with that id, and then
// with discovery's own definition (address, port, labels), so a list
// overwritten in Redis can neither add a destination outside the pool nor
// change a pod's role. Entries discovery has but the shared list lacks stay
// out until the list is rewritten (the publisher does so every lease period).
import type { Endpoint } from '../scheduling/types.js';

export class DiscoveredSet {
  private byId = new Map<string, Endpoint>();
  private delivered = false;

  /** Discovery delivered a full set (replaces the previous one). */
  update(endpoints: readonly Endpoint[]): void {
    this.byId = new Map(endpoints.map((e) => [e.id, e]));
    this.delivered = true;
  }

  /** The entries of a shared list that discovery vouches for, as discovery defines them. */
  admit(shared: readonly Endpoint[]): Endpoint[] {
    if (!this.delivered) return [];
    const out: Endpoint[] = [];
    for (const e of shared) {
      const mine = this.byId.get(e.id);
      if (mine) out.push(mine);
    }
    return out;
  }
}
