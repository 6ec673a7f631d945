// One upload in progress: a tus-js-client Upload and its row (progress bar,
// speed, time left, pause/resume, cancel). A file this browser already sent
// part of is resumed from the server's offset instead of sent again.
/* global tus */
import { formatBytes, formatDuration, row, setProgress } from './ui.js'

// Speed is measured over the last few seconds, so that a stall shows at once.
const SPEED_WINDOW_MS = 4000
// The finished row stays a moment where the user looked, then joins the finished list.
const DONE_LINGER_MS = 900

export class UploadItem {
  constructor (file, { endpoint, onChange, onFinished }) {
    this.file = file
    this.state = 'uploading'
    this.samples = []
    this.onChange = onChange
    this.onFinished = onFinished
    this.element = row('upload-item', file.name)
    this.element.querySelector('.pause').addEventListener('click', () => this.pause())
    this.element.querySelector('.resume').addEventListener('click', () => this.resume())
    this.element.querySelector('.cancel').addEventListener('click', () => this.cancel())
    this.upload = new tus.Upload(file, {
      endpoint,
      metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
      retryDelays: [0, 1000, 3000, 5000, 10000],
      removeFingerprintOnSuccess: true,
      onBeforeRequest: (request) => this.beforeRequest(request),
      onProgress: (sent, total) => this.progress(sent, total),
      onSuccess: () => this.finished(),
      onError: (error) => this.failed(error)
    })
  }

  async start () {
    try {
      const previous = await this.upload.findPreviousUploads()
      if (previous.length > 0) {
        // The newest upload of this very file; the server says where its bytes end.
        previous.sort((a, b) => String(b.creationTime).localeCompare(String(a.creationTime)))
        this.upload.resumeFromPreviousUpload(previous[0])
        this.resuming = true
      }
    } catch {
      // No stored uploads to look at: a fresh upload.
    }
    this.status(this.resuming ? 'Looking up what the server already has…' : 'Starting…')
    this.upload.start()
  }

  // The first PATCH of a resumed upload says where the server's bytes end.
  beforeRequest (request) {
    if (!this.resuming || this.resumedFrom !== undefined || request.getMethod() !== 'PATCH') return
    this.resumedFrom = Number(request.getHeader('Upload-Offset'))
    this.element.dataset.resumedFrom = String(this.resumedFrom)
    if (this.file.size > 0) setProgress(this.element, this.resumedFrom / this.file.size)
  }

  speed () {
    if (this.samples.length < 2) return 0
    const first = this.samples[0]
    const last = this.samples[this.samples.length - 1]
    const seconds = (last.time - first.time) / 1000
    return seconds > 0 ? (last.bytes - first.bytes) / seconds : 0
  }

  progress (sent, total) {
    const now = performance.now()
    this.samples.push({ time: now, bytes: sent })
    while (this.samples.length > 2 && now - this.samples[0].time > SPEED_WINDOW_MS) this.samples.shift()
    setProgress(this.element, total > 0 ? sent / total : 1)
    const speed = this.speed()
    const resumed = this.resumedFrom > 0 ? ` · resumed at ${formatBytes(this.resumedFrom)}` : ''
    this.status(`${formatBytes(sent)} of ${formatBytes(total)}${resumed}`)
    this.rate(speed > 0 ? `${formatBytes(speed)}/s · ${formatDuration((total - sent) / speed)} left` : '')
    this.onChange()
  }

  status (text) {
    this.element.querySelector('.status').textContent = text
  }

  rate (text) {
    this.element.querySelector('.rate').textContent = text
  }

  setState (state) {
    this.state = state
    this.element.dataset.state = state
    this.element.querySelector('.pause').hidden = state !== 'uploading'
    this.element.querySelector('.resume').hidden = state !== 'paused' && state !== 'error'
    this.onChange()
  }

  pause () {
    void this.upload.abort()
    this.samples = []
    this.setState('paused')
    this.rate('Paused')
  }

  resume () {
    this.setState('uploading')
    this.rate('')
    this.upload.start()
  }

  async cancel () {
    this.element.remove()
    this.setState('cancelled')
    // Terminates the upload on the server too, so that nothing is left half-sent.
    await this.upload.abort(true).catch(() => {})
  }

  finished () {
    setProgress(this.element, 1)
    this.setState('done')
    this.rate('Done')
    setTimeout(() => {
      this.element.remove()
      this.onFinished({ name: this.file.name, size: this.file.size, type: this.file.type, url: this.upload.url, finishedAt: Date.now() })
    }, DONE_LINGER_MS)
  }

  failed (error) {
    this.setState('error')
    let reason = error?.message ?? String(error)
    try {
      // The server's own JSON error says it best.
      reason = JSON.parse(error?.originalResponse?.getBody?.() ?? '').message ?? reason
    } catch {
      // Not the server's JSON error: tus-js-client's own message.
    }
    this.status(`Failed: ${reason}`)
    this.rate('Retry ▸')
  }
}
