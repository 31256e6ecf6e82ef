import { describe, expect, it } from 'vitest'
import { parseDatabaseTarget, redactUrl, roleDatabase } from './sqlDatabase.ts'

describe('a store target', () => {
  it('is a SQLite path, or a postgres:// URL with its schema taken out', () => {
    expect(parseDatabaseTarget('/var/lib/depin/gateway.db')).toEqual({
      dialect: 'sqlite',
      path: '/var/lib/depin/gateway.db',
    })
    expect(
      parseDatabaseTarget('postgres://depin:secret@db:5432/depin?schema=gateway_0&sslmode=require'),
    ).toEqual({
      dialect: 'postgres',
      url: 'postgres://depin:secret@db:5432/depin?sslmode=require',
      schema: 'gateway_0',
    })
    expect(parseDatabaseTarget('postgresql://db/depin')).toMatchObject({ schema: 'public' })
  })

  it('refuses a schema that is not a plain SQL name, and never shows the password', () => {
    let thrown: unknown
    try {
      parseDatabaseTarget('postgres://u:hunter2@db/depin?schema=a;DROP TABLE x')
    } catch (error) {
      thrown = error
    }
    expect(thrown).toMatchObject({ code: 'DATABASE_URL_INVALID' })
    expect(
      JSON.stringify({ m: (thrown as Error).message, d: (thrown as { details: unknown }).details }),
    ).not.toContain('hunter2')
    expect(redactUrl('postgres://u:hunter2@db/depin')).toBe('postgres://u:***@db/depin')
  })

  it("of a role is its config's URL, else DATABASE_URL, else its SQLite file; a URL without a schema gets the role's", () => {
    const saved = process.env.DATABASE_URL
    try {
      delete process.env.DATABASE_URL
      expect(roleDatabase(undefined, '/d/gateway.db', 'gateway')).toBe('/d/gateway.db')
      process.env.DATABASE_URL = 'postgres://db/depin'
      expect(roleDatabase(undefined, '/d/gateway.db', 'gateway')).toBe('postgres://db/depin?schema=gateway')
      expect(roleDatabase('postgres://other/x?schema=gw_2', '/d/gateway.db', 'gateway')).toBe(
        'postgres://other/x?schema=gw_2',
      )
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL
      else process.env.DATABASE_URL = saved
    }
  })
})
