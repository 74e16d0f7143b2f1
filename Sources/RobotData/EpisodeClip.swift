import Foundation
import RobotData

/// An episode's camera as a looping GIF: at most `maxFrames` evenly spaced steps, upscaled
/// (nearest neighbour) to at least `minWidth` pixels, played at the episode's own pace.
/// Steps the operator drove get an orange frame border, so takeovers are visible.
public struct EpisodeClip: Sendable {
    public var camera = "scene"
    public var maxFrames = 48
    public var minWidth = 192

    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case noCamera(String, available: [String])
        case noFrames

        public var description: String {
            switch self {
            case .noCamera(let name, let available): "episode has no camera \"\(name)\" (has \(available.sorted().joined(separator: ", ")))"
            case .noFrames: "episode has no camera frames"
            }
        }
    }

    public init(camera: String = "scene", maxFrames: Int = 48, minWidth: Int = 192) {
        self.camera = camera; self.maxFrames = maxFrames; self.minWidth = minWidth
    }

    public func gif(of episode: Episode) throws -> Data {
        guard let frames = episode.cameras[camera] else {
            throw Error.noCamera(camera, available: Array(episode.cameras.keys))
        }
        guard frames.count > 0, frames.width > 0 else { throw Error.noFrames }
        let count = frames.count
        let picks = count <= maxFrames ? Array(0..<count) : (0..<maxFrames).map { $0 * (count - 1) / (maxFrames - 1) }
        let scale = max(1, (minWidth + frames.width - 1) / frames.width)
        let (w, h) = (frames.width * scale, frames.height * scale)
        let images = picks.map { step -> [UInt8] in
            var image = Self.upscale(frames.frame(step), width: frames.width, height: frames.height, by: scale)
            if step < episode.sources.count, episode.sources[step] == .operator {
                Self.border(&image, width: w, height: h, thickness: max(2, scale), rgb: (230, 120, 0))
            }
            return image
        }
        // Wall time between shown frames, from the step timestamps (default 10 Hz).
        var seconds = 0.1 * Double(max(1, count - 1)) / Double(max(1, picks.count - 1))
        if episode.timestamps.count == count, count > 1, picks.count > 1 {
            let span = episode.timestamps[count - 1] - episode.timestamps[0]
            if span > 0 { seconds = span / Double(picks.count - 1) }
        }
        return try GIFEncoder.encode(frames: images, width: w, height: h, delay: Int((seconds * 100).rounded()))
    }

    static func upscale(_ frame: ArraySlice<UInt8>, width: Int, height: Int, by s: Int) -> [UInt8] {
        let base = frame.startIndex
        guard s > 1 else { return Array(frame) }
        var out = [UInt8](repeating: 0, count: width * s * height * s * 3)
        for y in 0..<(height * s) {
            for x in 0..<(width * s) {
                let src = base + ((y / s) * width + x / s) * 3, dst = (y * width * s + x) * 3
                out[dst] = frame[src]; out[dst + 1] = frame[src + 1]; out[dst + 2] = frame[src + 2]
            }
        }
        return out
    }

    static func border(_ image: inout [UInt8], width: Int, height: Int, thickness t: Int, rgb: (UInt8, UInt8, UInt8)) {
        for y in 0..<height {
            for x in 0..<width where x < t || y < t || x >= width - t || y >= height - t {
                let p = (y * width + x) * 3
                image[p] = rgb.0; image[p + 1] = rgb.1; image[p + 2] = rgb.2
            }
        }
    }
}
