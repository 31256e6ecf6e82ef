// The depin dashboard: the API's data, no framework and no build step. Every value shown comes
// from the API; nothing here decides anything. Text goes in with textContent, never as HTML.

import { verifyReading, verifyReceipt } from './verifyReading.js'

const SVG = 'http://www.w3.org/2000/svg'
const short = (hex) =>
  typeof hex === 'string' && hex.length > 14 ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : String(hex)
const tokens = (wei) => {
  const value = BigInt(wei)
  const whole = value / 10n ** 18n
  const fraction = ((value % 10n ** 18n) / 10n ** 16n).toString().padStart(2, '0')
  return `${whole}.${fraction}`
}
/** A token amount to its last significant decimal (market prices and fees are small). */
const exact = (wei) => {
  const value = BigInt(wei)
  const fraction = (value % 10n ** 18n).toString().padStart(18, '0').replace(/0+$/, '')
  return fraction ? `${value / 10n ** 18n}.${fraction}` : String(value / 10n ** 18n)
}
const fixed = (value, scale) => {
  const v = BigInt(value)
  const sign = v < 0n ? '-' : ''
  const digits = (v < 0n ? -v : v).toString().padStart(scale + 1, '0')
  return scale === 0 ? `${sign}${digits}` : `${sign}${digits.slice(0, -scale)}.${digits.slice(-scale)}`
}
const getJson = async (path) => {
  const response = await fetch(path)
  if (!response.ok) throw new Error(`${path} answered ${response.status}`)
  return response.json()
}
const cell = (row, text, title) => {
  const td = row.insertCell()
  td.textContent = text
  if (title) td.title = title
  return td
}

/**
 * A cell that shows the outcome of a check made in this browser against the chain (`check`
 * resolves true or false), or why it cannot be made; resolves with the outcome (false when none).
 */
const checkCell = (row, className, check) => {
  const verdict = cell(row, network.rpcUrl ? 'checking…' : 'no RPC URL')
  verdict.className = className
  if (!network.rpcUrl) return Promise.resolve(false)
  return check().then(
    (ok) => {
      verdict.textContent = ok ? '✓ on-chain' : '✗ not in the root'
      verdict.dataset.verified = String(ok)
      return ok
    },
    (error) => {
      verdict.textContent = `cannot check: ${error.message}`
      return false
    },
  )
}

let classes = new Map()
/** What the browser needs to check proofs against the chain itself. */
let network

async function showSummary() {
  const status = await getJson('/v1/status')
  network = {
    rpcUrl: status.rpcUrl,
    chainId: status.chainId,
    deviceRegistry: status.contracts.deviceRegistry,
    epochManager: status.contracts.epochManager,
    recordKinds: status.recordKinds,
    dashboardPanel: status.dashboardPanel,
  }
  const summary = document.getElementById('summary')
  summary.replaceChildren()
  const items = [
    ['chain', status.chainId],
    ['current epoch', status.currentEpoch],
    ['last settled', status.lastSettledEpoch ? status.lastSettledEpoch.epoch : '—'],
    ['devices', status.devices],
    ['validators', status.validators],
    ['gateways', status.gateways.length],
  ]
  for (const [term, value] of items) {
    const div = document.createElement('div')
    const dt = document.createElement('dt')
    const dd = document.createElement('dd')
    dt.textContent = term
    dd.textContent = String(value)
    dd.dataset.term = term
    div.append(dt, dd)
    summary.append(div)
  }
}

/** The map plane (from /v1/map): where a latitude and longitude land on it. */
let project = () => ({ x: 0, y: 0 })

