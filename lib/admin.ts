/**
 * `npm run admin -- …` (in the image: `node dist/admin.mjs …`): users and API keys, on the same
 * DB_PATH as the server, also while it runs. Exit codes: 0 done, 1 failed, 2 usage, 3 not
 * found, 4 conflict or invalid value.
 */
import { parseArgs } from 'node:util'
import { AccessError, printable, type ApiKeyInfo } from './store/access-store.ts'
import { AdminActions } from './access/admin-actions.ts'
import { ConfigError, loadConfig, readEnvironment } from './shared/config.ts'
import { openStore } from './app.ts'
import type { Store } from './store/store.ts'

const USAGE = `usage: npm run admin -- <command>
  user add NAME [--admin]                           a user (role user, or admin)
  user list                                         every user
  key create USER [--name LABEL] [--expires DUR]    a key for USER, printed alone on the last line
  key list [USER]                                   keys, one a line, id first (never the secret)
  key revoke KEY_ID                                 ends a key at once
  adopt-local USER                                  gives USER the chats made while AUTH was off`

export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, conflict: 4 } as const

class UsageError extends Error {}

/** Runs one command; `print` gets each output line. Returns the exit code. */
export async function runAdmin(args: string[], env: Record<string, string | undefined>, print: (line: string) => void, printError: (line: string) => void): Promise<number> {
  let database: Store | undefined
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { admin: { type: 'boolean' }, name: { type: 'string' }, expires: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    })
    if (values.help || positionals.length === 0) {
      print(USAGE)
      return values.help ? EXIT.ok : EXIT.usage
    }
    const config = loadConfig(env)
    database = await openStore(config)
    const access = database.access
    const actions = new AdminActions(access, { userId: null, keyId: null, address: 'cli' })
    const [group, verb, target, ...extra] = positionals
    const needs = (count: number) => {
      if (positionals.length !== count) throw new UsageError(`"${positionals.join(' ')}" takes ${count - 1} argument${count === 2 ? '' : 's'}`)
    }
    switch (`${group} ${verb ?? ''}`.trim()) {
      case 'user add': {
        needs(3)
        const user = await actions.addUser(target!, values.admin ? 'admin' : 'user')
        print(`${user.id}\t${user.name}\t${user.role}`)
        return EXIT.ok
      }
      case 'user list':
        needs(2)
        for (const user of await access.listUsers()) print(`${user.id}\t${user.name}\t${user.role}\t${user.created_at}`)
        return EXIT.ok
      case 'key create': {
        needs(3)
        const { key, info } = await actions.createKey(target!, { name: values.name, expiresIn: values.expires })
        print(keyLine(info))
        print(key)
        return EXIT.ok
      }
      case 'key list':
        if (extra.length > 0) throw new UsageError('"key list" takes at most one user')
        for (const info of await access.listKeys(target)) print(keyLine(info))
        return EXIT.ok
      case 'key revoke':
        needs(3)
        print(keyLine(await actions.revokeKey(target!)))
        return EXIT.ok
      default:
        if (group === 'adopt-local' && positionals.length === 2) {
          const user = await access.user(verb!)
          const moved = await access.adoptLocalSessions(user, 'cli')
          print(`${moved} chat${moved === 1 ? '' : 's'} made while AUTH was off now belong to ${user.name}`)
          return EXIT.ok
        }
        throw new UsageError(`unknown command "${positionals.join(' ')}"`)
    }
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      printError(`chat-ollama admin: ${(error as Error).message}\n${USAGE}`)
      return EXIT.usage
    }
    if (error instanceof AccessError) {
      printError(`chat-ollama admin: ${error.message}`)
      return error.reason === 'not_found' ? EXIT.notFound : EXIT.conflict
    }
    printError(`chat-ollama admin: ${error instanceof ConfigError ? '' : 'failed: '}${(error as Error).message}`)
    return EXIT.failed
  } finally {
    await database?.close()
  }
}

function keyLine(info: ApiKeyInfo): string {
  const status = info.revoked_at ? `revoked ${info.revoked_at}` : info.expires_at && Date.parse(info.expires_at) <= Date.now() ? 'expired' : 'active'
  return [info.id, info.user_name, printable(info.name), `created ${info.created_at}`, `last used ${info.last_used_at ?? 'never'}`, `expires ${info.expires_at ?? 'never'}`, status].join('\t')
}

if (import.meta.main) {
  process.exitCode = await runAdmin(process.argv.slice(2), readEnvironment(), (line) => console.log(line), (line) => console.error(line))
}
