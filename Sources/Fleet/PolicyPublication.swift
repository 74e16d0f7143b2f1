import Foundation
import RobotData
import TensorKit

/// A policy version encoded once for every watcher: the manifest followed by the
/// safetensors file split into chunks. Encoding happens once per version, not per actor.
public struct PolicyPublication: Sendable {
    public typealias Update = Swiftvla_Fleet_V1_PolicyUpdate

    public let manifest: Swiftvla_Fleet_V1_PolicyManifest
    /// Manifest first, then chunks 0…n-1.
    public let updates: [Update]
    public var version: Int { Int(manifest.version) }
    public var totalBytes: Int { Int(manifest.totalBytes) }

    public init(_ weights: PolicyWeights, chunkBytes: Int = 1 << 20) throws {
        try self.init(bytes: weights.safetensorsBytes(), version: weights.version, trainStep: weights.trainStep,
                      model: weights.model, chunkBytes: chunkBytes)
    }

    init(bytes: Data, version: Int, trainStep: Int, model: String, chunkBytes: Int) throws {
        let size = max(1, chunkBytes)
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
        manifest.chunkCount = UInt32((bytes.count + size - 1) / size)
        manifest.crc32 = CRC32.checksum(bytes)
        manifest.createdUnix = Date().timeIntervalSince1970
        var updates = [Update.with { $0.kind = .manifest(manifest) }]
        var offset = 0, index: UInt32 = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + size)
            var chunk = Swiftvla_Fleet_V1_WeightChunk()
            chunk.version = Int64(version)
            chunk.index = index
            chunk.data = bytes.subdata(in: offset..<end)
            updates.append(Update.with { $0.kind = .chunk(chunk) })
            offset = end
            index += 1
        }
        self.manifest = manifest
        self.updates = updates
    }
}

/// The tensor table at the start of a safetensors file (8-byte little-endian header length,
/// then JSON `{name: {dtype, shape, data_offsets}}`).
enum SafetensorsHeader {
    struct Entry: Equatable { let name: String; let dtype: String; let shape: [Int] }

    static func parse(_ bytes: Data) throws -> [Entry] {
        guard bytes.count >= 8 else { throw WeightTransferError.corrupt("file shorter than its header") }
        let length = bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length <= UInt64(bytes.count - 8) else { throw WeightTransferError.corrupt("header length \(length) beyond the file") }
        let start = bytes.startIndex + 8
        let json = bytes.subdata(in: start..<(start + Int(length)))
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
