import Foundation

/// A minimal PNG encoder for report thumbnails: 8-bit RGB, filter 0, zlib with stored
/// (uncompressed) deflate blocks. RobotData cannot use RobotSim's encoder (RobotSim depends
/// on RobotData, not the reverse) and there is no zlib binding, so this is written out here.
public enum PNGImage {
    /// PNG bytes of `rgb` ([height, width, 3] uint8, rows top-down).
    public static func encode(rgb: ArraySlice<UInt8>, width: Int, height: Int) throws -> [UInt8] {
        guard width > 0, height > 0, rgb.count == width * height * 3 else {
            throw EpisodeError.shape("\(rgb.count) bytes for a \(width)x\(height) RGB PNG")
        }
        var scanlines: [UInt8] = []
        scanlines.reserveCapacity(height * (width * 3 + 1))
        let start = rgb.startIndex
        for y in 0..<height {
            scanlines.append(0)
            scanlines += rgb[(start + y * width * 3)..<(start + (y + 1) * width * 3)]
        }
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        append(chunk: "IHDR", bytes(UInt32(width)) + bytes(UInt32(height)) + [8, 2, 0, 0, 0], to: &png)
        append(chunk: "IDAT", zlibStored(scanlines), to: &png)
        append(chunk: "IEND", [], to: &png)
        return png
    }

    /// `data:image/png;base64,…` for inline HTML.
    public static func dataURI(rgb: ArraySlice<UInt8>, width: Int, height: Int) throws -> String {
        "data:image/png;base64," + Data(try encode(rgb: rgb, width: width, height: height)).base64EncodedString()
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(0xFFFF, data.count - offset)
            out.append(offset + n == data.count ? 1 : 0)
            out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[offset..<(offset + n)]
            offset += n
        } while offset < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data { a = (a + UInt32(byte)) % 65_521; b = (b + a) % 65_521 }
        return out + bytes(b << 16 | a)
    }

    static func append(chunk type: String, _ data: [UInt8], to png: inout [UInt8]) {
        let typed = Array(type.utf8) + data
        png += bytes(UInt32(data.count)) + typed + bytes(CRC32.checksum(typed))
    }

    static func bytes(_ x: UInt32) -> [UInt8] { [UInt8(x >> 24), UInt8(x >> 16 & 0xFF), UInt8(x >> 8 & 0xFF), UInt8(x & 0xFF)] }
}
