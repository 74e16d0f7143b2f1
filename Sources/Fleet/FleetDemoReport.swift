import Foundation
import Training

/// What `vla demo` measured: held-out success before and after post-training, and every
/// fleet episode (who ran it, under which policy version, how much the operator helped).
/// Written as `report.json` and as a self-contained `report.html`.
public struct FleetDemoReport: Codable, Sendable {
    public struct Evaluation: Codable, Sendable {
        public var embodiment: String
        public var task: String
        public var episodes: Int
        public var successes: Int
        public var rate: Double
        /// Wilson 95% interval.
        public var interval: [Double]
        /// Each held-out seed's success, in seed order (before and after run the same seeds,
        /// so the change is tested pairwise).
        public var perSeedSuccess: [Bool]? = nil
        /// Episodes that got to each of the task's milestones, in task order (where failures stop).
        public var milestones: [MilestoneCount]? = nil
    }

    public struct MilestoneCount: Codable, Sendable, Equatable {
        public var milestone: String
        public var episodes: Int
        public init(milestone: String, episodes: Int) {
            self.milestone = milestone
            self.episodes = episodes
        }
    }

    public struct Episode: Codable, Sendable {
        public var actor: String
        public var task: String
        public var policyVersion: Int
        public var policyLag: Int
        public var steps: Int
        public var operatorSteps: Int
        public var success: Bool
        /// Seconds from the fleet's start to the episode's end.
        public var finishedAt: Double
        /// Why the operator took over, in order (`InterventionGate.Reason` names).
        public var takeovers: [String]? = nil
    }

    /// Fleet episodes that ran under one policy version of one task.
    public struct VersionRow: Codable, Sendable, Equatable {
        public var version: Int
        public var episodes: Int
        public var successRate: Double
        /// Operator steps / all steps.
        public var interventionRate: Double
    }

    public var settings: [String: String] = [:]
    public var before: [Evaluation] = []
    public var after: [Evaluation] = []
    public var episodes: [Episode] = []
    public var fleetSeconds = 0.0
    public var trainSteps = 0
    public var versionsPublished = 0
    public var publicationBytes = 0
    /// Export + encode time of the last published version (seconds).
    public var publicationSeconds = 0.0
    /// The last version's delta against the one before, and what the watch streams carried:
    /// versions sent, how many as deltas, payload bytes (see `WeightDelta`).
    public var publicationDeltaBytes = 0
    public var versionsSent = 0
    public var deltaVersionsSent = 0
    public var weightBytesSent = 0
    /// Upload payload bytes the learner received (approximate wire size).
    public var bytesReceived = 0
    /// SOP's ω_on per task at the end.
    public var onlineShares: [String: Double] = [:]
    /// The post-training algorithm's own numbers (RECAP: ε and the positive share per task).
    public var algorithmSummary: [String: Double] = [:]
    /// Per actor, what its OOD guard saw (empty when the guard was off).
    public var oodGuard: [String: OODGuardRow] = [:]

    /// The learner's policy saved part-way through the fleet phase (`FleetDemo.snapshotSeconds`):
    /// points of a learning curve over robot time.
    public struct Snapshot: Codable, Sendable {
        /// Seconds into the fleet phase (paced actors: robot time).
        public var seconds: Double
        public var trainStep: Int
        public var checkpoint: String
    }
    public var snapshots: [Snapshot]? = nil

    /// One actor's OOD guard: chunks planned, those planned from an out-of-distribution state,
    /// and those whose targets it corrected.
    public struct OODGuardRow: Codable, Sendable, Equatable {
        public var chunks: Int
        public var outOfDistribution: Int
        public var corrected: Int
        public init(chunks: Int, outOfDistribution: Int, corrected: Int) {
            self.chunks = chunks; self.outOfDistribution = outOfDistribution; self.corrected = corrected
        }
    }

    public init() {}

    /// The learner's counters at the end of the run.
    public mutating func record(_ metrics: FleetMetrics.Snapshot) {
        trainSteps = metrics.trainSteps
        versionsPublished = metrics.versionsPublished
        publicationBytes = metrics.lastPublicationBytes
        publicationSeconds = metrics.lastPublicationSeconds
        publicationDeltaBytes = metrics.lastPublicationDeltaBytes
        versionsSent = metrics.versionsSent
        deltaVersionsSent = metrics.deltaVersionsSent
        weightBytesSent = metrics.weightBytesSent
        bytesReceived = metrics.bytesReceived
    }

