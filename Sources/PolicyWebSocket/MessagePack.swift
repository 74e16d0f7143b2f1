import Foundation

/// A MessagePack value (msgpack.org spec): what the policy WebSocket's binary endpoint speaks,
/// openpi's wire format. Maps keep their order; keys may be strings or binaries (Python's
/// `msgpack` packs `bytes` keys as bin), and `subscript(key:)` matches either.
public indirect enum MessagePack: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case float(Float)
    case double(Double)
    case string(String)
    case binary([UInt8])
    case array([MessagePack])
    case map([(key: MessagePack, value: MessagePack)])
    case ext(type: Int8, data: [UInt8])

    public static func == (a: MessagePack, b: MessagePack) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.uint(x), .uint(y)): return x == y
        case let (.float(x), .float(y)): return x == y
        case let (.double(x), .double(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.binary(x), .binary(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.map(x), .map(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case let (.ext(t1, d1), .ext(t2, d2)): return t1 == t2 && d1 == d2
        default: return false
        }
    }

    /// The value under a string or binary key equal to `key` (maps only).
    public subscript(key: String) -> MessagePack? {
        guard case .map(let entries) = self else { return nil }
        return entries.first { entry in
            switch entry.key {
            case .string(let s): return s == key
            case .binary(let b): return b == Array(key.utf8)
            default: return false
            }
        }?.value
    }

    public var string: String? {
        switch self {
        case .string(let s): return s
        case .binary(let b): return String(bytes: b, encoding: .utf8)
        default: return nil
        }
    }

    /// Integers of either sign that fit Int64.
    public var integer: Int64? {
        switch self {
        case .int(let v): return v
        case .uint(let v): return v <= UInt64(Int64.max) ? Int64(v) : nil
        default: return nil
        }
    }

    /// Any number as Double.
    public var number: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .uint(let v): return Double(v)
        case .float(let v): return Double(v)
        case .double(let v): return v
        default: return nil
        }
    }
}

public enum MessagePackError: Error, Equatable, CustomStringConvertible {
    case truncated(at: Int)
    case reservedByte(UInt8, at: Int)
    case trailingBytes(Int)
    case tooDeep(Int)
    case invalidUTF8(at: Int)

    public var description: String {
        switch self {
        case .truncated(let i): return "MessagePackError.truncated: the message ends inside a value at byte \(i)"
        case .reservedByte(let b, let i): return String(format: "MessagePackError.reservedByte: 0x%02x at byte %d is not a MessagePack type", b, i)
        case .trailingBytes(let n): return "MessagePackError.trailingBytes: \(n) bytes after the message"
        case .tooDeep(let d): return "MessagePackError.tooDeep: nested deeper than \(d) levels"
        case .invalidUTF8(let i): return "MessagePackError.invalidUTF8: a str at byte \(i) is not UTF-8"
        }
    }
}

extension MessagePack {
    /// Nesting allowed when decoding untrusted input (bounded recursion).
    public static let maxDepth = 64

