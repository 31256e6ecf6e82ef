import { formatUnits } from 'viem'
import { askApi } from './askApi.ts'

type ValidatorsAnswer = {
  window: number
  lastSettledEpoch: string | null
  validators: {
    validator: string
    status: string
    bond: string
    lastSignedEpoch: string | null
    endpoint: string | null
    signedRecent: number
    agreementBps: number
    missedRecent: { notIncluded: number; signedOther: number; silent: number }
    live: boolean
  }[]
}

/** `depin status`: the network at a glance, from the API: epochs, devices, gateways, and each validator's liveness. */
export async function runStatus(options: { api: string }): Promise<void> {
  const get = <T>(path: string) => askApi<T>(options.api, path)
  const status = await get<{
    chainId: number
    useCase: string
    rulesHash: string
    currentEpoch: string
    devices: number
    lastSettledEpoch: { epoch: string; accepted: number; total: string; txHash: string } | null
    gateways: { gateway: string; url: string }[]
  }>('/v1/status')
  const { validators, window } = await get<ValidatorsAnswer>('/v1/validators')
  const last = status.lastSettledEpoch
  console.log(
    `chain ${status.chainId}, epoch ${status.currentEpoch} running, ${status.devices} devices registered`,
  )
  console.log(`use case ${status.useCase}, rules hash ${status.rulesHash}`)
  console.log(
    last
      ? `last settled epoch ${last.epoch}: ${last.accepted} readings accepted, ${formatUnits(BigInt(last.total), 18)} tokens, tx ${last.txHash}`
      : 'no epoch settled yet',
  )
  console.log(`gateways on the registry's list: ${status.gateways.length}`)
  for (const g of status.gateways) console.log(`  ${g.gateway}  ${g.url}`)
  console.log(`validators (agreement = share of the last ${window} settled reports signed):`)
  for (const v of validators) {
    const { notIncluded, signedOther, silent } = v.missedRecent
    const missed = [
      notIncluded ? `${notIncluded} signed but left out` : '',
      signedOther ? `${signedOther} signed another report` : '',
      silent ? `${silent} not seen` : '',
    ].filter(Boolean)
    console.log(
      `  ${v.validator}  ${v.status.padEnd(9)} stake ${formatUnits(BigInt(v.bond), 18).padStart(8)}  last signed ${v.lastSignedEpoch ?? '-'}  agreement ${(v.agreementBps / 100).toFixed(0)} %${missed.length ? ` (missed: ${missed.join(', ')})` : ''}  ${v.live ? 'live' : 'NOT LIVE'}  ${v.endpoint ?? ''}`.trimEnd(),
    )
  }
}
