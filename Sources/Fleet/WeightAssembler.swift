import Foundation
import RobotData
import TensorKit

/// Problems with a received policy: each leaves the actor on its current weights.
public enum WeightTransferError: Error, Equatable, CustomStringConvertible, Sendable {
    case unexpectedChunk(String)
    case tooLarge(Int)
    case checksumMismatch(expected: UInt32, actual: UInt32)
    case corrupt(String)

    public var description: String {
        switch self {
        case .unexpectedChunk(let m): "unexpected weight chunk: \(m)"
        case .tooLarge(let n): "policy of \(n) bytes exceeds the limit"
        case let .checksumMismatch(e, a): String(format: "weights checksum mismatch: manifest crc32 %08x, received %08x", e, a)
        case .corrupt(let m): "corrupt weights: \(m)"
        }
    }
}

/// Reassembles `PolicyUpdate` messages into weights: chunks must arrive in order after their
/// manifest; size, CRC-32 and the tensor table are checked before anything is returned. The
/// last completed file is kept, so a version sent as a `WeightDelta` against it can be rebuilt.
public struct WeightAssembler {
    public let maxBytes: Int
    private var manifest: Swiftvla_Fleet_V1_PolicyManifest?
    private var buffer = Data()
    private var nextIndex: UInt32 = 0
    private var base: (version: Int, file: Data)?

    public init(maxBytes: Int = 2 << 30) { self.maxBytes = maxBytes }

    /// The version whose file a delta may be taken against (the last one completed).
    public var baseVersion: Int? { base?.version }

    /// Feeds one message; returns the weights when a version is complete and verified.
    public mutating func consume(_ update: Swiftvla_Fleet_V1_PolicyUpdate) throws -> PolicyWeights? {
        switch update.kind {
        case .manifest(let m):
            // A new manifest replaces any unfinished version (the newest wins).
            manifest = nil
            guard m.totalBytes <= UInt64(maxBytes), payloadBytes(m) <= UInt64(maxBytes) else {
                throw WeightTransferError.tooLarge(Int(clamping: max(m.totalBytes, payloadBytes(m))))
            }
            if m.deltaBaseVersion != 0, base?.version != Int(m.deltaBaseVersion) {
                throw WeightTransferError.unexpectedChunk("v\(m.version) is a delta against v\(m.deltaBaseVersion), holding \(base.map { "v\($0.version)" } ?? "no version")")
            }
            manifest = m
            buffer = Data(capacity: Int(payloadBytes(m)))
            nextIndex = 0
            return m.chunkCount == 0 ? try complete() : nil
        case .chunk(let c):
            guard let m = manifest else { throw WeightTransferError.unexpectedChunk("chunk \(c.index) without a manifest") }
            guard c.version == m.version, c.index == nextIndex else {
                throw WeightTransferError.unexpectedChunk("got v\(c.version) #\(c.index), expected v\(m.version) #\(nextIndex)")
            }
            guard buffer.count + c.data.count <= Int(payloadBytes(m)) else {
                throw WeightTransferError.corrupt("chunks exceed the manifest's \(payloadBytes(m)) bytes")
            }
            buffer.append(c.data)
            nextIndex += 1
            return nextIndex == m.chunkCount ? try complete() : nil
        case nil:
            throw WeightTransferError.unexpectedChunk("empty update")
        }
    }

    /// Bytes the chunks carry (learners before deltas left `payload_bytes` unset: the file).
    private func payloadBytes(_ m: Swiftvla_Fleet_V1_PolicyManifest) -> UInt64 {
        m.payloadBytes == 0 && m.deltaBaseVersion == 0 ? m.totalBytes : m.payloadBytes
    }

    private mutating func complete() throws -> PolicyWeights {
        guard let m = manifest else { throw WeightTransferError.unexpectedChunk("no manifest") }
        manifest = nil
        let payload = buffer
        buffer = Data()
        guard payload.count == Int(payloadBytes(m)) else {
            throw WeightTransferError.corrupt("received \(payload.count) bytes, manifest says \(payloadBytes(m))")
        }
        let bytes: Data
        if m.deltaBaseVersion != 0, let base { bytes = try WeightDelta.apply(payload, base: base.file) } else { bytes = payload }
        guard bytes.count == Int(m.totalBytes) else {
            throw WeightTransferError.corrupt("rebuilt \(bytes.count) bytes, manifest says \(m.totalBytes)")
        }
        let crc = CRC32.checksum(bytes)
        guard crc == m.crc32 else { throw WeightTransferError.checksumMismatch(expected: m.crc32, actual: crc) }
        let table = try SafetensorsHeader.parse(bytes)
        let expected = m.tensors.map { SafetensorsHeader.Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape.map { Int($0) }) }
        guard table == expected.sorted(by: { $0.name < $1.name }) else {
            throw WeightTransferError.corrupt("tensor table differs from the manifest")
        }
        let tensors = try PolicyWeights.tensors(fromSafetensors: bytes)
        base = (Int(m.version), bytes)
        return PolicyWeights(version: Int(m.version), trainStep: Int(m.trainStep), model: m.model, tensors: tensors)
    }
}
