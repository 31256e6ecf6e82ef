import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

/**
 * Replaces a file's content so that a crash at any moment leaves either the old or the new
 * content, never a torn mix: write a temp file, fsync it, rename it over the target, fsync the
 * directory (so the rename itself survives a power loss).
 */
export function writeFileDurably(path: string, text: string, mode = 0o600): void {
  const tmp = `${path}.tmp`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  fsyncDirectory(dirname(path))
}

/** Appends to a file (created with `mode` when missing) and fsyncs it before returning. */
export function appendFileDurably(path: string, text: string, mode = 0o600): void {
  const fd = openSync(path, 'a', mode)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

function fsyncDirectory(dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch {
    // Some platforms cannot fsync a directory; the rename is then as durable as the OS makes it.
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}
