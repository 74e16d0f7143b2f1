import Foundation
import Fleet

/// Everything the dashboard shows, read from a running learner at one instant. The page,
/// `/api/status.json` and `/metrics` all render this one value, so they agree.
public struct DashboardSnapshot: Codable, Sendable {
    public struct ActorRow: Codable, Sendable, Equatable {
        public var id: String
        public var embodiment: String
        public var task: String
        /// The version the actor runs (its last heartbeat; else its newest episode's).
        public var policyVersion: Int
        /// Versions behind the learner's newest.
        public var policyLag: Int
        /// Episodes the learner accepted from this actor.
        public var episodes: Int
        /// Accepted episodes per second over the last `rateWindow` seconds.
        public var episodesPerSecond: Double
        /// Operator steps / all steps over its accepted episodes.
        public var interventionRate: Double
        public var successRate: Double
        /// Seconds since its last heartbeat or registration.
        public var secondsSinceSeen: Double
    }

    public struct TaskRow: Codable, Sendable, Equatable {
        /// "embodiment/task".
        public var task: String
        public var episodes: Int
        public var successRate: Double
        public var interventionRate: Double
        /// Success over the most recent `recentEpisodes` episodes of the task.
        public var recentSuccessRate: Double
        public var sampler: TaskSamplerStatus?
    }

    /// A point of a curve over learner time.
    public struct Point: Codable, Sendable, Equatable {
        public var seconds: Double
        public var value: Double
    }

    public var uptimeSeconds: Double
    public var latestVersion: Int
    public var metrics: FleetMetrics.Snapshot
    public var actors: [ActorRow]
    public var tasks: [TaskRow]
    /// Per task: success and intervention rate per time bin (bins of the learner's uptime).
    public var successCurves: [String: [Point]]
    public var interventionCurves: [String: [Point]]
    /// Train loss (bin means, by learner time) and ω_on per task over time.
    public var lossCurve: [Point]
    public var onlineShareCurves: [String: [Point]]
    /// The newest accepted episodes, newest first.
    public var recentEpisodes: [LearnerHistory.Episode]

    public static let rateWindow = 60.0
    public static let recentEpisodes = 20

    /// Reads `learner` now. `bins`: points per curve.
    public static func read(_ learner: FleetLearner, bins: Int = 24, recentClips: Int = 6) -> DashboardSnapshot {
        let history = learner.history.snapshot()
        return make(history: history, actors: learner.actorStatuses(), metrics: learner.metrics.snapshot(),
                    latestVersion: learner.latestVersion, bins: bins, recentClips: recentClips)
    }

    /// Pure assembly, so it can be checked against hand-made histories.
    public static func make(history: LearnerHistory.Snapshot, actors: [FleetLearner.ActorStatus], metrics: FleetMetrics.Snapshot,
                            latestVersion: Int, now: Date = Date(), bins: Int = 24, recentClips: Int = 6) -> DashboardSnapshot {
        let episodes = history.episodes, uptime = history.seconds
        let byActor = Dictionary(grouping: episodes, by: \.actor)
        let window = min(rateWindow, max(uptime, 1e-9))
        let actorRows = actors.map { a -> ActorRow in
            let mine = byActor[a.id] ?? []
            let version = a.policyVersion > 0 ? a.policyVersion : (mine.last?.policyVersion ?? 0)
            return ActorRow(
                id: a.id, embodiment: a.embodiment, task: a.task, policyVersion: version,
                policyLag: max(0, latestVersion - version), episodes: mine.count,
                episodesPerSecond: Double(mine.filter { $0.receivedAt > uptime - window }.count) / window,
                interventionRate: operatorShare(mine), successRate: successRate(mine),
                secondsSinceSeen: max(0, now.timeIntervalSince(a.lastSeen)))
        }
        let sampler = history.trainPoints.last?.sampler ?? [:]
        let byTask = Dictionary(grouping: episodes, by: \.taskKey)
        let taskKeys = Set(byTask.keys).union(sampler.keys).sorted()
        let taskRows = taskKeys.map { key -> TaskRow in
            let mine = byTask[key] ?? []
            return TaskRow(task: key, episodes: mine.count, successRate: successRate(mine), interventionRate: operatorShare(mine),
                           recentSuccessRate: successRate(Array(mine.suffix(recentEpisodes))), sampler: sampler[key])
        }
        let width = max(uptime, 1e-9) / Double(max(1, bins))
        func bin(_ seconds: Double) -> Int { min(bins - 1, Int(seconds / width)) }
        func center(_ b: Int) -> Double { (Double(b) + 0.5) * width }
        func binned(_ items: [LearnerHistory.Episode], _ value: ([LearnerHistory.Episode]) -> Double) -> [Point] {
            let groups = Dictionary(grouping: items) { bin($0.receivedAt) }
            return groups.keys.sorted().map { Point(seconds: center($0), value: value(groups[$0]!)) }
        }
        var successCurves: [String: [Point]] = [:], interventionCurves: [String: [Point]] = [:]
        for (key, mine) in byTask {
            successCurves[key] = binned(mine, successRate)
            interventionCurves[key] = binned(mine, operatorShare)
        }
        let points = history.trainPoints
        let lossBins = Dictionary(grouping: points) { bin($0.seconds) }
        let lossCurve = lossBins.keys.sorted().map { b -> Point in
            let group = lossBins[b]!
            return Point(seconds: center(b), value: group.reduce(0.0) { $0 + $1.loss } / Double(group.count))
        }
        var shareCurves: [String: [Point]] = [:]
        for key in Set(points.flatMap(\.sampler.keys)) {
            // The sampler's last state in each bin.
            var last: [Int: Double] = [:]
            for p in points { if let status = p.sampler[key] { last[bin(p.seconds)] = status.onlineShare } }
            shareCurves[key] = last.keys.sorted().map { Point(seconds: center($0), value: last[$0]!) }
        }
        return DashboardSnapshot(
            uptimeSeconds: uptime, latestVersion: latestVersion, metrics: metrics, actors: actorRows, tasks: taskRows,
            successCurves: successCurves, interventionCurves: interventionCurves, lossCurve: lossCurve,
            onlineShareCurves: shareCurves, recentEpisodes: Array(episodes.suffix(recentClips).reversed()))
    }

    static func successRate(_ episodes: [LearnerHistory.Episode]) -> Double {
        episodes.isEmpty ? 0 : Double(episodes.filter(\.success).count) / Double(episodes.count)
    }

    static func operatorShare(_ episodes: [LearnerHistory.Episode]) -> Double {
        let steps = episodes.reduce(0) { $0 + $1.steps }
        return steps > 0 ? Double(episodes.reduce(0) { $0 + $1.operatorSteps }) / Double(steps) : 0
    }
}
