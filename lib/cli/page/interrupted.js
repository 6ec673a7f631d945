// Interrupted uploads: what tus-js-client remembers in localStorage (the URL of
// each unfinished upload, by file fingerprint) and the server still has. Adding
// the same file again resumes it; this list says so, with the server's offset.
/* global tus */
import { formatBytes, row, setProgress } from './ui.js'

async function serverOffset (url) {
  try {
    const response = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
    if (!response.ok) return response.status >= 500 ? 0 : undefined
    return Number(response.headers.get('Upload-Offset') ?? 0)
  } catch {
    return 0 // the server is unreachable right now; keep the entry
  }
}

export class InterruptedList {
  constructor (element, { endpoint, running, onPick, onChange }) {
    this.element = element
    this.endpoint = endpoint
    this.running = running
    this.onPick = onPick
    this.onChange = onChange
  }

  async render () {
    const storage = tus.defaultOptions.urlStorage
    let stored
    try {
      stored = await storage.findAllUploads()
    } catch {
      return
    }
    const running = this.running()
    const mine = stored.filter((entry) => typeof entry.uploadUrl === 'string' && entry.uploadUrl.startsWith(this.endpoint) && !running.has(entry.uploadUrl))
    const items = await Promise.all(mine.map(async (entry) => {
      const offset = await serverOffset(entry.uploadUrl)
      if (offset !== undefined) return this.item(entry, offset)
      // Gone from the server (finished, expired or deleted): nothing to resume.
      await storage.removeUpload(entry.urlStorageKey)
      return undefined
    }))
    this.element.replaceChildren(...items.filter(Boolean))
    this.onChange()
  }

  item (entry, offset) {
    const element = row('interrupted-item', entry.metadata?.filename ?? 'unnamed file')
    setProgress(element, entry.size > 0 ? offset / entry.size : 0)
    element.querySelector('.status').textContent = `${formatBytes(offset)} of ${formatBytes(entry.size)} on the server · add the file again to continue`
    element.querySelector('.pick').addEventListener('click', () => this.onPick())
    element.querySelector('.forget').addEventListener('click', async () => {
      await tus.defaultOptions.urlStorage.removeUpload(entry.urlStorageKey)
      element.remove()
      this.onChange()
    })
    return element
  }
}
