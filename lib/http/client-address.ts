/**
 * The address a request came from, as the node:http adapter saw its socket. A Request carries no
 * such thing, and a header saying it could be forged, so the adapter records it here.
 */
const addresses = new WeakMap<Request, string>()

export function setClientAddress(request: Request, address: string | undefined): void {
  if (address) addresses.set(request, address)
}

/** The socket's address; `unknown` for a Request that did not come through the adapter (a FaaS platform's). */
export function clientAddress(request: Request): string {
  return addresses.get(request) ?? 'unknown'
}