    public var tasks: [String] { Array(Set(episodes.map(\.task)).union(before.map(\.task))).sorted() }
    /// Before vs after on the same held-out seeds (McNemar's exact test), when both kept
    /// their per-seed outcomes.
    public func paired(_ after: Evaluation) -> PairedComparison? {
        guard let b = before.first(where: { $0.task == after.task && $0.embodiment == after.embodiment }),
              let x = after.perSeedSuccess, let y = b.perSeedSuccess else { return nil }
        return try? PairedComparison(candidate: x, baseline: y)
    }
    public var episodesPerSecond: Double { fleetSeconds > 0 ? Double(episodes.count) / fleetSeconds : 0 }
    public var ingestMegabytesPerSecond: Double { fleetSeconds > 0 ? Double(bytesReceived) / 1e6 / fleetSeconds : 0 }
    public var meanPolicyLag: Double {
        episodes.isEmpty ? 0 : Double(episodes.reduce(0) { $0 + $1.policyLag }) / Double(episodes.count)
    }
    /// Operator takeovers per gate reason, and the episodes the policy ran without one.
    public var takeoversByReason: [String: Int] {
        episodes.flatMap { $0.takeovers ?? [] }.reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }
    public var episodesWithoutTakeover: Int { episodes.filter { $0.takeovers?.isEmpty == true }.count }
    public var interventionRate: Double {
        let steps = episodes.reduce(0) { $0 + $1.steps }
        return steps > 0 ? Double(episodes.reduce(0) { $0 + $1.operatorSteps }) / Double(steps) : 0
    }

