// The list of finished uploads: this browser's own, kept in localStorage, each
// with its download link (GET of the upload URL) when the server offers downloads.
import { formatBytes, row } from './ui.js'

const FINISHED_KEY = 'fastify-tus:finished'
const FINISHED_MAX = 100

function load () {
  try {
    const list = JSON.parse(localStorage.getItem(FINISHED_KEY) ?? '[]')
    return Array.isArray(list) ? list : []
  } catch {
    return []
  }
}

function save (list) {
  try {
    localStorage.setItem(FINISHED_KEY, JSON.stringify(list.slice(0, FINISHED_MAX)))
  } catch {
    // Storage full or disabled: the list is only a convenience.
  }
}

export class FinishedList {
  constructor (element, { downloads, onChange }) {
    this.element = element
    this.downloads = downloads
    this.onChange = onChange
  }

  add (entry) {
    save([entry, ...load().filter((other) => other.url !== entry.url)])
    this.render()
  }

  clear () {
    save([])
    this.render()
  }

  render () {
    this.element.replaceChildren(...load().map((entry) => this.item(entry)))
    this.onChange()
  }

  item (entry) {
    const element = row('finished-item', entry.name)
    const when = new Date(entry.finishedAt).toLocaleString()
    element.querySelector('.status').textContent = `${formatBytes(entry.size)} · finished ${when}`
    const link = element.querySelector('.download')
    if (this.downloads) link.href = entry.url
    else link.remove()
    element.querySelector('.forget').addEventListener('click', () => {
      save(load().filter((other) => other.url !== entry.url))
      this.render()
    })
    return element
  }
}
