// Plumbing for the power-cut tests: powercutfs (test/powercut/powercutfs.py), a
// FUSE filesystem that forgets every change not made durable when its power is
// cut, mounted in a temporary directory, and the cut itself.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { tempDir } from './helpers'

const POWERCUTFS = path.join(__dirname, 'powercut', 'powercutfs.py')
const PYTHON = '/usr/bin/python3' // Debian's, the one python3-fusepy installs into

type Teardown = Parameters<typeof tempDir>[0]

/** Why this machine cannot run the test, or undefined when it can. */
export function missingPrerequisite (): string | undefined {
  if (!fs.existsSync('/dev/fuse')) return 'powercut test needs /dev/fuse (FUSE), which this machine does not have'
  // powercutfs imports Debian's fusepy, or upstream's module of the same code named fuse.
  const probe = spawnSync(PYTHON, ['-c', 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("fusepy") or u.find_spec("fuse") else 1)'], { encoding: 'utf8' })
  if (probe.error !== undefined || probe.status !== 0) {
    const detail = probe.error?.message ?? probe.stderr.trim()
    return `powercut test needs Debian's python3-fusepy for ${PYTHON}: run "apt-get update && apt-get install -y python3-fusepy"${detail === '' ? '' : ` (${detail})`}`
  }
  return undefined
}

export interface Mount {
  mnt: string
  uploads: string
  completed: string
}

const isMounted = (mnt: string): boolean =>
  fs.readFileSync('/proc/mounts', 'utf8').split('\n').some((line) => line.split(' ')[1] === mnt)

export async function exited (child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true
  return await Promise.race([
    new Promise<boolean>((resolve) => child.once('exit', () => resolve(true))),
    sleep(ms, false, { ref: false })
  ])
}

async function unmount (mnt: string, daemon: ChildProcess): Promise<void> {
  for (let i = 0; i < 50 && isMounted(mnt); i++) {
    spawnSync('umount', [mnt])
    if (isMounted(mnt)) await sleep(100)
  }
  if (isMounted(mnt)) spawnSync('umount', ['-l', mnt])
  if (!await exited(daemon, 5000)) daemon.kill('SIGKILL')
}

/** A fresh powercutfs mount with durable uploads/ and completed/ in it; unmounted at teardown. */
export async function mountPowercutfs (t: Teardown): Promise<Mount> {
  const root = await tempDir(t, 'fastify-tus-powercut-')
  const backing = path.join(root, 'backing')
  const mnt = path.join(root, 'mnt')
  fs.mkdirSync(backing)
  fs.mkdirSync(mnt)
  const log = path.join(root, 'powercutfs.log')
  const logFd = fs.openSync(log, 'a')
  const daemon = spawn(PYTHON, [POWERCUTFS, backing, mnt], { stdio: ['ignore', logFd, logFd] })
  fs.closeSync(logFd)
  // Registered after tempDir's, so it runs before the directory is removed.
  t.teardown(() => unmount(mnt, daemon))
  for (let i = 0; i < 100 && !isMounted(mnt); i++) {
    if (daemon.exitCode !== null) break
    await sleep(100)
  }
  if (!isMounted(mnt)) throw new Error(`powercutfs did not mount; its log:\n${fs.readFileSync(log, 'utf8')}`)
  const mount = { mnt, uploads: path.join(mnt, 'uploads'), completed: path.join(mnt, 'completed') }
  fs.mkdirSync(mount.uploads)
  fs.mkdirSync(mount.completed)
  fs.closeSync(fs.openSync(path.join(mnt, '.powercut-sync'), 'w'))
  return mount
}

/** Main thread state of a process, from /proc (T = stopped). */
function processState (pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2)[0]
}

/**
 * Cuts the power under running processes. They are stopped first, so none can
 * touch the filesystem between the cut and its death: every answer or message
 * they ever sent was sent before the cut.
 */
export async function powerCut (mount: Mount, children: ChildProcess[]): Promise<void> {
  const live = children.filter((child) => child.exitCode === null && child.signalCode === null)
  for (const child of live) child.kill('SIGSTOP')
  for (const child of live) {
    const deadline = Date.now() + 30_000
    while (processState(child.pid!) !== 'T') {
      if (Date.now() > deadline) throw new Error(`process ${child.pid!} did not stop (state ${processState(child.pid!)})`)
      await sleep(5)
    }
  }
  fs.closeSync(fs.openSync(path.join(mount.mnt, '.powercut'), 'w'))
  for (const child of live) child.kill('SIGKILL')
  for (const child of live) if (!await exited(child, 30_000)) throw new Error(`process ${child.pid!} did not die after SIGKILL`)
}

// The first of `files` that can be opened, read through one descriptor: the live server may remove
// a name (the old name of handed-over data, or a worker moving it on) between two looks.
export function readPrefix (files: string[], length: number): { file: string, bytes: Buffer, size: number } | undefined {
  for (const file of files) {
    let fd: number
    try {
      fd = fs.openSync(file, 'r')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw error
    }
    try {
      const buffer = Buffer.alloc(length)
      let filled = 0
      while (filled < length) {
        const n = fs.readSync(fd, buffer, filled, length - filled, filled)
        if (n === 0) break
        filled += n
      }
      return { file, bytes: buffer.subarray(0, filled), size: fs.fstatSync(fd).size }
    } finally {
      fs.closeSync(fd)
    }
  }
  return undefined
}
