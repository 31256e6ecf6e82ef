/** One process's signature-recovery rate: `npx tsx bench/recoverRate.ts [seconds]` prints readings/s. */
import { benchRecoverRate } from './judge.ts'

console.log(Math.round(await benchRecoverRate(Number(process.argv[2] ?? 3))))
