/**
 * `npm run test:postgres [-- vitest options]`: the tests of every store that runs on PostgreSQL
 * too, with the stores in PostgreSQL (`TEST_DATABASE_URL`, default the machine's server,
 * database `test`; each test takes a schema of its own, dropped when the run ends). As more
 * stores gain their PostgreSQL dialect, their tests join `POSTGRES_TESTS`, until it is the
 * whole suite.
 */
import { spawnSync } from 'node:child_process'

/** The test files whose stores all run on PostgreSQL (today: the gateway's). */
const POSTGRES_TESTS = ['src/gateway', 'src/protocol', 'test/gateway', 'test/device']

const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
console.error(
  `tests on PostgreSQL (${url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@')}): ${POSTGRES_TESTS.join(' ')}`,
)
const run = spawnSync('npx', ['vitest', 'run', ...POSTGRES_TESTS, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, TEST_DATABASE_URL: url },
})
process.exit(run.status ?? 1)
