// The parts of fs-ext this package and its tests use (it ships no types).
declare module 'fs-ext' {
  export interface StatVFS { f_bsize: number, f_frsize: number, f_blocks: number, f_bfree: number, f_bavail: number, f_files: number, f_ffree: number, f_favail: number, f_namemax: number }
  export function flock (fd: number, flags: 'sh' | 'ex' | 'shnb' | 'exnb' | 'un', callback: (error: NodeJS.ErrnoException | null) => void): void
  export function flockSync (fd: number, flags: 'sh' | 'ex' | 'shnb' | 'exnb' | 'un'): void
  export function statVFS (path: string, callback: (error: NodeJS.ErrnoException | null, stats: StatVFS) => void): void
}
