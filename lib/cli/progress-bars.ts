// What `fastify-tus upload` shows while it works: on a terminal, a progress
// bar per file (bytes, rate, ETA) on stderr, so that stdout keeps only the
// result lines; elsewhere nothing until the end.
import { MultiBar, type SingleBar } from 'cli-progress'

export interface FileProgress {
  /** `bytes` of `total` are sent (or were already on the server). */
  update (bytes: number, total: number): void
  /** The file is done or failed: the bar stops moving. */
  end (): void
}

export interface Progress {
  file (name: string, total: number): FileProgress
  /** Stops drawing; the result lines come after. */
  stop (): void
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

export function formatBytes (bytes: number): string {
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`
}

export function formatDuration (seconds: number): string {
  if (!Number.isFinite(seconds)) return '--'
  const whole = Math.round(seconds)
  const minutes = Math.floor(whole / 60)
  return minutes === 0 ? `${whole}s` : `${minutes}m${String(whole % 60).padStart(2, '0')}s`
}

/** Bars on a terminal, nothing elsewhere. */
export function createProgress (stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY !== true) return { file: () => ({ update () {}, end () {} }), stop () {} }
  const bars = new MultiBar({
    stream,
    format: '{name} |{bar}| {percentage}% {sent}/{size} {rate} ETA {remaining}',
    barsize: 30,
    hideCursor: true,
    // Its own SIGINT listener would stop the bars and keep the process running: the command handles signals.
    gracefulExit: false
  })
  return {
    file: (name, total) => fileBar(bars.create(total, 0, { name, sent: formatBytes(0), size: formatBytes(total), rate: '--', remaining: '--' })),
    stop: () => bars.stop()
  }
}

function fileBar (bar: SingleBar): FileProgress {
  // Rate and ETA count only this run's bytes: a resumed upload starts at the server's offset.
  let first: { bytes: number, at: number } | undefined
  return {
    update (bytes, total) {
      const now = Date.now()
      first = first ?? { bytes, at: now }
      const seconds = (now - first.at) / 1000
      const rate = seconds > 0 ? (bytes - first.bytes) / seconds : 0
      bar.setTotal(total)
      bar.update(bytes, {
        sent: formatBytes(bytes),
        size: formatBytes(total),
        rate: rate > 0 ? `${formatBytes(rate)}/s` : '--',
        remaining: rate > 0 ? formatDuration((total - bytes) / rate) : '--'
      })
    },
    end () { bar.stop() }
  }
}