async function showMap() {
  const map = await getJson('/v1/map')
  const perDegree = map.projection.unitsPerDegree
  project = (lat, lng) => ({ x: (lng + 180) * perDegree, y: (90 - lat) * perDegree })
  classes = new Map(map.classes.map((c) => [c.id, c]))
  const svg = document.getElementById('map')
  svg.replaceChildren()
  const land = document.createElementNS(SVG, 'path')
  land.setAttribute('class', 'land')
  land.setAttribute('d', map.land)
  svg.append(land)
  // zoomed to the devices, with a margin; the whole world when there are none
  const xs = map.devices.map((d) => d.x)
  const ys = map.devices.map((d) => d.y)
  const [minX, maxX] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, map.width]
  const [minY, maxY] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, map.height]
  const margin = Math.max(5, (maxX - minX) * 0.08, (maxY - minY) * 0.08)
  const width = maxX - minX + 2 * margin
  const height = maxY - minY + 2 * margin
  svg.setAttribute('viewBox', `${minX - margin} ${minY - margin} ${width} ${height}`)
  const radius = Math.max(0.15, Math.max(width, height) / 400)
  const select = document.getElementById('device-select')
  select.replaceChildren(select.options[0] ?? new Option('—', ''))
  const dots = new Map()
  for (const device of map.devices) {
    const dot = document.createElementNS(SVG, 'circle')
    dot.setAttribute('cx', device.x)
    dot.setAttribute('cy', device.y)
    dot.setAttribute('r', radius)
    dot.setAttribute('class', device.status)
    dot.dataset.device = device.device
    const title = document.createElementNS(SVG, 'title')
    title.textContent = `${device.device} (class ${device.deviceClass}, ${device.status})`
    dot.append(title)
    dot.addEventListener('click', () => {
      select.value = device.device
      showDevice(device, dot)
    })
    svg.append(dot)
    dots.set(device.device, { device, dot })
    select.append(
      new Option(
        `${short(device.device)} (${device.lat.toFixed(3)}, ${device.lng.toFixed(3)})`,
        device.device,
      ),
    )
  }
  select.onchange = () => {
    const chosen = dots.get(select.value)
    if (chosen) showDevice(chosen.device, chosen.dot)
  }
  // zoom around the pointer: stations of one city sit a few hundred metres apart
  svg.onwheel = (event) => {
    event.preventDefault()
    const [x, y, w, h] = svg.getAttribute('viewBox').split(' ').map(Number)
    const box = svg.getBoundingClientRect()
    const px = x + ((event.clientX - box.left) / box.width) * w
    const py = y + ((event.clientY - box.top) / box.height) * h
    const factor = event.deltaY < 0 ? 0.8 : 1.25
    svg.setAttribute(
      'viewBox',
      `${px - (px - x) * factor} ${py - (py - y) * factor} ${w * factor} ${h * factor}`,
    )
    for (const { dot } of dots.values())
      dot.setAttribute('r', Math.max(0.02, (Math.max(w, h) * factor) / 400))
  }
}

