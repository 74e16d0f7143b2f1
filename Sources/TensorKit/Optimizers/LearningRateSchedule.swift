import Foundation

/// Learning rate as a function of the optimizer step.
public protocol LearningRateSchedule: Sendable {
    func callAsFunction(_ step: Int) -> Float
}

public struct ConstantSchedule: LearningRateSchedule {
    public let value: Float
    public init(_ value: Float) { self.value = value }
    public func callAsFunction(_ step: Int) -> Float { value }
}

/// Linear warm-up from 0 to `peak` over `warmupSteps`, then cosine decay to `final` at `totalSteps`.
public struct CosineWithWarmup: LearningRateSchedule {
    public let peak: Float, final: Float
    public let warmupSteps: Int, totalSteps: Int
    public init(peak: Float, final: Float = 0, warmupSteps: Int, totalSteps: Int) {
        self.peak = peak; self.final = final; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    }
    public func callAsFunction(_ step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let span = Swift.max(1, totalSteps - warmupSteps)
        let progress = Swift.min(1, Float(step - warmupSteps) / Float(span))
        return final + (peak - final) * 0.5 * (1 + Float(cos(Double.pi * Double(progress))))
    }
}

/// Warmup-stable-decay: linear warm-up, a constant plateau, then linear decay to `final`
/// over the last `decaySteps` of `totalSteps`.
public struct WarmupStableDecay: LearningRateSchedule {
    public let peak: Float, final: Float
    public let warmupSteps: Int, decaySteps: Int, totalSteps: Int
    public init(peak: Float, final: Float = 0, warmupSteps: Int, decaySteps: Int, totalSteps: Int) {
        self.peak = peak; self.final = final; self.warmupSteps = warmupSteps
        self.decaySteps = decaySteps; self.totalSteps = totalSteps
    }
    public func callAsFunction(_ step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let decayStart = totalSteps - decaySteps
        if step < decayStart { return peak }
        let progress = Swift.min(1, Float(step - decayStart) / Float(Swift.max(1, decaySteps)))
        return peak + (final - peak) * progress
    }
}
