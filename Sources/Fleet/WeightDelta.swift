import Foundation

/// A lossless delta between two safetensors files of the same tensor layout, so an actor that
/// holds version v receives v + 1 as far fewer bytes. Consecutive versions differ by one
/// optimizer step's worth of updates, so their float32 bit patterns mostly agree in sign,
/// exponent and leading mantissa bits: the XOR of the two data regions is mostly zero in its
/// high bytes. The XOR is split into byte planes (byte k of every 4-byte word together), which
/// gathers those zeros into long runs, and the runs are coded as (zero count, literal count,
/// literals) with LEB128 counts.
///
/// Payload: `u64 LE header length H`, the new file's H header bytes (its JSON table and
/// metadata, sent as is), then the coded XOR of the data regions (everything after the header).
/// The receiver rebuilds the exact file; the manifest's CRC-32 then checks it like a full one.
public enum WeightDelta {
    /// The delta of `new` against `base`, or nil when their data regions differ in length
    /// (another tensor layout: send the full file).
    public static func encode(new: Data, base: Data) throws -> Data? {
        let (newHeader, newData) = try SafetensorsHeader.split(new)
        let (_, baseData) = try SafetensorsHeader.split(base)
        guard newData.count == baseData.count else { return nil }
        var xor = [UInt8](newData)
        let baseBytes = [UInt8](baseData)
        for i in 0..<xor.count { xor[i] ^= baseBytes[i] }
        var out = Data()
        appendU64(UInt64(newHeader.count), to: &out)
        out.append(newHeader)
        out.append(contentsOf: zeroRunEncode(shuffle(xor)))
        return out
    }

    /// The file `payload` describes against `base`.
    public static func apply(_ payload: Data, base: Data) throws -> Data {
        let bytes = [UInt8](payload)
        guard bytes.count >= 8 else { throw WeightTransferError.corrupt("delta shorter than its header length") }
        let headerLength = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) }
        guard headerLength <= UInt64(bytes.count - 8) else { throw WeightTransferError.corrupt("delta header length \(headerLength) beyond the payload") }
        let header = bytes[8..<(8 + Int(headerLength))]
        let (_, baseData) = try SafetensorsHeader.split(base)
        let xor = try unshuffle(zeroRunDecode(bytes[(8 + Int(headerLength))...], count: baseData.count))
        var out = Data(capacity: 8 + header.count + baseData.count)
        appendU64(UInt64(header.count), to: &out)
        out.append(contentsOf: header)
        var data = [UInt8](baseData)
        for i in 0..<data.count { data[i] ^= xor[i] }
        out.append(contentsOf: data)
        return out
    }

    static func appendU64(_ v: UInt64, to out: inout Data) {
        for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))) }
    }

    /// Byte planes of 4-byte words; a tail shorter than a word stays at the end as is.
    static func shuffle(_ bytes: [UInt8]) -> [UInt8] {
        let words = bytes.count / 4
        var out = [UInt8](repeating: 0, count: bytes.count)
        for w in 0..<words { for k in 0..<4 { out[k * words + w] = bytes[4 * w + k] } }
        for i in (4 * words)..<bytes.count { out[i] = bytes[i] }
        return out
    }

    static func unshuffle(_ bytes: [UInt8]) -> [UInt8] {
        let words = bytes.count / 4
        var out = [UInt8](repeating: 0, count: bytes.count)
        for w in 0..<words { for k in 0..<4 { out[4 * w + k] = bytes[k * words + w] } }
        for i in (4 * words)..<bytes.count { out[i] = bytes[i] }
        return out
    }

    /// Runs of zeros shorter than this stay inside a literal (a run costs two counts).
    static let minimumZeroRun = 3

    static func zeroRunEncode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count / 2)
        var i = 0
        while i < bytes.count {
            var zeros = 0
            while i + zeros < bytes.count, bytes[i + zeros] == 0 { zeros += 1 }
            i += zeros
            // The literal ends where a long enough zero run starts (or at the end).
            var end = i, run = 0
            while end < bytes.count {
                if bytes[end] == 0 {
                    run += 1
                    if run >= minimumZeroRun { end -= run - 1; break }
                } else { run = 0 }
                end += 1
            }
            if end >= bytes.count { end = bytes.count }
            appendVarint(zeros, to: &out)
            appendVarint(end - i, to: &out)
            out.append(contentsOf: bytes[i..<end])
            i = end
        }
        return out
    }

    static func zeroRunDecode(_ coded: ArraySlice<UInt8>, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var i = coded.startIndex, o = 0
        while i < coded.endIndex {
            let zeros = try readVarint(coded, &i), literals = try readVarint(coded, &i)
            guard zeros <= count - o, literals <= count - o - zeros, literals <= coded.endIndex - i else {
                throw WeightTransferError.corrupt("delta runs exceed the base's \(count) data bytes")
            }
            o += zeros
            for k in 0..<literals { out[o + k] = coded[i + k] }
            o += literals
            i += literals
        }
        guard o == count else { throw WeightTransferError.corrupt("delta covers \(o) of the base's \(count) data bytes") }
        return out
    }

    static func appendVarint(_ value: Int, to out: inout [UInt8]) {
        var v = UInt64(value)
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    static func readVarint(_ bytes: ArraySlice<UInt8>, _ i: inout Int) throws -> Int {
        var value: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard i < bytes.endIndex, shift < 63 else { throw WeightTransferError.corrupt("truncated delta count") }
            let b = bytes[i]
            i += 1
            value |= UInt64(b & 0x7F) << shift
            if b < 0x80 { break }
            shift += 7
        }
        guard value <= UInt64(Int.max) else { throw WeightTransferError.corrupt("delta count out of range") }
        return Int(value)
    }
}
