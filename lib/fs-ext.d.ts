// The parts of fs-ext this package uses (it ships no types).
declare module 'fs-ext' {
  export interface StatVFS { bsize: number, frsize: number, blocks: number, bfree: number, bavail: number, files: number, ffree: number, favail: number, fsid: number, flag: number, namemax: number }
  export function flock (fd: number, flags: 'sh' | 'ex' | 'shnb' | 'exnb' | 'un', callback: (error: NodeJS.ErrnoException | null) => void): void
  export function flockSync (fd: number, flags: 'sh' | 'ex' | 'shnb' | 'exnb' | 'un'): void
  export function statVFS (path: string, callback: (error: NodeJS.ErrnoException | null, stats: StatVFS) => void): void
}