async function showDevice(device, dot) {
  for (const selected of document.querySelectorAll('circle.selected')) selected.classList.remove('selected')
  dot.classList.add('selected')
  const panel = document.getElementById('device')
  const heading = document.createElement('h2')
  heading.textContent = 'Device'
  const id = document.createElement('p')
  id.innerHTML = '<code></code>'
  id.firstChild.textContent = device.device
  const meta = document.createElement('p')
  meta.className = 'note'
  meta.textContent = `owner ${short(device.owner)}, class ${device.deviceClass}, ${device.status}, cell ${device.h3Cell}`
  panel.replaceChildren(heading, id, meta)
  const now = Math.floor(Date.now() / 1000)
  // where the API sells readings (a data-market provider), the device's newest few are free
  const window = await fetch(
    `/v1/readings?device=${device.device}&from=${now - 6 * 3600}&to=${now + 1}&limit=1000`,
  )
  const preview = window.status === 401 || window.status === 402
  if (!preview && !window.ok) throw new Error(`/v1/readings answered ${window.status}`)
  const answer = preview ? await getJson(`/v1/devices/${device.device}/latest`) : await window.json()
  const fields = classes.get(device.deviceClass)?.fields ?? []
  const table = document.createElement('table')
  table.id = 'readings'
  const head = table.createTHead().insertRow()
  for (const name of ['time', ...fields.map((f) => `${f.name} (${f.unit})`), 'proof', 'checked here']) {
    const th = document.createElement('th')
    th.textContent = name
    head.append(th)
  }
  const body = table.createTBody()
  const checks = []
  for (const r of answer.readings.slice(-20).reverse()) {
    const row = body.insertRow()
    cell(row, new Date(Number(r.reading.time) * 1000).toLocaleTimeString())
    for (const [i, v] of r.reading.values.entries()) cell(row, fields[i] ? fixed(v, fields[i].scale) : v)
    cell(
      row,
      `epoch ${r.epoch}: ${r.proof.length} hashes`,
      `leaf ${r.digest}\nagainst the on-chain readings root ${r.readingsRoot}`,
    )
    checks.push(checkCell(row, 'verdict', () => verifyReading(r, network)))
  }
  const count = document.createElement('p')
  count.className = 'note'
  count.textContent = preview
    ? `This API sells its readings on the data market: readings older than ${Number(answer.delaySeconds) < 120 ? `${answer.delaySeconds} seconds` : `${Math.round(Number(answer.delaySeconds) / 60)} minutes`} are free here (the device's newest ${answer.readings.length} of them, each proven against its epoch's on-chain readings root); live ones with \`depin readings --consumer-key-file\`.`
    : answer.readings.length
      ? `${answer.readings.length} readings settled in the last 6 hours, each proven against its epoch's on-chain readings root (latest 20 shown).`
      : 'No settled readings in the last 6 hours.'
  const verified = document.createElement('p')
  verified.id = 'verified'
  verified.className = 'note'
  // the use case's view of the device (the environment's: a chart per field), in a box of its own
  const view = document.createElement('div')
  view.className = 'use-case-device'
  panel.append(count, view, verified, table)
  for (const listener of deviceListeners) {
    try {
      listener(device, { readings: answer.readings, fields, element: view, width: panel.clientWidth })
    } catch (error) {
      view.textContent = `The use case's view of this device failed: ${error.message}`
    }
  }
  const results = await Promise.all(checks)
  verified.textContent = network.rpcUrl
    ? `${results.filter(Boolean).length} of ${results.length} shown checked in this browser against the chain's readings roots (eth_call to ${network.rpcUrl}).`
    : 'The API gave no chain RPC URL: proofs not checked here.'
  verified.dataset.done = 'true'
  await showReceipts(device, panel)
}

/** Why the device earned what it earned: its receipts of the last settled epochs, each checked here. */
async function showReceipts(device, panel) {
  const answer = await getJson(`/v1/devices/${device.device}/receipts?limit=8`)
  const heading = document.createElement('h3')
  heading.textContent = 'Rewards, explained'
  const table = document.createElement('table')
  table.id = 'receipts'
  const head = table.createTHead().insertRow()
  for (const name of [
    'epoch',
    'submitted',
    'accepted',
    'rejected',
    'share',
    'reward',
    'usage',
    'checked here',
  ]) {
    const th = document.createElement('th')
    th.textContent = name
    head.append(th)
  }
  const body = table.createTBody()
  const checks = []
  for (const r of answer.receipts) {
    const row = body.insertRow()
    row.title = r.explanation
    cell(row, r.epoch)
    cell(row, String(r.receipt.submitted))
    cell(row, String(r.receipt.accepted))
    const reasons = Object.entries(r.rejectedByReason)
    cell(row, reasons.length ? reasons.map(([reason, n]) => `${reason} ${n}`).join(', ') : '—')
    const total = BigInt(r.receipt.totalWeight)
    const shareBps = total === 0n ? 0n : (BigInt(r.receipt.weight) * 10_000n) / total
    cell(
      row,
      `${shareBps / 100n}.${(shareBps % 100n).toString().padStart(2, '0')} %`,
      `weight ${r.receipt.weight} of ${total}`,
    )
    cell(row, tokens(r.receipt.reward), `${exact(r.receipt.reward)} from emission`)
    cell(row, exact(r.usageFee ?? '0'), "consumers' fees for this device's readings, to its owner")
    checks.push(checkCell(row, 'receipt-verdict', () => verifyReceipt(r, network, device.device)))
  }
  const latest = document.createElement('p')
  latest.className = 'note'
  latest.id = 'receipt-explanation'
  latest.textContent =
    answer.receipts[0]?.explanation ?? 'No receipts yet: the device sent nothing in a settled epoch.'
  const verified = document.createElement('p')
  verified.id = 'receipts-verified'
  verified.className = 'note'
  panel.append(heading, latest, earningsChart(answer.receipts), table, verified)
  const results = await Promise.all(checks)
  verified.textContent = network.rpcUrl
    ? `${results.filter(Boolean).length} of ${results.length} receipts checked in this browser against the receipts roots of the chain's ReportAccepted events (eth_getLogs to ${network.rpcUrl}).`
    : 'The API gave no chain RPC URL: receipts not checked here.'
  verified.dataset.done = 'true'
}

