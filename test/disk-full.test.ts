// A full disk is a 507, never a half-created upload: a small tmpfs stands in for the disk.
import { execFileSync, spawn } from 'node:child_process'
import { mkdir, readdir } from 'node:fs/promises'
import path from 'node:path'
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { TUS, create, patch, send, startServer, tempDir } from './helpers'

const MiB = 1024 * 1024

async function smallDisk (t: Test, size: string): Promise<string> {
  const dir = await tempDir(t)
  const mnt = path.join(dir, 'disk')
  await mkdir(mnt)
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt])
  t.teardown(() => { execFileSync('umount', ['-l', mnt]) })
  return mnt
}

async function listing (disk: string): Promise<string[]> {
  const [uploads, completed] = await Promise.all([readdir(path.join(disk, 'uploads')), readdir(path.join(disk, 'completed'))])
  return [...uploads, ...completed]
}

t.test('an upload larger than the free space is refused at creation and leaves nothing', async (t) => {
  const disk = await smallDisk(t, '16m')
  // No reservation budget: the disk itself refuses (the budget is test/reservations.test.ts's).
  const server = await startServer(t, { directory: path.join(disk, 'uploads'), completedDir: path.join(disk, 'completed'), maxReserved: Infinity })
  const refused = await send(server.endpoint, 'POST', { ...TUS, 'upload-length': String(64 * MiB) })
  t.equal(refused.statusCode, 507)
  t.equal(refused.json().code, 'FST_TUS_INSUFFICIENT_STORAGE')
  t.equal(refused.headers['tus-resumable'], '1.0.0')
  t.same(await listing(disk), [], 'no data file and no record left behind')

  // The space that was not taken is still there for an upload that fits.
  const url = await create(server.endpoint, { 'upload-length': String(4 * MiB) })
  const done = await patch(url, 0, Buffer.alloc(4 * MiB, 1))
  t.equal(done.statusCode, 204)
  t.equal(done.headers['upload-offset'], String(4 * MiB))
})

t.test('a deferred upload that fills the disk answers 507 and keeps what was written', async (t) => {
  const disk = await smallDisk(t, '8m')
  const server = await startServer(t, { directory: path.join(disk, 'uploads'), completedDir: path.join(disk, 'completed') })
  const url = await create(server.endpoint, { 'upload-defer-length': '1' })
  const full = await patch(url, 0, Buffer.alloc(16 * MiB, 2))
  t.equal(full.statusCode, 507)
  t.equal(full.json().code, 'FST_TUS_INSUFFICIENT_STORAGE')
  const head = await send(url, 'HEAD', TUS)
  const offset = Number(head.headers['upload-offset'])
  t.ok(offset > 0 && offset < 8 * MiB, `the bytes that fitted are recorded (${offset})`)
})

t.test('without the fallocate addon, creation checks free space with statvfs', async (t) => {
  const disk = await smallDisk(t, '16m')
  const cli = path.join(__dirname, '..', 'dist', 'cli', 'index.js')
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--log-level', 'warn',
    '--directory', path.join(disk, 'uploads'), '--completed-dir', path.join(disk, 'completed')], {
    env: { ...process.env, FASTIFY_TUS_NO_FALLOCATE: '1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  // The logger writes to stdout too: read until the server says where it listens.
  let stdout = ''
  while (!/listening on http/.test(stdout)) stdout += (await once(child.stdout, 'data') as [Buffer])[0].toString()
  const endpoint = /listening on (http:\/\/\S+)/.exec(stdout)![1]
  t.match(stdout, /fallocate addon is not available/, 'the fallback is announced')
  const refused = await send(endpoint, 'POST', { ...TUS, 'upload-length': String(64 * MiB) })
  t.equal(refused.statusCode, 507)
  t.equal(refused.json().code, 'FST_TUS_INSUFFICIENT_STORAGE')
  t.same(await listing(disk), [])
  const fits = await send(endpoint, 'POST', { ...TUS, 'upload-length': String(MiB) })
  t.equal(fits.statusCode, 201)
})
