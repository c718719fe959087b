import type { ChatStore } from './store.ts'
import type { Tracer } from '../observability/tracing.ts'

/**
 * The conversation store with each call a span (`store.<method>`, docs/tracing.md): what a turn
 * stores, and how long it took, in the trace of the request that did it. Used only when tracing
 * is configured; the calls themselves are the store's own.
 */
export function tracedStore<T extends ChatStore>(store: T, tracer: Tracer, system: 'sqlite' | 'postgres'): T {
  const attributes = { 'db.system.name': system === 'postgres' ? 'postgresql' : 'sqlite' }
  const wrapped = new Map<PropertyKey, unknown>()
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown
      if (typeof value !== 'function' || typeof property !== 'string' || property === 'constructor') return value
      let traced = wrapped.get(property)
      if (!traced) {
        const method = value as (...args: unknown[]) => unknown
        traced = (...args: unknown[]) => (tracer.enabled && tracer.current()
          ? tracer.span(`store.${property}`, { attributes: { ...attributes, 'db.operation.name': property } }, async () => method.apply(target, args))
          : method.apply(target, args))
        wrapped.set(property, traced)
      }
      return traced
    },
  })
}