/**
 * A device's earnings per epoch as stacked bars: emission (its receipt's reward) below, usage
 * (consumers' fees for its readings) above, oldest epoch first.
 */
function earningsChart(receipts) {
  const figure = document.createElement('figure')
  figure.id = 'earnings'
  const rows = [...receipts].reverse().map((r) => ({
    epoch: r.epoch,
    emission: BigInt(r.receipt.reward),
    usage: BigInt(r.usageFee ?? '0'),
  }))
  let most = 1n
  for (const r of rows) if (r.emission + r.usage > most) most = r.emission + r.usage
  const width = 320
  const height = 90
  const svg = document.createElementNS(SVG, 'svg')
  svg.setAttribute('viewBox', `0 0 ${width} ${height + 14}`)
  svg.setAttribute('role', 'img')
  svg.setAttribute('aria-label', 'earnings per epoch: emission and usage')
  const slot = width / Math.max(rows.length, 1)
  const scale = (v) => Number((v * BigInt(height * 1000)) / most) / 1000
  for (const [i, r] of rows.entries()) {
    let top = height
    for (const [part, value] of [
      ['emission', r.emission],
      ['usage', r.usage],
    ]) {
      const h = scale(value)
      const rect = document.createElementNS(SVG, 'rect')
      rect.setAttribute('x', String(i * slot + slot * 0.15))
      rect.setAttribute('width', String(slot * 0.7))
      rect.setAttribute('y', String(top - h))
      rect.setAttribute('height', String(h))
      rect.setAttribute('class', `bar ${part}`)
      rect.dataset.part = part
      rect.dataset.epoch = r.epoch
      const title = document.createElementNS(SVG, 'title')
      title.textContent = `epoch ${r.epoch}: ${exact(value)} ${part}`
      rect.append(title)
      svg.append(rect)
      top -= h
    }
    const label = document.createElementNS(SVG, 'text')
    label.setAttribute('x', String(i * slot + slot / 2))
    label.setAttribute('y', String(height + 12))
    label.setAttribute('text-anchor', 'middle')
    label.textContent = r.epoch
    svg.append(label)
  }
  const caption = document.createElement('figcaption')
  const usage = rows.reduce((sum, r) => sum + r.usage, 0n)
  const emission = rows.reduce((sum, r) => sum + r.emission, 0n)
  caption.className = 'note'
  caption.textContent = `Earnings per epoch: emission ${exact(emission)} (dark), usage ${exact(usage)} (light) over the epochs shown.`
  figure.append(svg, caption)
  return figure
}

/** The data market: the provider and its prices, and a consumer's deposit and spending. */
async function showMarket(status) {
  const section = document.getElementById('market')
  const intro = document.getElementById('market-intro')
  if (!status.market) {
    intro.textContent = 'This API is not a data-market provider: its readings are free.'
  } else {
    const { prices, provider } = status.market
    intro.textContent = `This API sells readings as provider ${short(provider)}: ${exact(prices.reading)} a reading, ${exact(prices.aggregate)} an aggregate, ${exact(prices.streamedReading)} a streamed reading, paid from a deposit on the DataMarket ${short(status.market.market)}.`
  }
  const form = document.getElementById('consumer-form')
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const address = document.getElementById('consumer').value.trim()
    showConsumer(address, status.contracts.dataMarket).catch((error) => {
      document.getElementById('consumer-view').textContent = `Cannot show ${address}: ${error.message}`
    })
  })
  section.dataset.ready = 'true'
}

