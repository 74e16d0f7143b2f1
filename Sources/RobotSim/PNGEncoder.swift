import Foundation
import RobotData

/// PNG files of camera strips (RobotData's `PNGImage` does the encoding).
public enum PNGEncoder {
    /// Encode `rgb` ([height, width, 3] uint8, rows top-down) as PNG bytes.
    public static func encode(rgb: [UInt8], width: Int, height: Int) throws -> [UInt8] {
        try PNGImage.encode(rgb: rgb[...], width: width, height: height)
    }

    /// Write a PNG file.
    public static func write(rgb: [UInt8], width: Int, height: Int, to url: URL) throws {
        try Data(encode(rgb: rgb, width: width, height: height)).write(to: url)
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
