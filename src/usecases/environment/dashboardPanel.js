// The environmental sensors' dashboard panel (served as /dashboard/panel.js): beside a device's
// table of proven readings, its readings of the last hours over time, one small uPlot chart per
// field of its class (the values as the API serves them, fixed point shown in the field's units;
// display only). uPlot is the dashboard shell's (its browser build, from node_modules).

export function mount(shell) {
  shell.onDevice((_device, { readings, fields, element, width }) => {
    element.append(readingsChart(readings, fields, width))
  })
}

function readingsChart(readings, fields, width) {
  const box = document.createElement('div')
  box.id = 'readings-chart'
  if (readings.length === 0 || fields.length === 0 || !globalThis.uPlot) return box
  const sorted = [...readings].sort((a, b) => Number(BigInt(a.reading.time) - BigInt(b.reading.time)))
  const times = sorted.map((r) => Number(r.reading.time))
  fields.forEach((field, i) => {
    const values = sorted.map((r) => Number(r.reading.values[i]) / 10 ** field.scale)
    const chart = new globalThis.uPlot(
      {
        title: `${field.name} (${field.unit})`,
        width: Math.max(240, width - 8),
        height: 110,
        legend: { show: false },
        scales: { x: { time: true } },
        series: [{}, { label: field.name, stroke: '#2b6cb0', width: 1.5, points: { size: 3 } }],
        axes: [{ size: 28 }, { size: 60 }],
      },
      [times, values],
      box,
    )
    chart.root.dataset.field = field.name
  })
  return box
}
