// serve's request loggers, made when first used. Fastify gives every request a
// pino child bound to its id; most requests (a HEAD, at info) log nothing, and
// making that child cost `serve` up to a sixth of its HEADs per second. Until a line at an
// enabled level is written, or the logger is used otherwise, the request's logger
// is this object: two fields, and the server logger's answers.
import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify'

type Bindings = Record<string, unknown>
type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

class RequestLogger {
  private made: FastifyBaseLogger | undefined

  constructor (private readonly parent: FastifyBaseLogger, private readonly bound: Bindings) {}

  get level (): string { return (this.made ?? this.parent).level }
  set level (level: string) { this.materialize().level = level }
  isLevelEnabled (level: string): boolean { return ((this.made ?? this.parent) as unknown as { isLevelEnabled: (level: string) => boolean }).isLevelEnabled(level) }
  bindings (): Bindings { return (this.materialize() as unknown as { bindings: () => Bindings }).bindings() }
  child (bindings: Bindings, options?: Parameters<FastifyBaseLogger['child']>[1]): FastifyBaseLogger { return this.materialize().child(bindings, options) }
  fatal (...args: unknown[]): void { this.write('fatal', args) }
  error (...args: unknown[]): void { this.write('error', args) }
  warn (...args: unknown[]): void { this.write('warn', args) }
  info (...args: unknown[]): void { this.write('info', args) }
  debug (...args: unknown[]): void { this.write('debug', args) }
  trace (...args: unknown[]): void { this.write('trace', args) }
  silent (): void {}

  private write (level: Level, args: unknown[]): void {
    if (this.made === undefined && !this.isLevelEnabled(level)) return
    (this.materialize()[level] as (...args: unknown[]) => void)(...args)
  }

  private materialize (): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bound))
  }
}

/**
 * Fastify's `childLoggerFactory` for serve. A route with a log level of its own
 * gets its child at once: which levels are enabled is then the child's to say.
 */
export const requestLoggerFactory: NonNullable<FastifyServerOptions['childLoggerFactory']> = function (logger, bindings, options) {
  if (options.level !== undefined) return logger.child(bindings, options)
  return new RequestLogger(logger, bindings) as unknown as FastifyBaseLogger
}
