// The README's performance table, made from the same run as benchmark/results.md
// (`--write` writes both): one row per scenario, each fastify-tus configuration
// as a ratio to @tus/server in that run, and the bare app against the disk ceiling.
import { readFileSync, writeFileSync } from 'node:fs'

export const START = '<!-- benchmark table: written by `npm run bench -- --write` -->'
export const END = '<!-- end of benchmark table -->'

const COLUMNS = [
  ['fastify-tus', 'fastify-tus, fsync on'],
  ['fastify-tus-serve', '`fastify-tus serve`'],
  ['fastify-tus-logger', 'logger: info'],
  ['fastify-tus-nofsync', 'fsync off']
]

/**
 * `results`: [{ scenario, byServer: Map(key → { figures }) }]; `format(scenario, figures)` gives
 * a throughput with its unit, `ratio(a, b)` a ratio, `unitOf(scenario)` the CPU unit.
 */
export function readmeTable (results, { format, ratio, number, unitOf }) {
  const lines = [
    `| scenario | ${COLUMNS.map(([, label]) => label).join(' | ')} | fsync on vs the disk ceiling | server CPU, fsync on | peak RSS, fsync on |`,
    `| --- | ${COLUMNS.map(() => '---').join(' | ')} | --- | --- | --- |`
  ]
  for (const { scenario, byServer } of results) {
    const of = (key) => byServer.get(key)?.figures
    const base = of('tus-server')
    const bare = of('fastify-tus')
    const cells = COLUMNS.map(([key], index) => {
      const f = of(key)
      if (f === undefined) return '–'
      return index === 0 ? `${format(scenario, f)}, ${ratio(f.rate, base?.rate)}` : ratio(f.rate, base?.rate)
    })
    const disk = of('fsync-sink')
    const ceiling = disk === undefined || bare === undefined ? '–' : `${ratio(bare.rate, disk.rate)} of ${format(scenario, disk)}`
    const cpu = bare === undefined ? '–' : `${number(bare.cpu)} ${unitOf(scenario)}, ${ratio(bare.cpu, base?.cpu)}`
    const rss = bare === undefined ? '–' : `${number(bare.rss, 0)} MiB, ${ratio(bare.rss, base?.rss)}`
    lines.push(`| ${scenario.title} | ${cells.join(' | ')} | ${ceiling} | ${cpu} | ${rss} |`)
  }
  return lines.join('\n')
}

/** Replaces the table between the README's markers. */
export function writeReadmeTable (file, table) {
  const text = readFileSync(file, 'utf8')
  const start = text.indexOf(START)
  const end = text.indexOf(END)
  if (start < 0 || end < start) throw new Error(`${file} has no benchmark table markers`)
  writeFileSync(file, `${text.slice(0, start + START.length)}\n${table}\n${text.slice(end)}`)
}
