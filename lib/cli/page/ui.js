// Formatting and DOM helpers shared by the page's modules.

export const $ = (id) => document.getElementById(id)

export function formatBytes (bytes) {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KB', 'MB', 'GB', 'TB']
  let value = bytes
  let unit = -1
  do { value /= 1024; unit++ } while (value >= 1024 && unit < units.length - 1)
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`
}

export function formatDuration (seconds) {
  if (!Number.isFinite(seconds)) return ''
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`
}

/** The badge of a file: its extension, when it looks like one. */
export function extensionOf (name) {
  const dot = name.lastIndexOf('.')
  return dot > 0 && name.length - dot <= 5 ? name.slice(dot + 1).toUpperCase() : 'FILE'
}

/** A row from one of the page's templates, with its badge and name filled in. */
export function row (templateId, name) {
  const element = $(templateId).content.firstElementChild.cloneNode(true)
  element.querySelector('.badge').textContent = extensionOf(name)
  element.querySelector('.name').textContent = name
  element.querySelector('.name').title = name
  return element
}

export function setProgress (element, fraction) {
  const percent = Math.floor(fraction * 100)
  element.querySelector('.bar-fill').style.width = `${fraction * 100}%`
  element.querySelector('.bar').setAttribute('aria-valuenow', String(percent))
  element.querySelector('.percent').textContent = `${percent} %`
}