    /// "deviation 120, stall 30, budget 12; 40 episodes without one" (reasons by count).
    public var takeoverSummary: String {
        let reasons = takeoversByReason.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key) \($0.value)" }
        return (reasons.isEmpty ? "none" : reasons.joined(separator: ", ")) + "; \(episodesWithoutTakeover) episodes without one"
    }

    /// Per policy version of `task`: episodes, success and intervention rates.
    public func byVersion(task: String) -> [VersionRow] {
        Dictionary(grouping: episodes.filter { $0.task == task }, by: \.policyVersion).keys.sorted().map { v in
            let group = episodes.filter { $0.task == task && $0.policyVersion == v }
            return Self.row(version: v, group)
        }
    }

    /// Per wall-time bin of `task` (`bins` equal slices of the fleet's run; `version` holds
    /// the bin index).
    public func byTime(task: String, bins: Int = 8) -> [(start: Double, row: VersionRow)] {
        guard fleetSeconds > 0, bins > 0 else { return [] }
        let width = fleetSeconds / Double(bins)
        let mine = episodes.filter { $0.task == task }
        return (0..<bins).compactMap { b in
            let group = mine.filter { min(bins - 1, Int($0.finishedAt / width)) == b }
            return group.isEmpty ? nil : (Double(b) * width, Self.row(version: b, group))
        }
    }

    static func row(version: Int, _ group: [Episode]) -> VersionRow {
        let steps = group.reduce(0) { $0 + $1.steps }, op = group.reduce(0) { $0 + $1.operatorSteps }
        return VersionRow(version: version, episodes: group.count,
                          successRate: Double(group.filter(\.success).count) / Double(max(1, group.count)),
                          interventionRate: steps > 0 ? Double(op) / Double(steps) : 0)
    }

    // MARK: HTML

    /// Before and after, how many held-out episodes got to each milestone (empty without counts).
    func milestoneTable() -> String {
        var rows = ""
        for b in before {
            guard let counts = b.milestones, !counts.isEmpty else { continue }
            let a = after.first { $0.task == b.task && $0.embodiment == b.embodiment }?.milestones ?? []
            for c in counts {
                let later = a.first { $0.milestone == c.milestone }.map { "\($0.episodes)" } ?? "–"
                rows += "<tr><td>\(Self.escape(b.embodiment))/\(Self.escape(b.task))</td><td>\(Self.escape(c.milestone))</td>"
                    + "<td>\(c.episodes)/\(b.episodes)</td><td>\(later)</td></tr>"
            }
        }
        guard !rows.isEmpty else { return "" }
        return "<h2>Where episodes stop (held-out, milestones reached)</h2><table><tr><th>task</th><th>milestone</th><th>before</th><th>after</th></tr>"
            + rows + "</table>"
    }

    public func html() -> String {
        var page = """
        <!doctype html><html><head><meta charset="utf-8"><title>SwiftVLA fleet report</title>
        <style>body{font:14px system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}
        table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
        th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.note{color:#666}</style></head><body>
        <h1>SwiftVLA fleet post-training</h1>
        """
        page += "<h2>Held-out success (policy alone, no operator)</h2><table><tr><th>task</th><th>before</th><th>after</th><th>change</th>"
            + "<th>seeds only after / only before</th><th>McNemar p</th></tr>"
        for b in before {
            let a = after.first { $0.task == b.task && $0.embodiment == b.embodiment }
            let p = a.flatMap(paired)
            page += "<tr><td>\(Self.escape(b.embodiment))/\(Self.escape(b.task))</td><td>\(Self.rate(b))</td>"
            page += "<td>\(a.map(Self.rate) ?? "–")</td><td>\(a.map { Self.signedPoints($0.rate - b.rate) } ?? "–")</td>"
            page += "<td>\(p.map { "\($0.candidateOnly) / \($0.baselineOnly)" } ?? "–")</td><td>\(p.map { String(format: "%.3g", $0.pValue) } ?? "–")</td></tr>"
        }
        page += "</table><p class=note>Before and after run the same held-out seeds; McNemar's exact test counts the seeds only one of them solved.</p>"
        page += milestoneTable()
        page += "<h2>Fleet</h2><table>"
        let facts: [(String, String)] = [
            ("episodes", "\(episodes.count)"),
            ("wall time", String(format: "%.0f s", fleetSeconds)),
            ("episodes / s", String(format: "%.3f", episodesPerSecond)),
            ("learner train steps", "\(trainSteps)"),
            ("policy versions published", "\(versionsPublished)"),
            ("weights per version", String(format: "%.2f MB, encoded in %.0f ms", Double(publicationBytes) / 1e6, 1000 * publicationSeconds)),
            ("weights sent", String(format: "%d versions (%d as deltas, last delta %.2f MB), %.1f MB in all",
                                    versionsSent, deltaVersionsSent, Double(publicationDeltaBytes) / 1e6, Double(weightBytesSent) / 1e6)),
            ("learner ingest", String(format: "%.1f MB in total, %.2f MB/s", Double(bytesReceived) / 1e6, ingestMegabytesPerSecond)),
            ("mean policy lag (versions)", String(format: "%.2f", meanPolicyLag)),
            ("operator steps", String(format: "%.1f%%", 100 * interventionRate)),
            ("operator takeovers", takeoverSummary),
        ] + onlineShares.sorted { $0.key < $1.key }.map { ("ω_on " + $0.key, String(format: "%.2f", $0.value)) }
          + algorithmSummary.sorted { $0.key < $1.key }.map { ($0.key, String(format: "%.3f", $0.value)) }
        for (k, v) in facts { page += "<tr><td>\(Self.escape(k))</td><td>\(Self.escape(v))</td></tr>" }
        page += "</table>"
        page += "<p class=note>Fleet episodes include the operator's takeovers, so their success is not the policy's alone; the held-out table above is.</p>"
        if !oodGuard.isEmpty {
            page += "<h2>OOD guard on the actors</h2><table><tr><th>actor</th><th>chunks</th><th>from an OOD state</th><th>corrected</th></tr>"
            for (actor, row) in oodGuard.sorted(by: { $0.key < $1.key }) {
                let share = row.chunks > 0 ? 100 * Double(row.outOfDistribution) / Double(row.chunks) : 0
                page += "<tr><td>\(Self.escape(actor))</td><td>\(row.chunks)</td><td>\(row.outOfDistribution) (\(String(format: "%.1f", share))%)</td><td>\(row.corrected)</td></tr>"
            }
            page += "</table>"
        }
        for task in tasks {
            let versions = byVersion(task: task)
            page += "<h3>\(Self.escape(task)): per policy version</h3>"
            page += Self.chart(x: versions.map { Double($0.version) }, xLabel: "policy version", rows: versions.map { $0 })
            let time = byTime(task: task)
            page += "<h3>\(Self.escape(task)): over wall time</h3>"
            page += Self.chart(x: time.map(\.start), xLabel: "seconds since the fleet started", rows: time.map(\.row))
        }
        if !settings.isEmpty {
            page += "<h2>Settings</h2><table>"
            for (k, v) in settings.sorted(by: { $0.key < $1.key }) { page += "<tr><td>\(Self.escape(k))</td><td>\(Self.escape(v))</td></tr>" }
            page += "</table>"
        }
        return page + "</body></html>\n"
    }

    public static func rate(_ e: Evaluation) -> String {
        String(format: "%.0f%% [%.0f–%.0f] (%d/%d)", 100 * e.rate, 100 * e.interval[0], 100 * e.interval[1], e.successes, e.episodes)
    }

    public static func signedPoints(_ d: Double) -> String { String(format: "%+.0f points", 100 * d) }

    static func escape(_ s: String) -> String { HTML.escape(s) }

    /// Success rate (green) and intervention rate (orange), 0–100%, against x.
    static func chart(x: [Double], xLabel: String, rows: [VersionRow]) -> String {
        guard !x.isEmpty else { return "<p class=note>no episodes</p>" }
        let chart = SVGLineChart(xLabel: xLabel, yAxis: .percent, series: [
            .init(name: "success", color: "#2a9d3a", points: zip(x, rows).map { ($0, $1.successRate) }),
            .init(name: "operator steps", color: "#e07b00", points: zip(x, rows).map { ($0, $1.interventionRate) }),
        ])
        let counts = rows.map { "\($0.episodes)" }.joined(separator: ", ")
        return chart.svg() + "<p class=note>episodes per point: \(counts)</p>"
    }
}
