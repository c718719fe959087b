// Bundles the server and each function with esbuild. Every bundle carries its dependencies and
// the SQL migrations, so a deployment needs only Node and dist/ (node:* stays external), plus
// node_modules/ for three packages loaded only when used: sharp for images (its native library
// cannot be bundled), the MCP client for tools (most of a megabyte no other request needs) and
// Pyodide for run_python (an interpreter in WebAssembly and Python's library, read from its folder).
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { basename } from 'node:path'
import { parseArgs } from 'node:util'
import * as esbuild from 'esbuild'

const root = new URL('./', import.meta.url)
const { values } = parseArgs({ options: { outdir: { type: 'string', default: 'dist' } } })
const outdir = values.outdir

/** Each dialect's migrations (migrations/sqlite/, migrations/postgres/), as lib/store/migrations.ts reads them. */
const migrationsOf = (dialect) =>
  readdirSync(new URL(`migrations/${dialect}/`, root))
    .filter((file) => /^\d{3}_[\w-]+\.sql$/.test(file))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 3)),
      name: file.slice(4, -'.sql'.length),
      sql: readFileSync(new URL(`migrations/${dialect}/${file}`, root), 'utf8'),
    }))
const migrations = { sqlite: migrationsOf('sqlite'), postgres: migrationsOf('postgres') }

const functionNames = readdirSync(new URL('functions/', root))
  .filter((file) => file.endsWith('.ts'))
  .map((file) => file.slice(0, -'.ts'.length))

rmSync(outdir, { recursive: true, force: true })

// The browser page first: its files are embedded in the server and function bundles.
const web = await esbuild.build({
  entryPoints: ['web/app.ts', 'web/styles.css'],
  outdir: `${outdir}/web/assets`,
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  // Code only some pages need (the highlighter) is its own file, loaded when needed.
  splitting: true,
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: ['chrome120', 'firefox120', 'safari17'],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
})
const assetOf = (extension) => Object.entries(web.metafile.outputs).find(([file, output]) => file.endsWith(extension) && output.entryPoint)[0]
const html = readFileSync('web/index.html', 'utf8')
  .replace('{{script}}', `/assets/${basename(assetOf('.js'))}`)
  .replace('{{styles}}', `/assets/${basename(assetOf('.css'))}`)
mkdirSync(`${outdir}/web`, { recursive: true })
writeFileSync(`${outdir}/web/index.html`, html)
// Browsers ask for /favicon.ico whatever the page says; it is served the SVG icon.
const favicon = readFileSync('web/favicon.svg', 'utf8')
writeFileSync(`${outdir}/web/favicon.svg`, favicon)
const webFiles = { '/': html, '/favicon.ico': favicon }
for (const file of Object.keys(web.metafile.outputs)) webFiles[`/assets/${basename(file)}`] = readFileSync(file, 'utf8')

// The worker threads (reading an import file, reading a body of images), each embedded as text
// in the bundles that start it: a deployment stays one file per function.
const workerSource = async (entryPoint) => (await esbuild.build({
  entryPoints: [entryPoint],
  bundle: true,
  platform: 'node',
  // Node runs eval'd worker code as CommonJS or as an ES module depending on the folder around it:
  // a plain script that takes node:* modules from process.getBuiltinModule works in both.
  format: 'iife',
  // A package that is not built in is not there: it throws, as Node's require would (optional
  // dependencies such as linkedom's canvas are tried that way).
  banner: { js: 'var require = (id) => { const found = process.getBuiltinModule(id); if (!found) throw Object.assign(new Error(`Cannot find module ${id}`), { code: "MODULE_NOT_FOUND" }); return found };' },
  target: 'node24',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  write: false,
})).outputFiles[0].text
const workers = {
  __IMPORT_WORKER__: await workerSource('lib/conversations/import-worker.ts'),
  __IMAGE_BODY_WORKER__: await workerSource('lib/images/image-body-worker.ts'),
  __SCHEMA_CHECK_WORKER__: await workerSource('lib/tools/schema-check-worker.ts'),
  __EXTRACT_WORKER__: await workerSource('lib/documents/extract-worker.ts'),
  __PYTHON_WORKER__: await workerSource('lib/tools/builtin/python/python-worker.ts'),
}

const shared = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  packages: 'bundle',
  external: ['node:*', 'sharp', '@modelcontextprotocol/client', '@modelcontextprotocol/client/stdio', '@opentelemetry/*'],
  define: {
    __EMBEDDED_MIGRATIONS__: JSON.stringify(migrations),
    __EMBEDDED_WEB__: JSON.stringify(webFiles),
    ...Object.fromEntries(Object.entries(workers).map(([name, source]) => [name, JSON.stringify(source)])),
  },
  // Bundled CommonJS dependencies may call require(); give them one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  sourcemap: 'linked',
  // Maps name the original files and lines in stack traces; without the sources' text they are a
  // quarter of the size, which `--enable-source-maps` parses at every start.
  sourcesContent: false,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
}

const results = await Promise.all([
  esbuild.build({ ...shared, entryPoints: { server: 'lib/server.ts', admin: 'lib/admin.ts' }, outdir, outExtension: { '.js': '.mjs' } }),
  esbuild.build({
    ...shared,
    entryPoints: Object.fromEntries(functionNames.map((name) => [name, `functions/${name}.ts`])),
    outdir: `${outdir}/functions`,
    outExtension: { '.js': '.mjs' },
  }),
])

for (const result of [web, ...results]) {
  for (const [file, { bytes }] of Object.entries(result.metafile.outputs)) {
    if (/\.(mjs|js|css)$/.test(file)) console.log(`${file.padEnd(40)} ${(bytes / 1024).toFixed(1).padStart(8)} KiB`)
  }
}
