import Foundation

/// Limits on DataQA metrics: what `vla data filter` keeps and how the quality score falls.
///
/// Score rule (documented in docs/dataqa.md): each metric gets a penalty p ∈ [0, 1] that is 0
/// while the metric is comfortably inside its limit and rises linearly to 1 at the limit —
/// for "at most" limits from 0.75 L to L, for "at least" limits from 1.25 L down to L. The score is
/// Π (1 − p): 1 for a clean episode, 0 for one that fails any limit, so score > 0 ⇔ kept
/// (count limits — missing frames, non-finite values — are hard: any excess gives 0).
/// Default values were calibrated on RobotSim's clean vs imperfect operator (docs/dataqa.md).
public struct QualityThresholds: Codable, Sendable, Equatable {
    // Calibrated with `vla data calibrate` (docs/dataqa.md): arm7 × pick_place, push, stack,
    // reach × seeds 0–9, 48×48 frames, clean vs imperfect operator. Only tremor separates the two
    // (limit 0.236 → 0.23); the image/diversity minima are guards at the clean minimum ÷ 1.5; idle,
    // duration, frozen/missing, chatter and non-finite limits are set by hand (not exercised).
    public var maxTremor: Double = 0.23
    public var minSharpness: Double = 0.21
    public var minStateDiversity: Double = 0.13
    public var minVisualDiversity: Double = 0.012
    public var maxIdleFraction: Double = 0.25
    public var maxDurationZ: Double = 3.5
    public var maxFrozenFraction: Double = 0.10
    public var maxMissingFrames: Int = 0
    public var maxGripperChatter: Int = 2
    public var maxNonFinite: Int = 0
    /// Keep only successful episodes.
    public var requireSuccess: Bool = false

    public init() {}

    public static let keys = ["maxTremor", "minSharpness", "minStateDiversity", "minVisualDiversity", "maxIdleFraction",
                              "maxDurationZ", "maxFrozenFraction", "maxMissingFrames", "maxGripperChatter", "maxNonFinite",
                              "requireSuccess"]

    /// Names of the limits `q` violates.
    public func failures(_ q: EpisodeQuality) -> [String] {
        var f: [String] = []
        if !(q.tremor <= maxTremor) { f.append("tremor") }
        if !(q.sharpness >= minSharpness) { f.append("sharpness") }
        if !(q.stateDiversity >= minStateDiversity) { f.append("stateDiversity") }
        if !(q.visualDiversity >= minVisualDiversity) { f.append("visualDiversity") }
        if !(q.idleFraction <= maxIdleFraction) { f.append("idleFraction") }
        if !(abs(q.durationZ) <= maxDurationZ) { f.append("durationZ") }
        if !(q.frozenFraction <= maxFrozenFraction) { f.append("frozenFraction") }
        if q.missingFrames > maxMissingFrames { f.append("missingFrames") }
        if q.gripperChatter > maxGripperChatter { f.append("gripperChatter") }
        if q.nonFinite > maxNonFinite { f.append("nonFinite") }
        if requireSuccess && !q.success { f.append("success") }
        return f
    }

    /// Quality score in [0, 1] (rule above). NaN metrics count as failing.
    public func score(_ q: EpisodeQuality) -> Double {
        func atMost(_ x: Double, _ limit: Double) -> Double {
            guard x.isFinite else { return 1 }
            guard limit > 0 else { return x > limit ? 1 : 0 }
            return min(max((x - 0.75 * limit) / (0.25 * limit), 0), 1)
        }
        func atLeast(_ x: Double, _ limit: Double) -> Double {
            guard x.isFinite else { return 1 }
            guard limit > 0 else { return x < limit ? 1 : 0 }
            return min(max((1.25 * limit - x) / (0.25 * limit), 0), 1)
        }
        let penalties = [
            atMost(q.tremor, maxTremor), atLeast(q.sharpness, minSharpness),
            atLeast(q.stateDiversity, minStateDiversity), atLeast(q.visualDiversity, minVisualDiversity),
            atMost(q.idleFraction, maxIdleFraction), atMost(abs(q.durationZ), maxDurationZ),
            atMost(q.frozenFraction, maxFrozenFraction),
            q.missingFrames > maxMissingFrames ? 1 : 0, q.gripperChatter > maxGripperChatter ? 1 : 0,
            q.nonFinite > maxNonFinite ? 1 : 0, requireSuccess && !q.success ? 1 : 0,
        ]
        return penalties.reduce(1) { $0 * (1 - $1) }
    }

    // MARK: files

