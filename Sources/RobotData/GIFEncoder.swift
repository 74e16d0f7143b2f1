import Foundation

/// Animated GIF89a from RGB frames, for the dashboard's episode clips (every browser plays
/// them inline; no dependency needed). Colours are quantized to a fixed 6×7×6 cube (252
/// entries), so frames share one global palette; pixels are LZW-coded per the GIF spec.
public enum GIFEncoder {
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case badFrame(index: Int, expected: Int, got: Int)
        case badSize(width: Int, height: Int)
        case noFrames

        public var description: String {
            switch self {
            case .badFrame(let i, let expected, let got): "frame \(i) has \(got) bytes, expected \(expected) (height × width × 3)"
            case .badSize(let w, let h): "GIF frames must be 1…65535 pixels a side, got \(w)×\(h)"
            case .noFrames: "a GIF needs at least one frame"
            }
        }
    }

    static let levels = (red: 6, green: 7, blue: 6)

    /// Palette index of an RGB colour: the nearest level per channel.
    public static func paletteIndex(red: UInt8, green: UInt8, blue: UInt8) -> UInt8 {
        func level(_ v: UInt8, _ n: Int) -> Int { (Int(v) * (n - 1) + 127) / 255 }
        return UInt8(level(red, levels.red) * levels.green * levels.blue + level(green, levels.green) * levels.blue + level(blue, levels.blue))
    }

    /// The RGB colour of palette entry `index` (entries past the cube are black).
    public static func paletteColor(_ index: Int) -> (red: UInt8, green: UInt8, blue: UInt8) {
        let gb = levels.green * levels.blue
        guard index < levels.red * gb else { return (0, 0, 0) }
        func value(_ l: Int, _ n: Int) -> UInt8 { UInt8((l * 255 + (n - 1) / 2) / (n - 1)) }
        return (value(index / gb, levels.red), value(index % gb / levels.blue, levels.green), value(index % levels.blue, levels.blue))
    }

    /// Encodes `frames` (each `height × width × 3` RGB bytes, row-major) shown `delay`
    /// hundredths of a second each, looping forever.
    public static func encode(frames: [[UInt8]], width: Int, height: Int, delay: Int) throws -> Data {
        guard !frames.isEmpty else { throw Error.noFrames }
        guard (1...65535).contains(width), (1...65535).contains(height) else { throw Error.badSize(width: width, height: height) }
        let expected = width * height * 3
        for (i, f) in frames.enumerated() where f.count != expected { throw Error.badFrame(index: i, expected: expected, got: f.count) }

        var out = Data("GIF89a".utf8)
        func u16(_ v: Int) { out.append(UInt8(v & 0xFF)); out.append(UInt8(v >> 8 & 0xFF)) }
        u16(width); u16(height)
        out.append(0xF7)  // global colour table, 8 bits per channel, 2^(7+1) entries
        out.append(0); out.append(0)  // background index, aspect ratio
        for i in 0..<256 { let c = paletteColor(i); out.append(contentsOf: [c.red, c.green, c.blue]) }
        // NETSCAPE2.0 application extension: loop forever.
        out.append(contentsOf: [0x21, 0xFF, 11] + Array("NETSCAPE2.0".utf8) + [3, 1, 0, 0, 0])
        let delay = min(max(delay, 1), 65535)
        for frame in frames {
            out.append(contentsOf: [0x21, 0xF9, 4, 0x04]); u16(delay); out.append(contentsOf: [0, 0])  // graphic control
            out.append(0x2C); u16(0); u16(0); u16(width); u16(height); out.append(0)  // image descriptor
            var indices = [UInt8](repeating: 0, count: width * height)
            for p in 0..<indices.count {
                indices[p] = paletteIndex(red: frame[3 * p], green: frame[3 * p + 1], blue: frame[3 * p + 2])
            }
            out.append(8)  // LZW minimum code size
            let coded = lzw(indices)
            var offset = 0
            while offset < coded.count {
                let n = min(255, coded.count - offset)
                out.append(UInt8(n)); out.append(contentsOf: coded[offset..<(offset + n)])
                offset += n
            }
            out.append(0)
        }
        out.append(0x3B)
        return out
    }

    /// GIF's variable-width LZW over 8-bit indices: codes start at 9 bits, grow to 12, and
    /// a clear code resets the table when it fills.
    static func lzw(_ indices: [UInt8]) -> [UInt8] {
        let clear = 256, end = 257
        var bytes: [UInt8] = [], buffer = 0, bits = 0
        var codeSize = 9, next = 258
        var table = [Int: Int]()
        func emit(_ code: Int) {
            buffer |= code << bits; bits += codeSize
            while bits >= 8 { bytes.append(UInt8(buffer & 0xFF)); buffer >>= 8; bits -= 8 }
        }
        emit(clear)
        guard var prefix = indices.first.map(Int.init) else { emit(end); return bytes + (bits > 0 ? [UInt8(buffer)] : []) }
        for k in indices.dropFirst() {
            let key = prefix << 8 | Int(k)
            if let code = table[key] { prefix = code; continue }
            emit(prefix)
            if next < 4096 {
                table[key] = next
                next += 1
                // The decoder adds its entry one code later, so widen once `next` passes 2^size.
                if next > 1 << codeSize, codeSize < 12 { codeSize += 1 }
            } else {
                emit(clear)
                table.removeAll(keepingCapacity: true)
                codeSize = 9; next = 258
            }
            prefix = Int(k)
        }
        emit(prefix)
        emit(end)
        if bits > 0 { bytes.append(UInt8(buffer & 0xFF)) }
        return bytes
    }
}
