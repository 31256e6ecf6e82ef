// Checks, in the browser and trusting nothing the API says, that a reading is in the readings
// root the chain settled for its epoch (its EIP-712 digest recomputed from the reading, the leaf
// keccak256(keccak256(digest)) hashed up the proof as OpenZeppelin's MerkleProof does, sorted
// pairs; the root read from the EpochManager over the chain's JSON-RPC), and that a device's
// receipt is in the receipts root of its epoch's ReportAccepted event (read from the chain's logs).
// keccak-256 comes from hash-wasm (loaded as the global `hashwasm` by vendor/keccak.js).

const encoder = new TextEncoder()
const hexToBytes = (hex) => {
  const clean = hex.startsWith('0x') ? hex.slice(2) : hex
  const bytes = new Uint8Array(clean.length / 2)
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(clean.slice(2 * i, 2 * i + 2), 16)
  return bytes
}
const bytesToHex = (bytes) => `0x${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}
/** A 32-byte ABI word of an integer (two's complement for negatives). */
const word = (value) => {
  const v = BigInt(value)
  const unsigned = v < 0n ? (1n << 256n) + v : v
  return hexToBytes(unsigned.toString(16).padStart(64, '0'))
}
const addressWord = (address) => concat(new Uint8Array(12), hexToBytes(address))

const hasher = globalThis.hashwasm.createKeccak(256)
const keccak = async (bytes) => (await hasher).init().update(bytes).digest('binary')

const READING_KIND = { name: 'Reading', fields: [{ name: 'values', type: 'int64[]' }] }

/**
 * The EIP-712 digest of a record in the DeviceRegistry's domain: of its kind (`reading.kind` names
 * one of `kinds`, the network's record kinds from /v1/status; none: the first), as
 * src/readings/recordKinds.ts defines them — one int64[] field, or single-word fields.
 */
export async function readingDigest(reading, chainId, deviceRegistry, kinds = [READING_KIND]) {
  const domainType = await keccak(
    encoder.encode('EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)'),
  )
  const domain = await keccak(
    concat(
      domainType,
      await keccak(encoder.encode('depin')),
      await keccak(encoder.encode('1')),
      word(chainId),
      addressWord(deviceRegistry),
    ),
  )
  const kind = reading.kind === undefined ? kinds[0] : kinds.find((k) => k.name === reading.kind)
  if (!kind) throw new Error(`${reading.kind} is not a record kind of this network`)
  const typeString = `${kind.name}(address device,uint64 seq,uint64 time,${kind.fields.map((f) => `${f.type} ${f.name}`).join(',')})`
  const typeHash = await keccak(encoder.encode(typeString))
  const array = kind.fields.length === 1 && kind.fields[0].type === 'int64[]'
  const values = reading.values.map(word)
  const struct = await keccak(
    concat(
      typeHash,
      addressWord(reading.device),
      word(reading.seq),
      word(reading.time),
      ...(array ? [await keccak(concat(...values))] : values),
    ),
  )
  return keccak(concat(new Uint8Array([0x19, 0x01]), domain, struct))
}

/** The root a proof leads to from a digest, as OpenZeppelin's MerkleProof.processProof. */
export async function rootOfProof(digest, proof) {
  let node = await keccak(await keccak(digest))
  for (const sibling of proof.map(hexToBytes)) {
    const [a, b] = bytesToHex(node) < bytesToHex(sibling) ? [node, sibling] : [sibling, node]
    node = await keccak(concat(a, b))
  }
  return bytesToHex(node)
}

const roots = new Map()
/** `EpochManager.readingsRootOf(epoch)`, read from the chain (once per epoch). */
export async function onChainReadingsRoot(rpcUrl, epochManager, epoch) {
  const key = `${epochManager}:${epoch}`
  if (!roots.has(key)) {
    const selector = (await keccak(encoder.encode('readingsRootOf(uint64)'))).slice(0, 4)
    const root = fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'eth_call',
        params: [{ to: epochManager, data: bytesToHex(concat(selector, word(epoch))) }, 'latest'],
      }),
    })
      .then((response) => response.json())
      .then((answer) => {
        if (typeof answer.result !== 'string') throw new Error(answer.error?.message ?? 'no result')
        return answer.result.toLowerCase()
      })
    roots.set(key, root)
    root.catch(() => roots.delete(key)) // asked again next time
  }
  return roots.get(key)
}

/**
 * Whether a proven reading from the API (`{ epoch, reading, proof }`) is in the readings root
 * the chain holds for its epoch. `network`: `{ rpcUrl, chainId, deviceRegistry, epochManager }`.
 */
export async function verifyReading(proven, network) {
  const digest = await readingDigest(
    proven.reading,
    network.chainId,
    network.deviceRegistry,
    network.recordKinds,
  )
  const [root, onChain] = await Promise.all([
    rootOfProof(digest, proven.proof),
    onChainReadingsRoot(network.rpcUrl, network.epochManager, proven.epoch),
  ])
  return root === onChain
}

/**
 * abi.encode of a receipt's leaf (src/rewards/receiptsTree.ts RECEIPT_LEAF_TYPES: uint64, address,
 * address, uint32, uint32, uint32[], int64[], uint256 × 4), as the API serves it in `receipt`.
 */
export function receiptLeafBytes(r) {
  const array = (values) => concat(word(values.length), ...values.map(word))
  const rejected = array(r.rejected)
  const units = array(r.units)
  const head = 11 * 32
  return concat(
    word(r.epoch),
    addressWord(r.device),
    addressWord(r.owner),
    word(r.submitted),
    word(r.accepted),
    word(head),
    word(head + rejected.length),
    word(r.weight),
    word(r.totalWeight),
    word(r.devicePool),
    word(r.reward),
    rejected,
    units,
  )
}

const receiptsRoots = new Map()
/**
 * The receipts root of `epoch`'s ReportAccepted event (topic 1 the epoch; the root is the third
 * word of the event's data), read from the chain's logs (once per epoch).
 */
export async function onChainReceiptsRoot(rpcUrl, epochManager, epoch) {
  const key = `${epochManager}:${epoch}`
  if (!receiptsRoots.has(key)) {
    const topic = bytesToHex(
      await keccak(
        encoder.encode('ReportAccepted(uint64,bytes32,bytes32,bytes32,uint256,uint32,address[],address)'),
      ),
    )
    const root = fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'eth_getLogs',
        params: [
          {
            address: epochManager,
            fromBlock: '0x0',
            toBlock: 'latest',
            topics: [topic, bytesToHex(word(epoch))],
          },
        ],
      }),
    })
      .then((response) => response.json())
      .then((answer) => {
        if (!Array.isArray(answer.result)) throw new Error(answer.error?.message ?? 'no result')
        const log = answer.result[0]
        if (!log) throw new Error(`epoch ${epoch} has no report on-chain`)
        return `0x${log.data.slice(2 + 2 * 64, 2 + 3 * 64)}`.toLowerCase()
      })
    receiptsRoots.set(key, root)
    root.catch(() => receiptsRoots.delete(key)) // asked again next time
  }
  return receiptsRoots.get(key)
}

/**
 * Whether a receipt from the API (`{ epoch, receipt, proof }`) is `device`'s, a leaf of the
 * receipts root its epoch's report carries on-chain, and its reward is
 * floor(devicePool × weight / totalWeight).
 */
export async function verifyReceipt(proven, network, device) {
  const r = proven.receipt
  // a genuine receipt of another device proves nothing about this one
  if (device !== undefined && r.device.toLowerCase() !== device.toLowerCase()) return false
  const reward =
    BigInt(r.totalWeight) === 0n ? 0n : (BigInt(r.devicePool) * BigInt(r.weight)) / BigInt(r.totalWeight)
  if (reward !== BigInt(r.reward) || r.epoch !== proven.epoch) return false
  const [root, onChain] = await Promise.all([
    rootOfProof(receiptLeafBytes(r), proven.proof),
    onChainReceiptsRoot(network.rpcUrl, network.epochManager, proven.epoch),
  ])
  return root === onChain
}
