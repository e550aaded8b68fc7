import type { AnyPluginFactory } from './plugin.js';

/** Plugin factories by registered type name. */
export class PluginRegistry {
  private readonly factories = new Map<string, AnyPluginFactory>();

  register(factory: AnyPluginFactory): this {
    if (this.factories.has(factory.type)) {
      throw new Error(`plugin type "${factory.type}" is registered twice`);
    }
    this.factories.set(factory.type, factory);
    return this;
  }

  get(type: string): AnyPluginFactory | undefined {
    return this.factories.get(type);
  }

  types(): string[] {
    return [...this.factories.keys()].sort();
  }
}
