import Foundation

/// Two policies evaluated on the same seeds: McNemar's exact test on the seeds where exactly
/// one of them succeeded. Pairing removes the between-seed variance (easy and hard scenes hit
/// both policies), so it separates policies whose unpaired 95% intervals still overlap.
public struct PairedComparison: Sendable, Equatable {
    /// Seeds where only the candidate succeeded, and where only the baseline did.
    public let candidateOnly: Int
    public let baselineOnly: Int
    public let bothSucceeded: Int
    public let bothFailed: Int

    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case lengthMismatch(candidate: Int, baseline: Int)
        public var description: String {
            switch self {
            case let .lengthMismatch(c, b): "paired comparison needs the same seeds: \(c) candidate vs \(b) baseline outcomes"
            }
        }
    }

    public init(candidate: [Bool], baseline: [Bool]) throws {
        guard candidate.count == baseline.count else { throw Error.lengthMismatch(candidate: candidate.count, baseline: baseline.count) }
        var c = 0, b = 0, both = 0, neither = 0
        for (x, y) in zip(candidate, baseline) {
            switch (x, y) {
            case (true, false): c += 1
            case (false, true): b += 1
            case (true, true): both += 1
            case (false, false): neither += 1
            }
        }
        candidateOnly = c; baselineOnly = b; bothSucceeded = both; bothFailed = neither
    }

    /// Candidate minus baseline success rate.
    public var difference: Double {
        let n = candidateOnly + baselineOnly + bothSucceeded + bothFailed
        return n == 0 ? 0 : Double(candidateOnly - baselineOnly) / Double(n)
    }

    /// Two-sided exact McNemar p-value: under "no difference" each discordant seed is a fair
    /// coin, so p = 2 · P(Binomial(n, ½) ≤ min(c, b)), capped at 1 (1 with no discordant seeds).
    public var pValue: Double {
        let n = candidateOnly + baselineOnly, k = min(candidateOnly, baselineOnly)
        guard n > 0 else { return 1 }
        // Σ_{i ≤ k} C(n, i) / 2^n in log space (n can be hundreds).
        var logTerms: [Double] = []
        for i in 0...k { logTerms.append(lgamma(Double(n + 1)) - lgamma(Double(i + 1)) - lgamma(Double(n - i + 1)) - Double(n) * log(2)) }
        let top = logTerms.max()!
        let tail = exp(top) * logTerms.reduce(0) { $0 + exp($1 - top) }
        return min(1, 2 * tail)
    }

    /// One line for a terminal: "only the checkpoint succeeded on 34, only the baseline on 26 …".
    public func summary(candidate: String = "the checkpoint", baseline: String = "the baseline") -> String {
        let seeds = candidateOnly + baselineOnly + bothSucceeded + bothFailed
        return "paired on the same \(seeds) seeds: only \(candidate) succeeded on \(candidateOnly), only \(baseline) on \(baselineOnly) "
            + "(both \(bothSucceeded), neither \(bothFailed)); "
            + String(format: "difference %+.1f points, McNemar exact p = %.3g", 100 * difference, pValue)
    }

    /// Per-seed outcomes as a JSON array of 0/1 (`per_seed_success`).
    public static func json(outcomes: [Bool]) -> String {
        "[" + outcomes.map { $0 ? "1" : "0" }.joined(separator: ",") + "]"
    }

    /// The comparison as a JSON object (the `paired` field of `vla eval --json`).
    public var json: String {
        #"{"candidate_only": \#(candidateOnly), "baseline_only": \#(baselineOnly), "both": \#(bothSucceeded), "neither": \#(bothFailed), "difference": \#(difference), "mcnemar_p": \#(pValue)}"#
    }
}
