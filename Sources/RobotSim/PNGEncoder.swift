import Foundation

/// Minimal PNG writer (8-bit RGB, no filtering, zlib "stored" deflate blocks), so the project
/// needs no zlib binding. Files are ~3 bytes per pixel: fine for small camera strips.
public enum PNGEncoder {
    /// Encode `rgb` ([height, width, 3] uint8, rows top-down) as PNG bytes.
    public static func encode(rgb: [UInt8], width: Int, height: Int) -> [UInt8] {
        precondition(rgb.count == width * height * 3, "rgb must hold width*height*3 bytes")
        var raw = [UInt8]()
        raw.reserveCapacity((width * 3 + 1) * height)
        for y in 0..<height {
            raw.append(0) // filter type: none
            raw.append(contentsOf: rgb[(y * width * 3)..<((y + 1) * width * 3)])
        }
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header = [UInt8]()
        header += bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        header += [8, 2, 0, 0, 0] // bit depth 8, colour type RGB, deflate, no filter, no interlace
        chunk("IHDR", header, into: &out)
        chunk("IDAT", zlibStored(raw), into: &out)
        chunk("IEND", [], into: &out)
        return out
    }

    /// Write a PNG file.
    public static func write(rgb: [UInt8], width: Int, height: Int, to url: URL) throws {
        try Data(encode(rgb: rgb, width: width, height: height)).write(to: url)
    }

    /// zlib stream of stored (uncompressed) deflate blocks + Adler-32.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(65_535, data.count - offset)
            let last: UInt8 = offset + n == data.count ? 1 : 0
            out.append(last)
            out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[offset..<(offset + n)]
            offset += n
        } while offset < data.count
        return out + bigEndian(adler32(data))
    }

    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for chunk in stride(from: 0, to: data.count, by: 5552) {
            for i in chunk..<min(chunk + 5552, data.count) {
                a &+= UInt32(data[i]); b &+= a
            }
            a %= 65_521; b %= 65_521
        }
        return (b << 16) | a
    }

    static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in bytes { c = crcTable[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func chunk(_ type: String, _ data: [UInt8], into out: inout [UInt8]) {
        let t = Array(type.utf8)
        out += bigEndian(UInt32(data.count))
        out += t + data
        out += bigEndian(crc32(t + data))
    }

    static func bigEndian(_ x: UInt32) -> [UInt8] {
        [UInt8(x >> 24), UInt8((x >> 16) & 0xFF), UInt8((x >> 8) & 0xFF), UInt8(x & 0xFF)]
    }

    /// Concatenate equally sized [H, W, 3] frames left to right into one strip.
    public static func strip(_ frames: [[UInt8]], width: Int, height: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: frames.count * width * height * 3)
        let stripWidth = frames.count * width
        for (k, f) in frames.enumerated() {
            for y in 0..<height {
                let src = y * width * 3, dst = (y * stripWidth + k * width) * 3
                out.replaceSubrange(dst..<(dst + width * 3), with: f[src..<(src + width * 3)])
            }
        }
        return out
    }
}
