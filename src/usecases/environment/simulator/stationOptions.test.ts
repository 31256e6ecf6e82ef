import { describe, expect, it } from 'vitest'
import { environment } from '../index.ts'
import { parseFaultMix, stationOptionsOf } from './stationOptions.ts'

describe("the environment's simulation options", () => {
  it('parses a fault mix, and names the bad part of one', () => {
    expect(parseFaultMix('stuck=1,liar=2')).toEqual({ stuck: 1, liar: 2 })
    expect(parseFaultMix('none')).toEqual({})
    expect(() => parseFaultMix('stuck=1,lazy=2')).toThrow(/"lazy=2" is not kind=count/)
  })

  it("turns depin up's flags into the stations' options, refusing more faults than stations", () => {
    expect(environment.simulationOptions?.({ faults: 'liar=1', transport: 'http', size: 3 })).toEqual({
      faults: { liar: 1 },
      transport: 'http',
    })
    expect(stationOptionsOf({ size: 3 })).toEqual({ faults: {} })
    expect(() => stationOptionsOf({ faults: 'liar=2,stuck=2', size: 3 })).toThrow(
      /asks for 4 faulty stations of 3/,
    )
  })
})
