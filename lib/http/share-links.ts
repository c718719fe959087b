import type { Config } from '../shared/config.ts'
import { HttpProblem } from '../shared/problem.ts'

/** The share-link routes answer only with SHARE_LINKS=on; otherwise 404, saying how to turn them on. */
export function shareLinksOn(config: Config): void {
  if (!config.shareLinks) throw new HttpProblem(404, 'not_found', 'Share links are off on this server: an admin turns them on with SHARE_LINKS=on.')
}