/** A consumer's deposit (read from the chain here) and what it paid, redemption by redemption. */
async function showConsumer(address, market) {
  const view = document.getElementById('consumer-view')
  view.replaceChildren()
  const answer = await getJson(`/v1/market/consumers/${address}`)
  const deposit = document.createElement('p')
  deposit.id = 'consumer-deposit'
  if (network.rpcUrl) {
    // DataMarket.accountOf(consumer) → (balance, withdrawal, dueAt)
    const data = `0x8086b8ba${answer.consumer.slice(2).toLowerCase().padStart(64, '0')}`
    const result = await fetch(network.rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'eth_call',
        params: [{ to: market, data }, 'latest'],
      }),
    }).then((r) => r.json())
    // three words: (balance, withdrawal, dueAt); anything shorter is not the DataMarket answering
    if (typeof result.result !== 'string' || !/^0x[0-9a-fA-F]{192}$/.test(result.result))
      throw new Error(
        result.error?.message ??
          `the chain gave no deposit for ${answer.consumer} (${String(result.result)})`,
      )
    const word = (i) => BigInt(`0x${result.result.slice(2 + 64 * i, 2 + 64 * (i + 1))}`)
    const withdrawal = word(1)
    deposit.textContent = `Deposit ${exact(word(0))}${withdrawal > 0n ? `, of which ${exact(withdrawal)} announced for withdrawal` : ''} (read from the chain here).`
    deposit.dataset.balance = String(word(0))
  } else deposit.textContent = 'The API gave no chain RPC URL: deposit not read.'
  const spent = document.createElement('p')
  spent.id = 'consumer-spent'
  spent.dataset.spent = answer.spent
  const readings = Object.values(answer.readingsPaidFor).reduce((sum, n) => sum + BigInt(n), 0n)
  spent.textContent = `Spent ${exact(answer.spent)} in ${answer.redemptions.length} redemptions, for ${readings} readings.`
  const table = document.createElement('table')
  table.id = 'consumer-redemptions'
  const head = table.createTHead().insertRow()
  for (const name of ['time', 'provider', 'paid', 'cumulative', 'readings', 'tx']) {
    const th = document.createElement('th')
    th.textContent = name
    head.append(th)
  }
  const body = table.createTBody()
  for (const r of [...answer.redemptions].reverse().slice(0, 20)) {
    const row = body.insertRow()
    cell(row, new Date(Number(r.blockTimestamp) * 1000).toLocaleString())
    cell(row, short(r.provider), r.provider)
    cell(row, exact(r.amount))
    cell(row, exact(r.cumulativeAmount))
    cell(row, r.servedCount)
    cell(row, short(r.txHash), r.txHash)
  }
  view.append(deposit, spent)
  if (answer.redemptions.length > 1 && globalThis.uPlot) {
    // cumulative spending over time
    const chart = document.createElement('div')
    chart.id = 'consumer-chart'
    view.append(chart)
    let total = 0n
    const points = answer.redemptions.map((r) => {
      total += BigInt(r.amount)
      return [Number(r.blockTimestamp), Number(total / 10n ** 12n) / 1e6]
    })
    new globalThis.uPlot(
      {
        width: Math.min(view.clientWidth || 480, 640),
        height: 160,
        series: [{}, { label: 'spent', stroke: '#2a6f97', width: 2 }],
        axes: [{}, { label: 'tokens' }],
      },
      [points.map((p) => p[0]), points.map((p) => p[1])],
      chart,
    )
  }
  view.append(table)
  view.dataset.done = 'true'
}

function addEpoch(epoch, fresh) {
  const body = document.querySelector('#epochs tbody')
  if (body.querySelector(`tr[data-epoch="${epoch.epoch}"]`)) return
  const row = body.insertRow(0)
  row.dataset.epoch = epoch.epoch
  if (fresh) row.className = 'new'
  cell(row, epoch.epoch)
  cell(row, epoch.accepted)
  cell(row, tokens(epoch.minted))
  cell(row, epoch.signers.length, epoch.signers.join('\n'))
  cell(row, short(epoch.readingsRoot), epoch.readingsRoot)
  cell(row, short(epoch.txHash), epoch.txHash)
  while (body.rows.length > 12) body.deleteRow(-1)
}

async function showEpochs() {
  const { epochs } = await getJson('/v1/epochs?limit=12')
  for (const epoch of [...epochs].reverse()) addEpoch(epoch, false)
}