    /// The shortest encoding of each value, as the spec recommends (and Python's msgpack does).
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        encode(into: &out)
        return out
    }

    private func encode(into out: inout [UInt8]) {
        func be<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) } }
        func header(_ count: Int, fix: UInt8?, fixLimit: Int, _ c8: UInt8?, _ c16: UInt8, _ c32: UInt8) {
            if let fix, count < fixLimit { out.append(fix | UInt8(count)) }
            else if let c8, count <= 0xff { out.append(c8); out.append(UInt8(count)) }
            else if count <= 0xffff { out.append(c16); be(UInt16(count)) }
            else { out.append(c32); be(UInt32(count)) }
        }
        switch self {
        case .null: out.append(0xc0)
        case .bool(let b): out.append(b ? 0xc3 : 0xc2)
        case .uint(let v): MessagePack.encodeUnsigned(v, into: &out)
        case .int(let v):
            if v >= 0 { MessagePack.encodeUnsigned(UInt64(v), into: &out) }
            else if v >= -32 { out.append(UInt8(bitPattern: Int8(v))) }
            else if v >= Int64(Int8.min) { out.append(0xd0); be(Int8(v)) }
            else if v >= Int64(Int16.min) { out.append(0xd1); be(Int16(v)) }
            else if v >= Int64(Int32.min) { out.append(0xd2); be(Int32(v)) }
            else { out.append(0xd3); be(v) }
        case .float(let f): out.append(0xca); be(f.bitPattern)
        case .double(let d): out.append(0xcb); be(d.bitPattern)
        case .string(let s):
            let bytes = Array(s.utf8)
            header(bytes.count, fix: 0xa0, fixLimit: 32, 0xd9, 0xda, 0xdb)
            out.append(contentsOf: bytes)
        case .binary(let b):
            header(b.count, fix: nil, fixLimit: 0, 0xc4, 0xc5, 0xc6)
            out.append(contentsOf: b)
        case .array(let items):
            header(items.count, fix: 0x90, fixLimit: 16, nil, 0xdc, 0xdd)
            for item in items { item.encode(into: &out) }
        case .map(let entries):
            header(entries.count, fix: 0x80, fixLimit: 16, nil, 0xde, 0xdf)
            for (k, v) in entries { k.encode(into: &out); v.encode(into: &out) }
        case .ext(let type, let data):
            switch data.count {
            case 1: out.append(0xd4)
            case 2: out.append(0xd5)
            case 4: out.append(0xd6)
            case 8: out.append(0xd7)
            case 16: out.append(0xd8)
            case let n where n <= 0xff: out.append(0xc7); out.append(UInt8(n))
            case let n where n <= 0xffff: out.append(0xc8); be(UInt16(n))
            default: out.append(0xc9); be(UInt32(data.count))
            }
            out.append(UInt8(bitPattern: type))
            out.append(contentsOf: data)
        }
    }

    private static func encodeUnsigned(_ v: UInt64, into out: inout [UInt8]) {
        func be<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) } }
        if v < 0x80 { out.append(UInt8(v)) }
        else if v <= 0xff { out.append(0xcc); out.append(UInt8(v)) }
        else if v <= 0xffff { out.append(0xcd); be(UInt16(v)) }
        else if v <= 0xffff_ffff { out.append(0xce); be(UInt32(v)) }
        else { out.append(0xcf); be(v) }
    }

    /// Decodes exactly one value spanning all of `bytes`.
    public static func decode(_ bytes: [UInt8]) throws -> MessagePack {
        var reader = Reader(bytes: bytes)
        let value = try reader.value(depth: 0)
        guard reader.offset == bytes.count else { throw MessagePackError.trailingBytes(bytes.count - reader.offset) }
        return value
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, bytes.count - offset >= n else { throw MessagePackError.truncated(at: offset) }
            defer { offset += n }
            return bytes[offset..<(offset + n)]
        }

        mutating func be<T: FixedWidthInteger>(_: T.Type) throws -> T {
            try take(MemoryLayout<T>.size).reduce(T.zero) { ($0 << 8) | T(truncatingIfNeeded: $1) }
        }

        mutating func string(_ n: Int) throws -> MessagePack {
            let at = offset
            guard let s = String(bytes: try take(n), encoding: .utf8) else { throw MessagePackError.invalidUTF8(at: at) }
            return .string(s)
        }

        mutating func array(_ n: Int, depth: Int) throws -> MessagePack {
            // Each element takes at least one byte: a claimed count beyond the rest is a lie.
            guard n <= bytes.count - offset else { throw MessagePackError.truncated(at: offset) }
            return .array(try (0..<n).map { _ in try value(depth: depth + 1) })
        }

        mutating func map(_ n: Int, depth: Int) throws -> MessagePack {
            guard n <= (bytes.count - offset) / 2 else { throw MessagePackError.truncated(at: offset) }
            return .map(try (0..<n).map { _ in (try value(depth: depth + 1), try value(depth: depth + 1)) })
        }

        mutating func ext(_ n: Int) throws -> MessagePack {
            let type = Int8(bitPattern: try take(1).first!)
            return .ext(type: type, data: Array(try take(n)))
        }

        mutating func value(depth: Int) throws -> MessagePack {
            guard depth < MessagePack.maxDepth else { throw MessagePackError.tooDeep(MessagePack.maxDepth) }
            let at = offset
            let byte = try take(1).first!
            switch byte {
            case 0x00...0x7f: return .int(Int64(byte))
            case 0x80...0x8f: return try map(Int(byte & 0x0f), depth: depth)
            case 0x90...0x9f: return try array(Int(byte & 0x0f), depth: depth)
            case 0xa0...0xbf: return try string(Int(byte & 0x1f))
            case 0xc0: return .null
            case 0xc2: return .bool(false)
            case 0xc3: return .bool(true)
            case 0xc4: return .binary(Array(try take(Int(try be(UInt8.self)))))
            case 0xc5: return .binary(Array(try take(Int(try be(UInt16.self)))))
            case 0xc6: return .binary(Array(try take(Int(try be(UInt32.self)))))
            case 0xc7: return try ext(Int(try be(UInt8.self)))
            case 0xc8: return try ext(Int(try be(UInt16.self)))
            case 0xc9: return try ext(Int(try be(UInt32.self)))
            case 0xca: return .float(Float(bitPattern: try be(UInt32.self)))
            case 0xcb: return .double(Double(bitPattern: try be(UInt64.self)))
            case 0xcc: return .int(Int64(try be(UInt8.self)))
            case 0xcd: return .int(Int64(try be(UInt16.self)))
            case 0xce: return .int(Int64(try be(UInt32.self)))
            case 0xcf:
                let v = try be(UInt64.self)
                return v <= UInt64(Int64.max) ? .int(Int64(v)) : .uint(v)
            case 0xd0: return .int(Int64(try be(Int8.self)))
            case 0xd1: return .int(Int64(try be(Int16.self)))
            case 0xd2: return .int(Int64(try be(Int32.self)))
            case 0xd3: return .int(try be(Int64.self))
            case 0xd4: return try ext(1)
            case 0xd5: return try ext(2)
            case 0xd6: return try ext(4)
            case 0xd7: return try ext(8)
            case 0xd8: return try ext(16)
            case 0xd9: return try string(Int(try be(UInt8.self)))
            case 0xda: return try string(Int(try be(UInt16.self)))
            case 0xdb: return try string(Int(try be(UInt32.self)))
            case 0xdc: return try array(Int(try be(UInt16.self)), depth: depth)
            case 0xdd: return try array(Int(try be(UInt32.self)), depth: depth)
            case 0xde: return try map(Int(try be(UInt16.self)), depth: depth)
            case 0xdf: return try map(Int(try be(UInt32.self)), depth: depth)
            case 0xe0...0xff: return .int(Int64(Int8(bitPattern: byte)))
            default: throw MessagePackError.reservedByte(byte, at: at)
            }
        }
    }
}

