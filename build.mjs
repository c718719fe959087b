// Bundles the server and each function with esbuild. Every bundle carries its dependencies and
// the SQL migrations, so a deployment needs only Node and dist/ (node:* stays external).
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { parseArgs } from 'node:util'
import * as esbuild from 'esbuild'

const root = new URL('./', import.meta.url)
const { values } = parseArgs({ options: { outdir: { type: 'string', default: 'dist' } } })
const outdir = values.outdir

const migrations = readdirSync(new URL('migrations/', root))
  .filter((file) => /^\d{3}_[\w-]+\.sql$/.test(file))
  .sort()
  .map((file) => ({
    version: Number(file.slice(0, 3)),
    name: file.slice(4, -'.sql'.length),
    sql: readFileSync(new URL(`migrations/${file}`, root), 'utf8'),
  }))

const functionNames = readdirSync(new URL('functions/', root))
  .filter((file) => file.endsWith('.ts'))
  .map((file) => file.slice(0, -'.ts'.length))

const shared = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  packages: 'bundle',
  external: ['node:*'],
  define: { __EMBEDDED_MIGRATIONS__: JSON.stringify(migrations) },
  // Bundled CommonJS dependencies may call require(); give them one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
}

rmSync(outdir, { recursive: true, force: true })
const results = await Promise.all([
  esbuild.build({ ...shared, entryPoints: { server: 'lib/server.ts' }, outdir, outExtension: { '.js': '.mjs' } }),
  esbuild.build({
    ...shared,
    entryPoints: Object.fromEntries(functionNames.map((name) => [name, `functions/${name}.ts`])),
    outdir: `${outdir}/functions`,
    outExtension: { '.js': '.mjs' },
  }),
])

for (const result of results) {
  for (const [file, { bytes }] of Object.entries(result.metafile.outputs)) {
    if (file.endsWith('.mjs')) console.log(`${file.padEnd(40)} ${(bytes / 1024).toFixed(1).padStart(8)} KiB`)
  }
}
