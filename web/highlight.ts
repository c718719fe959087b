// Code blocks highlighted by highlight.js (its common languages). Loaded by render.ts only when a
// finished reply holds code: a page without code never downloads it.
import hljs from 'highlight.js/lib/common'

hljs.configure({ ignoreUnescapedHTML: true })

/** Highlights each `pre code` of `target` once; highlight.js escapes the text it wraps in spans. */
export function highlightCode(target: HTMLElement): void {
  for (const code of target.querySelectorAll<HTMLElement>('pre code:not(.hljs)')) {
    // A language highlight.js does not know is guessed instead of being reported.
    const named = /\blanguage-([\w+-]+)/.exec(code.className)?.[1]
    if (named && !hljs.getLanguage(named)) code.classList.remove(`language-${named}`)
    hljs.highlightElement(code)
  }
}