/// A NumPy array as openpi's msgpack helpers send it: a map with binary keys `__ndarray__`
/// (true), `data` (the raw little-endian bytes), `dtype` (NumPy's dtype string, e.g. "<f4",
/// "|u1") and `shape` (array of ints).
public struct NumPyArray: Equatable, Sendable {
    public var dtype: String
    public var shape: [Int]
    public var data: [UInt8]

    public init(dtype: String, shape: [Int], data: [UInt8]) { self.dtype = dtype; self.shape = shape; self.data = data }

    public init(float32 values: [Float], shape: [Int]) {
        self.init(dtype: "<f4", shape: shape, data: values.withUnsafeBytes { Array($0) })
    }

    /// nil unless `value` is such a map with a consistent byte count.
    public init?(_ value: MessagePack) {
        guard case .bool(true)? = value["__ndarray__"], let dtype = value["dtype"]?.string,
              case .binary(let data)? = value["data"], case .array(let dims)? = value["shape"] else { return nil }
        let shape = dims.compactMap { $0.integer.map(Int.init) }
        guard shape.count == dims.count, shape.allSatisfy({ $0 >= 0 }), let size = Self.itemSize(dtype),
              shape.reduce(1, *) * size == data.count else { return nil }
        self.init(dtype: dtype, shape: shape, data: data)
    }

    static func itemSize(_ dtype: String) -> Int? {
        ["|u1": 1, "|b1": 1, "|i1": 1, "<f4": 4, "<f8": 8, "<i4": 4, "<i8": 8, "<u2": 2, "<i2": 2, "<f2": 2][dtype]
    }

    public var count: Int { shape.reduce(1, *) }

    /// The values as Float (float32/64 and integer dtypes), nil for others.
    public var floats: [Float]? {
        func load<T>(_: T.Type, _ convert: (T) -> Float) -> [Float] {
            data.withUnsafeBytes { raw in (0..<count).map { convert(raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) } }
        }
        switch dtype {
        case "<f4": return load(Float.self) { $0 }
        case "<f8": return load(Double.self) { Float($0) }
        case "<i4": return load(Int32.self) { Float($0) }
        case "<i8": return load(Int64.self) { Float($0) }
        case "|u1": return data.map(Float.init)
        default: return nil
        }
    }

    public var messagePack: MessagePack {
        .map([(.binary(Array("__ndarray__".utf8)), .bool(true)), (.binary(Array("data".utf8)), .binary(data)),
              (.binary(Array("dtype".utf8)), .string(dtype)), (.binary(Array("shape".utf8)), .array(shape.map { .int(Int64($0)) }))])
    }
}
