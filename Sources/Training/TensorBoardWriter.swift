import Foundation

/// Scalar curves in TensorBoard's event-file format, so `tensorboard --logdir runs/` shows a
/// run's losses without TensorFlow: a TFRecord stream of `Event` protos (hand-encoded here:
/// wall time, step, and a `Summary` of (tag, simple value) pairs).
///
/// TFRecord framing: little-endian uint64 length, masked CRC-32C of those 8 bytes, the
/// payload, masked CRC-32C of the payload. Each event is handed to the OS as it is written,
/// so a killed process keeps every curve point written before (no fsync: a lost curve point
/// on power failure is not worth a disk flush per training step).
public final class TensorBoardWriter {
    public let url: URL
    private let handle: FileHandle

    /// Creates `directory` and a new `events.out.tfevents.<seconds>.<host>` file in it.
    public init(directory: URL, wallTime: Date = Date()) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        // Seconds alone collide when a run restarts within a second: never overwrite a file.
        let base = "events.out.tfevents.\(Int(wallTime.timeIntervalSince1970)).\(host).\(ProcessInfo.processInfo.processIdentifier)"
        var candidate = directory.appendingPathComponent(base), n = 1
        while FileManager.default.fileExists(atPath: candidate.path) {
            candidate = directory.appendingPathComponent("\(base).\(n)")
            n += 1
        }
        url = candidate
        FileManager.default.createFile(atPath: url.path, contents: nil)
        handle = try FileHandle(forWritingTo: url)
        // The first event names the format version; readers use it to recognise the file.
        try write(record: Self.event(wallTime: wallTime.timeIntervalSince1970, step: 0, fileVersion: "brain.Event:2"))
    }

    deinit { try? handle.close() }

    /// One point per tag at `step`.
    public func add(scalars: [(tag: String, value: Float)], step: Int, wallTime: Date = Date()) throws {
        guard !scalars.isEmpty else { return }
        try write(record: Self.event(wallTime: wallTime.timeIntervalSince1970, step: Int64(step), scalars: scalars))
    }

    public func add(_ tag: String, _ value: Float, step: Int, wallTime: Date = Date()) throws {
        try add(scalars: [(tag, value)], step: step, wallTime: wallTime)
    }

    private func write(record payload: [UInt8]) throws {
        try handle.write(contentsOf: Self.record(payload))
    }

    // MARK: encoding

    /// A TFRecord: length, masked CRC of the length, payload, masked CRC of the payload.
    public static func record(_ payload: [UInt8]) -> [UInt8] {
        let length = withUnsafeBytes(of: UInt64(payload.count).littleEndian, Array.init)
        return length + bytes(CRC32C.masked(length)) + payload + bytes(CRC32C.masked(payload))
    }

    /// `tensorflow.Event`: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
    /// summary = 5 (`Summary { repeated Value value = 1 }`, `Value { tag = 1; simple_value = 2 }`).
    public static func event(wallTime: Double, step: Int64, fileVersion: String? = nil, scalars: [(tag: String, value: Float)] = []) -> [UInt8] {
        var out: [UInt8] = [0x09] + withUnsafeBytes(of: wallTime.bitPattern.littleEndian, Array.init)
        if step != 0 { out += [0x10] + varint(UInt64(bitPattern: step)) }   // proto3 leaves a zero out
        if let fileVersion { out += lengthDelimited(field: 3, Array(fileVersion.utf8)) }
        if !scalars.isEmpty {
            let summary = scalars.flatMap { tag, value in
                lengthDelimited(field: 1, lengthDelimited(field: 1, Array(tag.utf8)) + [0x15] + withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init))
            }
            out += lengthDelimited(field: 5, summary)
        }
        return out
    }

    static func lengthDelimited(field: UInt64, _ payload: [UInt8]) -> [UInt8] {
        varint(field << 3 | 2) + varint(UInt64(payload.count)) + payload
    }

    static func varint(_ value: UInt64) -> [UInt8] {
        var v = value, out: [UInt8] = []
        repeat {
            let byte = UInt8(v & 0x7F)
            v >>= 7
            out.append(v == 0 ? byte : byte | 0x80)
        } while v != 0
        return out
    }

    static func bytes(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord frames use it.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public static func checksum(_ data: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masking: rotate right by 15 and add a constant (so a CRC of data that itself
    /// contains CRCs stays well distributed).
    public static func masked(_ data: [UInt8]) -> UInt32 {
        let crc = checksum(data)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}
