import Foundation

/// Writes a safetensors file: 8-byte little-endian header length, a JSON header mapping
/// tensor names to dtype/shape/byte offsets (plus "__metadata__" string pairs), then the raw
/// little-endian tensor bytes.
public struct SafetensorsWriter {
    private var entries: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = []
    public var metadata: [String: String] = [:]

    public init() {}

    public mutating func add(_ name: String, float32 values: [Float], shape: [Int]) {
        precondition(shape.reduce(1, *) == values.count, "\(name): shape \(shape) does not match \(values.count) values")
        var bytes = [UInt8](repeating: 0, count: values.count * 4)
        bytes.withUnsafeMutableBytes { dst in
            for (i, v) in values.enumerated() { dst.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        }
        entries.append((name, "F32", shape, bytes))
    }

    public mutating func add(_ name: String, uint8 values: [UInt8], shape: [Int]) {
        precondition(shape.reduce(1, *) == values.count, "\(name): shape \(shape) does not match \(values.count) values")
        entries.append((name, "U8", shape, values))
    }

    public func encode() throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for e in entries {
            header[e.name] = ["dtype": e.dtype, "shape": e.shape, "data_offsets": [offset, offset + e.bytes.count]] as [String: Any]
            offset += e.bytes.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        var n = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(json)
        for e in entries { out.append(contentsOf: e.bytes) }
        return out
    }

    /// Write atomically (temp file + rename).
    public func write(to url: URL) throws {
        try encode().write(to: url, options: .atomic)
    }
}
