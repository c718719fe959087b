/**
 * Makes `target` answer every method of each of `roles` (those of the role's own class), bound to
 * the role it came from: how an adapter's chat store is all its roles (lib/store/*-store.ts) as one
 * ChatStore. What `target` has already (its own `close`, `ping`) stays its own, and a name two
 * roles both have is the first one's.
 */
export function adoptRoles(target: object, ...roles: object[]): void {
  for (const role of roles) {
    // The role's own class: what it shares with other roles through a base class (a pool) is not its interface.
    for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(role))) {
      const method = (role as Record<string, unknown>)[name]
      if (name !== 'constructor' && !(name in target) && typeof method === 'function') Object.defineProperty(target, name, { value: method.bind(role), writable: true, configurable: true })
    }
  }
}
