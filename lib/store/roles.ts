type Intersection<T extends object[]> = T extends [infer First, ...infer Rest extends object[]] ? First & Intersection<Rest> : unknown

/**
 * One object that answers every method of each of `roles` (those of its own class), bound to the
 * role it came from: how an adapter hands out its roles (lib/store/*-store.ts) together as a
 * ChatStore. A name two roles both have is the first one's.
 */
export function combineRoles<T extends object[]>(...roles: T): Intersection<T> {
  const combined: Record<string, unknown> = {}
  for (const role of roles) {
    // The role's own class: what it shares with other roles through a base class (a pool) is not its interface.
    for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(role))) {
      const method = (role as Record<string, unknown>)[name]
      if (name !== 'constructor' && !(name in combined) && typeof method === 'function') combined[name] = method.bind(role)
    }
  }
  return combined as Intersection<T>
}
