// A command's flags as a table, one row each: its parser, its help line and
// what it sets. Both commands (serve, upload) parse and print help from theirs.
import { parseArgs, type ParseArgsConfig } from 'node:util'

export interface Flag<O> {
  name: string
  /** What the value is, for the help; a flag without one is a switch. */
  value?: string
  help: string
  multiple?: boolean
  /** Sets what the flag means on the options; `value` is the flag's string (or strings), `true` for a switch. */
  apply: (options: O, value: any) => void
}

export interface Parsed<O> {
  options: O
  positionals: string[]
}

/** The options the arguments ask for, or undefined for --help. Unknown flags and bad values throw naming the flag. */
export function parseFlags<O> (args: string[], flags: ReadonlyArray<Flag<O>>, defaults: O, allowPositionals = false): Parsed<O> | undefined {
  const config: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } }
  for (const flag of flags) {
    config[flag.name] = { type: flag.value === undefined ? 'boolean' : 'string', multiple: flag.multiple === true }
  }
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals, options: config })
  if (values.help === true) return undefined
  for (const flag of flags) {
    const value = values[flag.name]
    if (value !== undefined && value !== false) flag.apply(defaults, value)
  }
  return { options: defaults, positionals }
}

export function flagsHelp<O> (usage: string, flags: ReadonlyArray<Flag<O>>): string {
  const rows = [...flags.map((flag) => [`--${flag.name}${flag.value === undefined ? '' : ` ${flag.value}`}`, flag.help]), ['-h, --help', 'show this help']]
  const width = Math.max(...rows.map(([left]) => left.length)) + 2
  return `${usage}\n\n${rows.map(([left, help]) => `  ${left.padEnd(width)}${help}`).join('\n')}\n`
}

export function integerFlag (name: string, value: string): number {
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new Error(`${name} needs a non-negative integer, got "${value}"`)
  return Number(value)
}

export function positiveFlag (name: string, value: string): number {
  const number = integerFlag(name, value)
  if (number === 0) throw new Error(`${name} needs a positive integer, got "${value}"`)
  return number
}
