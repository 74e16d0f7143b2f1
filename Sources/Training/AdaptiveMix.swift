import Foundation

/// SOP's adaptive online/offline mix. Tasks are sampled uniformly; within task m a sample is
/// online with probability
///
///     ω_on = exp(α·l̄_on) / (exp(α·l̄_on) + exp(l̄_off))  clipped to `bounds`,
///
/// where l̄ is each source's mean training loss over the last `window` steps that saw it.
/// α > 1 tilts the mix toward the online data while the policy still gets its own rollouts
/// wrong; the clip keeps both sources in every batch.
public struct AdaptiveMix: Codable, Sendable {
    public var alpha: Double
    public var window: Int
    public var bounds: ClosedRange<Double>
    private var online: [String: LossWindow] = [:]
    private var offline: [String: LossWindow] = [:]

    public init(alpha: Double = 2, window: Int = 200, bounds: ClosedRange<Double> = 0.2...0.8) {
        precondition(window > 0 && bounds.lowerBound >= 0 && bounds.upperBound <= 1)
        self.alpha = alpha; self.window = window; self.bounds = bounds
    }

    /// Records one training step's mean loss over the samples of `task` from one source.
    public mutating func record(task: String, online isOnline: Bool, loss: Double) {
        guard loss.isFinite else { return }
        if isOnline { online[task, default: LossWindow(capacity: window)].append(loss) }
        else { offline[task, default: LossWindow(capacity: window)].append(loss) }
    }

    /// Windowed mean losses of a task (nil until the source has been trained on).
    public func meanLosses(task: String) -> (online: Double?, offline: Double?) {
        (online[task]?.mean, offline[task]?.mean)
    }

    /// ω_on for a task: 0.5 (clipped to `bounds`) until both sources have losses.
    public func onlineShare(task: String) -> Double {
        let (on, off) = meanLosses(task: task)
        guard let on, let off else { return min(max(0.5, bounds.lowerBound), bounds.upperBound) }
        // exp(α·on) / (exp(α·on) + exp(off)) = 1 / (1 + exp(off − α·on)), without overflow.
        let share = 1 / (1 + Foundation.exp(off - alpha * on))
        return min(max(share, bounds.lowerBound), bounds.upperBound)
    }

    /// ω_on of every task seen so far (for logs and reports).
    public var onlineShares: [String: Double] {
        Dictionary(uniqueKeysWithValues: Set(online.keys).union(offline.keys).map { ($0, onlineShare(task: $0)) })
    }
}

/// The last `capacity` values and their running sum.
struct LossWindow: Codable, Sendable {
    let capacity: Int
    private var values: [Double] = []
    private var next = 0
    private var sum = 0.0

    init(capacity: Int) { self.capacity = capacity }

    mutating func append(_ value: Double) {
        if values.count < capacity {
            values.append(value)
        } else {
            sum -= values[next]
            values[next] = value
            next = (next + 1) % capacity
        }
        sum += value
    }

    var mean: Double? { values.isEmpty ? nil : sum / Double(values.count) }
}
