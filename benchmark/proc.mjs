// What the harness reads about a server process from /proc, and about the machine.
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

// A server may be several processes (`serve --workers`): the figures below cover
// the process and every descendant alive when they are read.
function processTree (pid) {
  const pids = [pid]
  for (let index = 0; index < pids.length; index++) {
    let tasks = []
    try {
      tasks = readdirSync(`/proc/${pids[index]}/task`)
    } catch {} // gone meanwhile
    for (const task of tasks) {
      try {
        pids.push(...readFileSync(`/proc/${pids[index]}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number))
      } catch {}
    }
  }
  return pids
}

/** utime and stime of a process and its descendants (all their threads), in seconds. */
export function cpuTimes (pid) {
  let user = 0
  let system = 0
  for (const each of processTree(pid)) {
    const stat = readFileSync(`/proc/${each}/stat`, 'utf8')
    // The command name may hold spaces and parentheses: fields are counted after its closing ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    user += Number(fields[11]) / CLK_TCK
    system += Number(fields[12]) / CLK_TCK
  }
  return { user, system }
}

/** VmRSS and VmHWM (peak RSS since start or the last reset), in bytes, summed over the process and its descendants. */
export function memory (pid) {
  let rss = 0
  let hwm = 0
  for (const each of processTree(pid)) {
    const status = readFileSync(`/proc/${each}/status`, 'utf8')
    rss += kib(status, 'VmRSS')
    hwm += kib(status, 'VmHWM')
  }
  return { rss, hwm }
}

function kib (status, field) {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
  return match === null ? 0 : Number(match[1]) * 1024
}

/** Resets VmHWM to the current RSS so that the peak covers only what follows; false where the kernel refuses. */
export function resetPeak (pid) {
  try {
    for (const each of processTree(pid)) writeFileSync(`/proc/${each}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/** Samples VmRSS every `every` ms; stop() returns the highest seen. */
export function sampleRss (pid, every = 20) {
  let peak = 0
  const sample = () => {
    try {
      peak = Math.max(peak, memory(pid).rss)
    } catch {} // the process is gone; the run reports its own failure
  }
  sample()
  const timer = setInterval(sample, every)
  return () => {
    clearInterval(timer)
    sample()
    return peak
  }
}

// ext4 with a journal has a jbd2 entry named after its device (vda-8): without one,
// creating files right after deleting many costs much more (benchmark/README.md).
function journalOf (device) {
  const name = path.basename(device)
  try {
    return readdirSync('/proc/fs/jbd2').some((entry) => entry.startsWith(`${name}-`)) ? ', journal' : ', no journal'
  } catch (error) {
    return error.code === 'ENOENT' ? ', no journal' : ''
  }
}

export function machine () {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown'
  let filesystem = 'unknown'
  try {
    // df -T: Filesystem Type 1K-blocks Used Available Use% Mounted on
    const line = execFileSync('df', ['-T', os.tmpdir()], { encoding: 'utf8' }).trim().split('\n').pop()
    const [device, type, , , , , mount] = line.split(/\s+/)
    filesystem = `${type}${type === 'ext4' ? journalOf(device) : ''} (${device} on ${mount})`
  } catch {}
  return {
    cpu: model,
    cores: os.availableParallelism(),
    ram: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    tmpdir: `${os.tmpdir()}: ${filesystem}`,
    load: os.loadavg().map((value) => value.toFixed(2)).join(' ')
  }
}
