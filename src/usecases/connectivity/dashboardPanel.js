// The connectivity network's dashboard panel (served as /dashboard/panel.js): the coverage map of
// the last settled epoch as a layer of the dashboard's map, one hexagon per H3 cell where a
// hotspot's beacon was heard by rewarded witnesses. Each cell's receipts are checked in this
// browser against the receipts root of the epoch's ReportAccepted event on the chain; a cell is
// drawn as proven only when every one of them verifies. Text goes in with textContent only.

const SVG = 'http://www.w3.org/2000/svg'

export async function mount(shell) {
  const section = shell.section('Coverage')
  section.id = 'coverage'
  const caption = document.createElement('p')
  caption.className = 'note'
  caption.id = 'coverage-summary'
  caption.textContent = 'No settled epoch yet.'
  const table = document.createElement('table')
  table.id = 'coverage-cells'
  const head = table.createTHead().insertRow()
  for (const name of ['cell', 'hotspots', 'rewarded witnesses', 'checked here']) {
    const th = document.createElement('th')
    th.textContent = name
    head.append(th)
  }
  const body = table.createTBody()
  section.append(caption, table)
  const layer = shell.mapLayer('coverage')

  let drawn // the epoch on the map
  let drawing = Promise.resolve()
  const draw = async (epoch) => {
    const coverage = await shell.getJson(epoch === undefined ? '/v1/coverage' : `/v1/coverage?epoch=${epoch}`)
    if (coverage.epoch === null || coverage.epoch === drawn) return
    drawn = coverage.epoch
    caption.dataset.done = 'false'
    caption.dataset.epoch = String(coverage.epoch)
    const cells = new Map()
    for (const entry of coverage.cells) {
      const known = cells.get(entry.cell) ?? { boundary: entry.boundary, entries: [] }
      known.entries.push(entry)
      cells.set(entry.cell, known)
    }
    layer.replaceChildren()
    body.replaceChildren()
    caption.textContent = `Epoch ${coverage.epoch}: ${cells.size} cells (H3 resolution ${coverage.resolution}) covered by ${coverage.cells.length} hotspots; checking their receipts against the chain…`
    const checks = [...cells].map(async ([cell, { boundary, entries }]) => {
      const hexagon = document.createElementNS(SVG, 'polygon')
      hexagon.setAttribute(
        'points',
        boundary
          .map(([lat, lng]) => {
            const { x, y } = shell.project(lat, lng)
            return `${x},${y}`
          })
          .join(' '),
      )
      hexagon.setAttribute('class', 'coverage-cell')
      hexagon.dataset.cell = cell
      const witnesses = entries.reduce((sum, e) => sum + BigInt(e.witnesses), 0n)
      const title = document.createElementNS(SVG, 'title')
      title.textContent = `cell ${cell}: ${entries.length} hotspots, ${witnesses} rewarded witnesses of their beacons`
      hexagon.append(title)
      layer.append(hexagon)
      const row = body.insertRow()
      row.dataset.cell = cell
      for (const text of [cell, entries.map((e) => shell.short(e.hotspot)).join(', '), String(witnesses)])
        row.insertCell().textContent = text
      const verdict = row.insertCell()
      verdict.className = 'coverage-verdict'
      if (!shell.network.rpcUrl) {
        verdict.textContent = 'no RPC URL'
        return false
      }
      verdict.textContent = 'checking…'
      const results = await Promise.all(
        entries.map((e) =>
          shell
            .verifyReceipt({ epoch: coverage.epoch, receipt: e.receipt, proof: e.proof }, e.hotspot)
            .catch(() => false),
        ),
      )
      const ok = results.every(Boolean)
      hexagon.dataset.verified = String(ok)
      verdict.dataset.verified = String(ok)
      verdict.textContent = ok ? '✓ on-chain' : '✗ not in the root'
      return ok
    })
    const results = await Promise.all(checks)
    caption.textContent = `Epoch ${coverage.epoch}: ${cells.size} cells (H3 resolution ${coverage.resolution}) covered by ${coverage.cells.length} hotspots; ${results.filter(Boolean).length} of ${cells.size} cells proven in this browser against the receipts root of the chain's ReportAccepted event.`
    caption.dataset.done = 'true'
  }
  const redraw = (epoch) => {
    drawing = drawing
      .then(() => draw(epoch))
      .catch((error) => {
        caption.textContent = `Coverage could not be drawn: ${error.message}`
      })
    return drawing
  }
  shell.onEpoch((epoch) => redraw(epoch.epoch))
  await redraw()
}
