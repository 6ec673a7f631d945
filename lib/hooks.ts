// The plugin's own lifecycle hooks (Fastify refuses hook names it does not
// know). Listeners run in the order added; a hook that may reject stops the
// request with the listener's error, the others only log what they throw.
import type { FastifyBaseLogger } from 'fastify'
import type { TusHookHandlers, TusHookName, TusHooksOption, UploadRecord } from '../types/index'
import { FST_TUS_HOOK_AFTER_READY, FST_TUS_INVALID_HOOK } from './errors'

export const HOOK_NAMES: readonly TusHookName[] = [
  'tus:preCreate', 'tus:created', 'tus:preAccess', 'tus:progress', 'tus:preFinish',
  'tus:completed', 'tus:preTerminate', 'tus:terminated', 'tus:failed'
]

type Listeners = { [K in TusHookName]: Array<TusHookHandlers[K]> }
type Args<K extends TusHookName> = Parameters<TusHookHandlers[K]>

export class Hooks {
  private readonly listeners: Listeners
  private sealed = false
  // An error reaches tus:failed once, however many layers it is rethrown through.
  // Kept with the upload it failed, for the request's log line.
  private readonly reported = new WeakMap<object, UploadRecord | null>()

  constructor (initial: TusHooksOption = {}) {
    this.listeners = Object.fromEntries(HOOK_NAMES.map((name) => [name, []])) as unknown as Listeners
    this.addAll(initial)
  }

  /** Adds every listener of a `hooks` option. */
  addAll (initial: TusHooksOption): void {
    for (const name of Object.keys(initial) as TusHookName[]) {
      const value = initial[name]
      for (const listener of Array.isArray(value) ? value : [value]) this.add(name, listener as TusHookHandlers[typeof name])
    }
  }

  add<K extends TusHookName> (name: K, listener: TusHookHandlers[K]): void {
    if (this.sealed) throw new FST_TUS_HOOK_AFTER_READY(name)
    if (!HOOK_NAMES.includes(name)) throw new FST_TUS_INVALID_HOOK(String(name), `not a hook; the hooks are ${HOOK_NAMES.join(', ')}`)
    if (typeof listener !== 'function') throw new FST_TUS_INVALID_HOOK(name, 'the listener must be a function')
    this.listeners[name].push(listener)
  }

  /** No listener may be added once the server is ready, as with Fastify's own hooks. */
  seal (): void {
    this.sealed = true
  }

  has (name: TusHookName): boolean {
    return this.listeners[name].length > 0
  }

  private of (name: TusHookName): Array<(...args: unknown[]) => unknown> {
    return this.listeners[name] as unknown as Array<(...args: unknown[]) => unknown>
  }

  /** Runs a hook that may reject: the first listener that throws stops the rest and the caller. */
  async run<K extends TusHookName> (name: K, ...args: Args<K>): Promise<Array<Awaited<ReturnType<TusHookHandlers[K]>>>> {
    const results: unknown[] = []
    for (const listener of this.of(name)) results.push(await listener(...args))
    return results as Array<Awaited<ReturnType<TusHookHandlers[K]>>>
  }

  /** Tells tus:failed about an error, once per error. */
  async failed (log: FastifyBaseLogger, error: Error, upload: UploadRecord | null): Promise<void> {
    if (typeof error === 'object' && error !== null) {
      if (this.reported.has(error)) return
      this.reported.set(error, upload)
    }
    await this.notify('tus:failed', log, upload?.id ?? null, error, upload)
  }

  /** The upload an error failed, when it was told to tus:failed (null: before a record existed); undefined otherwise. */
  failure (error: unknown): UploadRecord | null | undefined {
    return typeof error === 'object' && error !== null ? this.reported.get(error) : undefined
  }

  /** Runs a hook that may not reject: what a listener throws is logged and the next one runs. */
  async notify<K extends TusHookName> (name: K, log: FastifyBaseLogger, uploadId: string | null, ...args: Args<K>): Promise<void> {
    for (const listener of this.of(name)) {
      try {
        await listener(...args)
      } catch (error) {
        log.error({ err: error, uploadId, hook: name }, 'a tus hook listener failed')
      }
    }
  }
}
