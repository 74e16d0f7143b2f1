import Foundation
import RobotData
import TensorKit

/// A policy version encoded once for every watcher: the manifest followed by the
/// safetensors file split into chunks, and, when the previous version is known, the same
/// version as a `WeightDelta` against it. Encoding happens once per version, not per actor.
public struct PolicyPublication: Sendable {
    public typealias Update = Swiftvla_Fleet_V1_PolicyUpdate

    public let manifest: Swiftvla_Fleet_V1_PolicyManifest
    /// Manifest first, then chunks 0…n-1.
    public let updates: [Update]
    /// The version as a delta against `deltaBaseVersion` (manifest with `delta_base_version`,
    /// then the delta's chunks); nil when there was no base or the delta was not smaller.
    public let deltaUpdates: [Update]?
    public let deltaBaseVersion: Int?
    /// Bytes in the delta's chunks (0 without a delta).
    public let deltaBytes: Int
    /// The safetensors file, kept as the next version's delta base.
    public let fileBytes: Data
    public var version: Int { Int(manifest.version) }
    public var totalBytes: Int { Int(manifest.totalBytes) }

    /// `deltaBase`: the version watchers most likely hold (the previous publication).
    public init(_ weights: PolicyWeights, chunkBytes: Int = 1 << 20, deltaBase: PolicyPublication? = nil) throws {
        try self.init(bytes: weights.safetensorsBytes(), version: weights.version, trainStep: weights.trainStep,
                      model: weights.model, chunkBytes: chunkBytes, deltaBase: deltaBase)
    }

    init(bytes: Data, version: Int, trainStep: Int, model: String, chunkBytes: Int, deltaBase: PolicyPublication? = nil) throws {
        var manifest = Swiftvla_Fleet_V1_PolicyManifest()
        manifest.version = Int64(version)
        manifest.trainStep = Int64(trainStep)
        manifest.model = model
        manifest.tensors = try SafetensorsHeader.parse(bytes).map { entry in
            var t = Swiftvla_Fleet_V1_TensorInfo()
            t.name = entry.name
            t.dtype = entry.dtype
            t.shape = entry.shape.map(Int64.init)
            return t
        }
        manifest.totalBytes = UInt64(bytes.count)
        manifest.crc32 = CRC32.checksum(bytes)
        manifest.createdUnix = Date().timeIntervalSince1970
        manifest.payloadBytes = UInt64(bytes.count)
        manifest.chunkCount = UInt32((bytes.count + max(1, chunkBytes) - 1) / max(1, chunkBytes))
        self.manifest = manifest
        self.updates = Self.updates(manifest: manifest, payload: bytes, chunkBytes: chunkBytes)
        self.fileBytes = bytes
        if let base = deltaBase, base.version < version, base.manifest.tensors == manifest.tensors,
           let delta = try WeightDelta.encode(new: bytes, base: base.fileBytes), delta.count < bytes.count {
            var deltaManifest = manifest
            deltaManifest.deltaBaseVersion = Int64(base.version)
            deltaUpdates = Self.updates(manifest: deltaManifest, payload: delta, chunkBytes: chunkBytes)
            deltaBaseVersion = base.version
            deltaBytes = delta.count
        } else {
            deltaUpdates = nil
            deltaBaseVersion = nil
            deltaBytes = 0
        }
    }

    /// The updates to send to a stream that last delivered `lastDelivered` (the actor holds
    /// its file) and accepts deltas: the delta when it is against that version, else the file.
    public func updates(lastDelivered: Int?, acceptsDelta: Bool) -> (updates: [Update], isDelta: Bool) {
        if acceptsDelta, let deltaUpdates, let lastDelivered, lastDelivered == deltaBaseVersion { return (deltaUpdates, true) }
        return (updates, false)
    }

    /// Payload bytes of a list of updates (what travels, without protobuf framing).
    public static func payloadBytes(_ updates: [Update]) -> Int {
        updates.reduce(0) { n, u in if case .chunk(let c) = u.kind { n + c.data.count } else { n } }
    }

    private static func updates(manifest: Swiftvla_Fleet_V1_PolicyManifest, payload: Data, chunkBytes: Int) -> [Update] {
        let size = max(1, chunkBytes)
        var manifest = manifest
        manifest.payloadBytes = UInt64(payload.count)
        manifest.chunkCount = UInt32((payload.count + size - 1) / size)
        var updates = [Update.with { $0.kind = .manifest(manifest) }]
        var offset = payload.startIndex, index: UInt32 = 0
        while offset < payload.endIndex {
            let end = min(payload.endIndex, offset + size)
            var chunk = Swiftvla_Fleet_V1_WeightChunk()
            chunk.version = manifest.version
            chunk.index = index
            chunk.data = payload[offset..<end]   // a slice: the chunks share the file's storage, not a second copy
            updates.append(Update.with { $0.kind = .chunk(chunk) })
            offset = end
            index += 1
        }
        return updates
    }
}

/// The tensor table at the start of a safetensors file (8-byte little-endian header length,
/// then JSON `{name: {dtype, shape, data_offsets}}`).
enum SafetensorsHeader {
    struct Entry: Equatable { let name: String; let dtype: String; let shape: [Int] }

    /// (header JSON, data region) of a safetensors file.
    static func split(_ file: Data) throws -> (header: Data, data: Data) {
        guard file.count >= 8 else { throw WeightTransferError.corrupt("file shorter than its header") }
        let length = file.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length <= UInt64(file.count - 8) else { throw WeightTransferError.corrupt("header length \(length) beyond the file") }
        let start = file.startIndex + 8, end = start + Int(length)
        return (file.subdata(in: start..<end), file.subdata(in: end..<file.endIndex))
    }

    static func parse(_ bytes: Data) throws -> [Entry] {
        let json = try split(bytes).header
        guard let table = try JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw WeightTransferError.corrupt("header is not a JSON object")
        }
        return try table.keys.sorted().filter { $0 != "__metadata__" }.map { name in
            guard let info = table[name] as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int] else {
                throw WeightTransferError.corrupt("bad header entry for \(name)")
            }
            return Entry(name: name, dtype: dtype, shape: shape)
        }
    }
}