async function showValidators() {
  const { validators } = await getJson('/v1/validators')
  const body = document.querySelector('#validators tbody')
  body.replaceChildren()
  for (const v of validators) {
    const row = body.insertRow()
    cell(row, short(v.validator), v.validator)
    cell(row, v.status)
    cell(row, tokens(v.bond))
    cell(row, v.lastSignedEpoch ?? '—')
    cell(row, `${(v.agreementBps / 100).toFixed(0)} %`)
    // why it is missing from recent settled reports: left out by the leader, signed another, not seen
    const { notIncluded, signedOther, silent } = v.missedRecent
    const missed = [
      notIncluded ? `${notIncluded} left out` : '',
      signedOther ? `${signedOther} signed another` : '',
      silent ? `${silent} not seen` : '',
    ].filter(Boolean)
    cell(row, missed.length ? missed.join(', ') : '—')
    cell(row, v.live ? 'yes' : 'no')
  }
}

function followStream() {
  const live = document.getElementById('live')
  const stream = new EventSource('/v1/stream')
  stream.addEventListener('open', () => {
    live.textContent = 'live'
    live.classList.add('on')
  })
  stream.addEventListener('error', () => {
    live.textContent = 'reconnecting…'
    live.classList.remove('on')
  })
  stream.addEventListener('epoch', (event) => {
    const epoch = JSON.parse(event.data)
    addEpoch(epoch, true)
    for (const listener of epochListeners) listener(epoch)
    showSummary().catch(() => {})
    showValidators().catch(() => {})
  })
}

const epochListeners = new Set()
const deviceListeners = new Set()

/**
 * What a use case's dashboard panel (its folder's module, served as /dashboard/panel.js) gets from
 * the shell: it draws in a map layer and a section of its own, reads the API, checks proofs in
 * this browser and hears of each settled epoch. Nothing else of the shell is its to touch.
 */
const shell = {
  get network() {
    return network
  },
  getJson,
  short,
  tokens,
  project: (lat, lng) => project(lat, lng),
  /** A group of the map below the devices' dots (one per name). */
  mapLayer(name) {
    const svg = document.getElementById('map')
    const existing = svg.querySelector(`g[data-layer="${name}"]`)
    if (existing) return existing
    const group = document.createElementNS(SVG, 'g')
    group.dataset.layer = name
    svg.insertBefore(group, svg.querySelector('path.land')?.nextSibling ?? svg.firstChild)
    return group
  },
  /** A section of the page under the map, headed `title`. */
  section(title) {
    const section = document.createElement('section')
    section.className = 'panel'
    const heading = document.createElement('h2')
    heading.textContent = title
    section.append(heading)
    document.querySelector('main').after(section)
    return section
  },
  verifyReceipt: (proven, device) => verifyReceipt(proven, network, device),
  /** Calls `listener(epoch)` for every epoch the live stream reports settled. */
  onEpoch: (listener) => epochListeners.add(listener),
  /**
   * Calls `listener(device, { readings, fields, element, width })` each time a device is shown:
   * its settled readings of the last hours (as /v1/readings serves them), its class's fields, and
   * an element of the device's section that is the use case's to fill.
   */
  onDevice: (listener) => deviceListeners.add(listener),
}

await Promise.all([showSummary(), showMap(), showEpochs(), showValidators()])
getJson('/v1/status')
  .then(showMarket)
  .catch((error) => {
    document.getElementById('market-intro').textContent = `The market cannot be shown: ${error.message}`
  })
followStream()
if (network.dashboardPanel) {
  try {
    const panel = await import(network.dashboardPanel)
    await panel.mount(shell)
  } catch (error) {
    const note = document.createElement('p')
    note.className = 'note error'
    note.textContent = `The use case's panel failed to load: ${error.message}`
    document.querySelector('main').after(note)
  }
}
document.body.dataset.ready = 'true'
// for scripts and tests: check any proven reading the same way
globalThis.depin = {
  verifyReading: (proven) => verifyReading(proven, network),
  verifyReceipt: (proven, device) => verifyReceipt(proven, network, device),
}
