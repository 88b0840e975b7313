// Differential-test oracle: drives @cloud-copilot/iam-simulate's core `authorize()` (as its own
// test suite does) on evaluation cases in the format of shared/vectors/policy/README.md.
// The package is AGPL: it is only run here, as a separate process, never vendored.
//
// stdin: a JSON array of cases. stdout: a JSON array of {id, decision} (decision is
// Allowed|ImplicitlyDenied|ExplicitlyDenied, or "error: ..." if the oracle threw).
// `node oracle.mjs --bench N`: evaluates every case N times and prints {evaluations, seconds}.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const modules = process.env.IAM_SIMULATE_NODE_MODULES || join(here, '..', 'js', 'node_modules')
const sim = join(modules, '@cloud-copilot', 'iam-simulate')
const pkg = JSON.parse(readFileSync(join(sim, 'package.json'), 'utf8'))
if (pkg.version !== '0.1.173') {
  console.error(`iam-simulate ${pkg.version} found, 0.1.173 required`)
  process.exit(3)
}
const esm = (p) => import(pathToFileURL(join(sim, 'dist', 'esm', p)).href)
const { authorize } = await esm('core_engine/CoreSimulatorEngine.js')
const { AwsRequestImpl } = await esm('request/request.js')
const { RequestContextImpl } = await esm('requestContext.js')
const { DiscoveryContextKeyConstraints } = await esm('context_keys/discoveryContextKeyConstraints.js')
const { loadPolicy } = await import(pathToFileURL(join(modules, '@cloud-copilot', 'iam-policy', 'dist', 'esm', 'index.js')).href)

const DEFAULT_PRINCIPAL = 'arn:aws:iam::123456789012:user/alice'

function prepare(c) {
  const load = (doc, name) => loadPolicy(doc, { name })
  return {
    principal: c.principal || DEFAULT_PRINCIPAL,
    action: c.action,
    resource: c.resource,
    account: c.resourceAccount || '123456789012',
    context: c.context || {},
    identity: (c.identity || []).map((p, i) => load(p, `identity${i}`)),
    resourcePolicy: c.resourcePolicy ? load(c.resourcePolicy, 'resource') : undefined,
    boundary: c.boundary ? [load(c.boundary, 'boundary')] : undefined,
    session: c.session ? load(c.session, 'session') : undefined,
    scps: (c.scps || []).map((level, l) => ({
      orgIdentifier: `ou-${l}`,
      policies: level.map((p, j) => load(p, `scp${l}-${j}`))
    }))
  }
}

const params = { simulationMode: 'Strict', discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([]) }

function run(p) {
  const request = new AwsRequestImpl(
    p.principal,
    { resource: p.resource, accountId: p.account },
    p.action,
    new RequestContextImpl(p.context),
    // In AWS a request resource of "*" only occurs for actions without resource-level
    // permissions, which only a literal "*" policy resource grants.
    p.resource === '*'
  )
  const r = authorize({
    request,
    sessionPolicy: p.session,
    identityPolicies: p.identity,
    serviceControlPolicies: p.scps,
    resourceControlPolicies: [],
    resourcePolicy: p.resourcePolicy,
    permissionBoundaries: p.boundary,
    vpcEndpointPolicies: undefined,
    simulationParameters: params
  })
  return r.result
}

const cases = JSON.parse(readFileSync(0, 'utf8'))
const benchIdx = process.argv.indexOf('--bench')
if (benchIdx >= 0) {
  const n = Number(process.argv[benchIdx + 1] || '1000')
  const results = cases.map((c) => {
    const p = prepare(c)
    for (let i = 0; i < Math.min(n, 1000); i++) run(p) // warm up
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < n; i++) run(p)
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    return { id: c.id, evaluations: n, seconds, perSecond: n / seconds }
  })
  console.log(JSON.stringify(results))
} else {
  const out = cases.map((c) => {
    try {
      return { id: c.id, decision: run(prepare(c)) }
    } catch (e) {
      return { id: c.id, decision: `error: ${e && e.message ? e.message : e}` }
    }
  })
  console.log(JSON.stringify(out))
}
