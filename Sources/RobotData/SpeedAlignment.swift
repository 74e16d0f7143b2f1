import Foundation

/// Optical-flow speed alignment (Green-VLA): an episode's speed is its mean optical-flow
/// magnitude between consecutive frames (pixels per control step); episodes are resampled in
/// time so they all move at a common target speed, at the same control rate.
///
/// Resampling by a step Δ (in original steps) takes samples at τ_k = kΔ: actions and states by
/// PCHIP (no overshoot, knots kept), frames by nearest (or, when upsampling and asked for, a blend of the two neighbours),
/// rewards/sources by nearest, and `done` only on the last step. A slow demonstration
/// (speed < target) gets Δ > 1 and becomes shorter.
public struct SpeedAlignment: Sendable {
    public var flow = OpticalFlow()
    /// Camera whose frames define speed; nil = mean over all cameras.
    public var camera: String?
    /// Frame pairs measured per episode (evenly spaced); nil = all.
    public var maxPairs: Int?
    /// Frames when upsampling (Δ < 1): blend the two neighbours (true) or repeat the nearest
    /// (default: every frame stays a real image and the measured flow stays ~linear in Δ; a
    /// cross-fade is read by optical flow as much less motion). Downsampling always takes the
    /// nearest frame: a blend of frames Δ > 1 apart is a ghosted double image.
    public var blendFrames = false
    /// Re-measure after resampling and correct Δ this many times (flow is not exactly linear in Δ).
    public var refinements = 2

    public init(camera: String? = nil, maxPairs: Int? = nil) {
        self.camera = camera
        self.maxPairs = maxPairs
    }

    /// Mean flow magnitude, pixels per step.
    public func measure(_ e: Episode) throws -> Float {
        let names = camera.map { [$0] } ?? e.cameras.keys.sorted()
        guard !names.isEmpty else { throw SpeedAlignmentError.noFrames(e.id) }
        var total: Float = 0
        for name in names {
            guard let frames = e.cameras[name] else { throw SpeedAlignmentError.unknownCamera(name) }
            guard frames.count >= 2 else { throw SpeedAlignmentError.noFrames(e.id) }
            total += try flow.meanSpeed(frames, maxPairs: maxPairs)
        }
        return total / Float(names.count)
    }

    /// The episode with `speed` set to its measured speed.
    public func measured(_ e: Episode) throws -> Episode {
        var out = e
        out.speed = try measure(e)
        return out
    }

    /// Speed per group (e.g. embodiment or dataset): the median of its episodes' speeds.
    public static func groupSpeeds(_ episodes: [Episode], by key: (Episode) -> String) throws -> [String: Float] {
        var groups: [String: [Double]] = [:]
        for e in episodes {
            guard let v = e.speed else { throw SpeedAlignmentError.notMeasured(e.id) }
            groups[key(e), default: []].append(Double(v))
        }
        return groups.mapValues { Float(DataQA.median($0)) }
    }

    /// Resamples `e` to move at `target` pixels per step. The result carries its re-measured
    /// speed. `step` in the report is the final Δ (original steps per new step).
    public func align(_ e: Episode, to target: Float) throws -> (episode: Episode, originalSpeed: Float, step: Double) {
        guard target > 0, target.isFinite else { throw SpeedAlignmentError.badTarget(target) }
        let original = try e.speed ?? measure(e)
        guard original > 0 else { throw SpeedAlignmentError.static(e.id) }
        var step = Double(original / target)
        var out = try Self.resample(e, step: step, blendFrames: blendFrames)
        var speed = try measure(out)
        for _ in 0..<refinements where speed > 0 && abs(speed / target - 1) > 0.02 {
            step *= Double(target / speed)
            out = try Self.resample(e, step: step, blendFrames: blendFrames)
            speed = try measure(out)
        }
        out.speed = speed
        return (out, original, step)
    }

    /// Samples at τ_k = kΔ', k = 0 … round((T−1)/Δ), Δ' = (T−1)/round((T−1)/Δ) ≈ Δ (see the type's comment).
    public static func resample(_ e: Episode, step: Double, blendFrames: Bool = false) throws -> Episode {
        guard step > 0, step.isFinite else { throw SpeedAlignmentError.badStep(step) }
        let t = e.stepCount
        guard t >= 1 else { throw EpisodeError.shape("episode has no steps") }
        // The last sample lands exactly on the last step (the outcome: success, release), so Δ is
        // nudged to (T−1)/(count−1) with count = round((T−1)/Δ) + 1.
        let count = t == 1 ? 1 : max(Int((Double(t - 1) / step).rounded()), 1) + 1
        let actual = count > 1 ? Double(t - 1) / Double(count - 1) : step
        let times = (0..<count).map { min(Double($0) * actual, Double(t - 1)) }
        let nearest = times.map { min(Int($0.rounded()), t - 1) }
        var out = e
        out.states = try MonotoneCubicInterpolation.resample(e.states, at: times)
        out.nativeActions = try MonotoneCubicInterpolation.resample(e.nativeActions, at: times)
        out.unifiedActions = try MonotoneCubicInterpolation.resample(e.unifiedActions, at: times)
        // Padding slots stay exactly at their constant (PCHIP of a constant is that constant).
        out.rewards = nearest.map { e.rewards[$0] }
        out.sources = nearest.map { e.sources[$0] }
        out.dones = (0..<count).map { $0 == count - 1 ? e.dones[t - 1] : false }
        let period = e.controlPeriod
        out.timestamps = (0..<count).map { e.timestamps[0] + Double($0) * period }
        // The outcome's reward belongs to the final step.
        if let last = e.rewards.last { out.rewards[count - 1] = last }
        var cameras: [String: CameraFrames] = [:]
        for (name, c) in e.cameras {
            var pixels = [UInt8](repeating: 0, count: count * c.frameBytes)
            for (k, tau) in times.enumerated() {
                let lo = min(Int(tau), t - 1), hi = min(lo + 1, t - 1)
                let w = blendFrames && step < 1 ? Float(tau - Double(lo)) : (nearest[k] == lo ? 0 : 1)
                let base = k * c.frameBytes
                c.pixels.withUnsafeBufferPointer { src in
                    pixels.withUnsafeMutableBufferPointer { dst in
                        let a = lo * c.frameBytes, b = hi * c.frameBytes
                        for i in 0..<c.frameBytes {
                            let x = Float(src[a + i]) * (1 - w) + Float(src[b + i]) * w
                            dst[base + i] = UInt8(min(max(x.rounded(), 0), 255))
                        }
                    }
                }
            }
            cameras[name] = CameraFrames(height: c.height, width: c.width, pixels: pixels)
        }
        out.cameras = cameras
        out.speed = nil
        return out
    }
}

/// Problems measuring or aligning speed.
public enum SpeedAlignmentError: Error, Equatable, CustomStringConvertible {
    case noFrames(UUID)
    case unknownCamera(String)
    case notMeasured(UUID)
    case `static`(UUID)
    case badTarget(Float)
    case badStep(Double)

    public var description: String {
        switch self {
        case .noFrames(let id): "episode \(id) has fewer than two camera frames"
        case .unknownCamera(let n): "no camera named \(n)"
        case .notMeasured(let id): "episode \(id) has no measured speed"
        case .static(let id): "episode \(id) shows no motion (speed 0): cannot align"
        case .badTarget(let v): "target speed must be positive and finite, got \(v)"
        case .badStep(let s): "resampling step must be positive and finite, got \(s)"
        }
    }
}
