import { BlockList, isIPv4, isIPv6 } from 'node:net'

/**
 * Which addresses `fetch_url` may connect to (docs/builtin-tools.md "Security"): public unicast
 * only. Loopback, private, link-local (cloud metadata at 169.254.169.254 among them), CGNAT,
 * multicast, documentation, benchmarking and reserved ranges are refused, in IPv4 and IPv6 and in
 * the IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4).
 */

const refusedV4: Array<[string, number]> = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT (and Alibaba's metadata at 100.100.100.200)
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local: cloud metadata services
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the broadcast address
]
const refusedV6: Array<[string, number]> = [
  ['::', 128],
  ['::1', 128],
  ['100::', 64], // discard
  ['2001::', 32], // Teredo
  ['2001:db8::', 32],
  ['fc00::', 7], // unique local (AWS's metadata at fd00:ec2::254)
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
]
const refused = new BlockList()
for (const [network, prefix] of refusedV4) refused.addSubnet(network, prefix, 'ipv4')
for (const [network, prefix] of refusedV6) refused.addSubnet(network, prefix, 'ipv6')

/** The 16 bytes of an IPv6 address (`::` and embedded IPv4 forms expanded). */
function ipv6Bytes(address: string): number[] {
  let text = address
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number]
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.split('::') as [string, string | undefined]
  const groups = (part: string | undefined) => (part ? part.split(':').map((group) => parseInt(group, 16)) : [])
  const front = groups(head)
  const back = groups(tail)
  const all = tail === undefined ? front : [...front, ...new Array(8 - front.length - back.length).fill(0), ...back]
  return all.flatMap((group) => [group >> 8, group & 0xff])
}

/** The IPv4 address an IPv6 one carries (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16), if any. */
function embeddedIPv4(address: string): string | undefined {
  const bytes = ipv6Bytes(address)
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((byte) => byte === 0)
  const v4 = (at: number) => bytes.slice(at, at + 4).join('.')
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return v4(12)
  if (zeros(0, 12) && !zeros(12, 14)) return v4(12)
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zeros(4, 12)) return v4(12)
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return v4(2)
  return undefined
}

/** Whether `address` (an IP literal, IPv6 without brackets) is a public unicast address a page may be fetched from. */
export function isPublicAddress(address: string): boolean {
  if (isIPv4(address)) return !refused.check(address, 'ipv4')
  if (!isIPv6(address)) return false
  const inner = embeddedIPv4(address)
  if (inner !== undefined && refused.check(inner, 'ipv4')) return false
  return !refused.check(address, 'ipv6')
}