    /// Reads thresholds from JSON (`.json`) or a flat YAML subset: one `key: value` per line,
    /// `#` comments, blank lines (no nesting, lists or anchors — Yams is not a dependency yet).
    /// Keys not given keep their defaults; unknown keys and bad values are errors.
    public static func load(from url: URL) throws -> QualityThresholds {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw QualityThresholdsError.unreadable(url.path) }
        if url.pathExtension.lowercased() == "json" {
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: data) } catch { throw QualityThresholdsError.syntax(line: 0, "invalid JSON") }
            guard let dict = object as? [String: Any] else { throw QualityThresholdsError.syntax(line: 0, "expected a JSON object") }
            return try from(dict.mapValues { "\($0)" })
        }
        return try parse(yaml: String(decoding: data, as: UTF8.self))
    }

    public static func parse(yaml text: String) throws -> QualityThresholds {
        var pairs: [String: String] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed == "---" { continue }
            guard let colon = trimmed.firstIndex(of: ":") else { throw QualityThresholdsError.syntax(line: n + 1, "expected key: value") }
            let key = trimmed[..<colon].trimmingCharacters(in: .whitespaces)
            let value = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, !value.isEmpty else { throw QualityThresholdsError.syntax(line: n + 1, "expected key: value") }
            guard pairs[key] == nil else { throw QualityThresholdsError.syntax(line: n + 1, "duplicate key \(key)") }
            pairs[key] = value
        }
        return try from(pairs)
    }

    static func from(_ pairs: [String: String]) throws -> QualityThresholds {
        var t = QualityThresholds()
        for (key, value) in pairs {
            func real() throws -> Double {
                guard let x = Double(value), x.isFinite else { throw QualityThresholdsError.badValue(key: key, value: value) }
                return x
            }
            func count() throws -> Int {
                guard let x = Int(value), x >= 0 else { throw QualityThresholdsError.badValue(key: key, value: value) }
                return x
            }
            switch key {
            case "maxTremor": t.maxTremor = try real()
            case "minSharpness": t.minSharpness = try real()
            case "minStateDiversity": t.minStateDiversity = try real()
            case "minVisualDiversity": t.minVisualDiversity = try real()
            case "maxIdleFraction": t.maxIdleFraction = try real()
            case "maxDurationZ": t.maxDurationZ = try real()
            case "maxFrozenFraction": t.maxFrozenFraction = try real()
            case "maxMissingFrames": t.maxMissingFrames = try count()
            case "maxGripperChatter": t.maxGripperChatter = try count()
            case "maxNonFinite": t.maxNonFinite = try count()
            case "requireSuccess":
                switch value.lowercased() {
                case "true", "yes", "1": t.requireSuccess = true
                case "false", "no", "0": t.requireSuccess = false
                default: throw QualityThresholdsError.badValue(key: key, value: value)
                }
            default: throw QualityThresholdsError.unknownKey(key)
            }
        }
        return t
    }

    /// The flat YAML form `parse(yaml:)` reads.
    public var yaml: String {
        """
        # DataQA thresholds (flat key: value; see docs/dataqa.md)
        maxTremor: \(maxTremor)
        minSharpness: \(minSharpness)
        minStateDiversity: \(minStateDiversity)
        minVisualDiversity: \(minVisualDiversity)
        maxIdleFraction: \(maxIdleFraction)
        maxDurationZ: \(maxDurationZ)
        maxFrozenFraction: \(maxFrozenFraction)
        maxMissingFrames: \(maxMissingFrames)
        maxGripperChatter: \(maxGripperChatter)
        maxNonFinite: \(maxNonFinite)
        requireSuccess: \(requireSuccess)

        """
    }
}

/// Problems with a thresholds file.
public enum QualityThresholdsError: Error, Equatable, CustomStringConvertible {
    case unreadable(String)
    case syntax(line: Int, String)
    case unknownKey(String)
    case badValue(key: String, value: String)

    public var description: String {
        switch self {
        case .unreadable(let p): "cannot read thresholds file \(p)"
        case let .syntax(l, m): "thresholds line \(l): \(m)"
        case .unknownKey(let k): "unknown threshold \(k) (known: \(QualityThresholds.keys.joined(separator: ", ")))"
        case let .badValue(k, v): "threshold \(k): bad value \(v)"
        }
    }
}

extension QualityThresholds {
    /// Thresholds from clean reference episodes and known-imperfect ones (docs/dataqa.md):
    /// for each calibrated metric (tremor, idle fraction, sharpness, state and visual diversity)
    /// the limit sits halfway between the clean extreme (max for "at most", min for "at least")
    /// and the imperfect median when the imperfect median lies beyond the clean extreme; when it
    /// does not, the data says nothing about that metric and `base`'s value is kept. Frozen and
    /// missing frames, chatter, non-finite values and duration always keep `base`'s values.
    public static func calibrated(clean: [EpisodeQuality], imperfect: [EpisodeQuality],
                                  base: QualityThresholds = QualityThresholds()) -> QualityThresholds {
        guard !clean.isEmpty, !imperfect.isEmpty else { return base }
        func atMost(_ key: (EpisodeQuality) -> Double, _ fallback: Double) -> Double {
            let c = clean.map(key).max()!, m = DataQA.median(imperfect.map(key))
            return m > c ? c + (m - c) / 2 : fallback
        }
        func atLeast(_ key: (EpisodeQuality) -> Double, _ fallback: Double) -> Double {
            let c = clean.map(key).min()!, m = DataQA.median(imperfect.map(key))
            return m < c ? c - (c - m) / 2 : fallback
        }
        var t = base
        t.maxTremor = atMost({ $0.tremor }, base.maxTremor)
        t.maxIdleFraction = atMost({ $0.idleFraction }, base.maxIdleFraction)
        t.minSharpness = atLeast({ $0.sharpness }, base.minSharpness)
        t.minStateDiversity = atLeast({ $0.stateDiversity }, base.minStateDiversity)
        t.minVisualDiversity = atLeast({ $0.visualDiversity }, base.minVisualDiversity)
        return t
    }
}
