// The upload page of `fastify-tus serve`: tus-js-client's browser build behind a
// small UI. Uploads resume after a reload because tus-js-client keeps each
// upload's URL in localStorage under the file's fingerprint; the list of finished
// uploads is this browser's own, kept in localStorage too.
import { FinishedList } from './finished.js'
import { InterruptedList } from './interrupted.js'
import { $, formatBytes } from './ui.js'
import { UploadItem } from './upload-item.js'

// How often the interrupted uploads' offsets are asked again: a request cut off
// by a reload may still be winding up on the server when the page comes back.
const INTERRUPTED_REFRESH_MS = 3000

const meta = (name) => document.querySelector(`meta[name="${name}"]`).content
// Relative to the page (its own origin) unless the server says otherwise.
const endpoint = new URL(meta('fastify-tus-endpoint'), location.href).href
const downloads = meta('fastify-tus-download') === 'true'

const picker = $('picker')
const dropzone = $('dropzone')
const uploadsList = $('uploads')
const active = new Set()

function refreshPanels () {
  for (const item of active) if (item.state === 'done' || item.state === 'cancelled') active.delete(item)
  $('uploads-panel').hidden = uploadsList.children.length === 0
  $('finished-panel').hidden = $('finished').children.length === 0
  $('interrupted-panel').hidden = $('interrupted').children.length === 0
  const running = [...active].filter((item) => item.state === 'uploading')
  const speed = running.reduce((sum, item) => sum + item.speed(), 0)
  $('summary').textContent = running.length > 0
    ? `${running.length} of ${active.size} sending · ${formatBytes(speed)}/s`
    : active.size > 0 ? `${active.size} paused` : ''
}

const finished = new FinishedList($('finished'), { downloads, onChange: refreshPanels })
const interrupted = new InterruptedList($('interrupted'), {
  endpoint,
  running: () => new Set([...active].map((item) => item.upload.url)),
  onPick: () => picker.click(),
  onChange: refreshPanels
})

function addFiles (files) {
  for (const file of files) {
    const item = new UploadItem(file, { endpoint, onChange: refreshPanels, onFinished: (entry) => finished.add(entry) })
    uploadsList.prepend(item.element)
    active.add(item)
    void item.start().then(() => interrupted.render())
  }
  refreshPanels()
  picker.value = ''
}

picker.addEventListener('change', () => addFiles(picker.files))
dropzone.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault()
    picker.click()
  }
})
// Files dropped anywhere on the page are taken; the drop zone lights up meanwhile.
let depth = 0
window.addEventListener('dragenter', (event) => {
  event.preventDefault()
  depth++
  dropzone.classList.add('over')
})
window.addEventListener('dragleave', () => {
  depth = Math.max(0, depth - 1)
  if (depth === 0) dropzone.classList.remove('over')
})
window.addEventListener('dragover', (event) => event.preventDefault())
window.addEventListener('drop', (event) => {
  event.preventDefault()
  depth = 0
  dropzone.classList.remove('over')
  if (event.dataTransfer?.files.length) addFiles(event.dataTransfer.files)
})
$('clear-finished').addEventListener('click', () => finished.clear())

async function showLimits () {
  try {
    const response = await fetch(endpoint, { method: 'OPTIONS' })
    const max = Number(response.headers.get('Tus-Max-Size'))
    if (max > 0) $('limits').textContent = `Up to ${formatBytes(max)} per file · any number of files`
  } catch {
    // The hint stays generic.
  }
}

$('endpoint-label').textContent = endpoint
finished.render()
void interrupted.render()
void showLimits()
setInterval(() => {
  if ($('interrupted').children.length > 0 && document.visibilityState === 'visible') void interrupted.render()
}, INTERRUPTED_REFRESH_MS)
