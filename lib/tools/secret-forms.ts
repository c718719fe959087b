/**
 * The forms in which a secret of MCP_CONFIG can leak out of a careless MCP server: the value as
 * configured, each of its words long enough to be a credential (the token of `Bearer <token>`),
 * and each of those base64 and base64url encoded. Base64 of a secret inside a longer text depends
 * on where it starts (mod 3): for each of the three alignments, the characters that come from the
 * secret alone are the same whatever surrounds it, and those are what is masked.
 */

/** A word shorter than this is a scheme or a name (`Bearer`, `Basic`), not a credential. */
const MIN_SECRET_WORD = 8
/** Encoded forms shorter than this are left: they would match ordinary text. */
const MIN_ENCODED = 8

export function secretForms(values: Iterable<string>): string[] {
  const forms = new Set<string>()
  for (const value of values) {
    if (value.length >= 4) forms.add(value)
    for (const word of value.split(/\s+/)) {
      if (word.length < MIN_SECRET_WORD) continue
      forms.add(word)
      for (const encoded of alignedBase64(word)) if (encoded.length >= MIN_ENCODED) forms.add(encoded)
    }
  }
  // Longest first: a form inside a longer one is masked with it.
  return [...forms].sort((a, b) => b.length - a.length)
}

/** The characters of `word`'s base64 (and base64url) that do not depend on the bytes around it, at each alignment. */
function alignedBase64(word: string): string[] {
  const bytes = Buffer.from(word)
  const encodings: string[] = []
  for (let offset = 0; offset < 3; offset++) {
    const padded = Buffer.concat([Buffer.alloc(offset), bytes])
    // Character i holds bits [6i, 6i + 6): it is the secret's alone when they fall inside its bytes.
    const first = Math.ceil((offset * 8) / 6)
    const end = Math.floor((padded.length * 8) / 6)
    for (const alphabet of ['base64', 'base64url'] as const) encodings.push(padded.toString(alphabet).slice(first, end))
  }
  return encodings
}

/** `text` with every form of the secrets masked as `***`. */
export function maskSecrets(text: string, forms: readonly string[]): string {
  let masked = text
  for (const form of forms) if (masked.includes(form)) masked = masked.replaceAll(form, '***')
  return masked
}
