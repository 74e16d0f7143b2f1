import Foundation
import Fleet

/// The learner's dashboard as one plain HTML page (tables and inline SVG, no scripts); it
/// reloads itself every `refreshSeconds`. Cells that carry a figure have a `data-metric`
/// attribute naming it, so tools (and the tests) can read the numbers back.
public struct DashboardPage: Sendable {
    public var refreshSeconds = 5
    public var title = "SwiftVLA learner"

    public init() {}

    public func html(_ s: DashboardSnapshot) -> String {
        let m = s.metrics
        var page = """
        <!doctype html><html><head><meta charset="utf-8"><title>\(HTML.escape(title))</title>
        <meta http-equiv="refresh" content="\(refreshSeconds)">
        <style>body{font:14px system-ui,sans-serif;max-width:1100px;margin:1.5em auto;color:#222}
        table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
        th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.note{color:#666}
        .clips{display:flex;flex-wrap:wrap;gap:12px}.clips figure{margin:0}.clips figcaption{font-size:12px;color:#444}
        .charts{display:flex;flex-wrap:wrap;gap:8px}</style></head><body>
        <h1>\(HTML.escape(title))</h1>
        """
        page += "<table><tr>" + ["up", "policy version", "train steps", "last loss", "episodes", "episodes / s",
                                  "operator steps", "rejected", "ingest", "weights / version", "weights sent (deltas)"].map { "<th>\($0)</th>" }.joined() + "</tr><tr>"
        let operatorShare = m.stepsAccepted > 0 ? Double(m.operatorStepsAccepted) / Double(m.stepsAccepted) : 0
        page += cell("uptime-seconds", String(format: "%.0f s", s.uptimeSeconds))
        page += cell("policy-version", "\(s.latestVersion)")
        page += cell("train-steps", "\(m.trainSteps)")
        page += cell("last-loss", m.lastLoss.map { String(format: "%.4f", $0) } ?? "–")
        page += cell("episodes-accepted", "\(m.episodesAccepted)")
        page += cell("episodes-per-second", String(format: "%.3f", s.actors.reduce(0) { $0 + $1.episodesPerSecond }))
        page += cell("operator-share", String(format: "%.1f%%", 100 * operatorShare))
        page += cell("episodes-rejected", "\(m.episodesRejected)")
        page += cell("bytes-received", Self.bytes(m.bytesReceived))
        page += cell("publication-bytes", Self.bytes(m.lastPublicationBytes))
        page += cell("weight-bytes-sent", "\(Self.bytes(m.weightBytesSent)) (\(m.deltaVersionsSent)/\(m.versionsSent))")
        page += "</tr></table>"
        if !m.rejections.isEmpty {
            page += "<p>refused: " + m.rejections.sorted { $0.key < $1.key }
                .map { "<span data-metric='rejections-\(HTML.escape($0.key))'>\(HTML.escape($0.key)) \($0.value)</span>" }
                .joined(separator: ", ") + "</p>"
        }

        page += "<h2>Fleet</h2>"
        if s.actors.isEmpty {
            page += "<p class=note>no actors registered yet</p>"
        } else {
            page += "<table><tr>" + ["actor", "embodiment", "task", "policy version", "lag", "episodes", "episodes / s",
                                      "intervention rate", "success", "last seen"].map { "<th>\($0)</th>" }.joined() + "</tr>"
            for a in s.actors {
                let key = "actor-\(a.id)"
                page += "<tr data-actor='\(HTML.escape(a.id))'><td>\(HTML.escape(a.id))</td><td>\(HTML.escape(a.embodiment))</td><td>\(HTML.escape(a.task))</td>"
                page += cell("\(key)-policy-version", "\(a.policyVersion)") + cell("\(key)-policy-lag", "\(a.policyLag)")
                page += cell("\(key)-episodes", "\(a.episodes)")
                page += cell("\(key)-episodes-per-second", String(format: "%.3f", a.episodesPerSecond))
                page += cell("\(key)-intervention-rate", String(format: "%.1f%%", 100 * a.interventionRate))
                page += cell("\(key)-success-rate", String(format: "%.1f%%", 100 * a.successRate))
                page += "<td>\(String(format: "%.0f s ago", a.secondsSinceSeen))</td></tr>"
            }
            page += "</table>"
        }

        page += "<h2>Tasks</h2>"
        if s.tasks.isEmpty {
            page += "<p class=note>no episodes yet</p>"
        } else {
            page += "<table><tr>" + ["task", "episodes", "success", "success (last \(DashboardSnapshot.recentEpisodes))",
                                      "intervention rate", "ω_on (online share)", "online loss", "offline loss"]
                .map { "<th>\(HTML.escape($0))</th>" }.joined() + "</tr>"
            for t in s.tasks {
                let key = "task-\(t.task)"
                page += "<tr><td>\(HTML.escape(t.task))</td>" + cell("\(key)-episodes", "\(t.episodes)")
                page += cell("\(key)-success-rate", String(format: "%.1f%%", 100 * t.successRate))
                page += cell("\(key)-recent-success-rate", String(format: "%.1f%%", 100 * t.recentSuccessRate))
                page += cell("\(key)-intervention-rate", String(format: "%.1f%%", 100 * t.interventionRate))
                page += cell("\(key)-online-share", t.sampler.map { String(format: "%.3f", $0.onlineShare) } ?? "–")
                page += cell("\(key)-online-loss", t.sampler?.onlineLoss.map { String(format: "%.4f", $0) } ?? "–")
                page += cell("\(key)-offline-loss", t.sampler?.offlineLoss.map { String(format: "%.4f", $0) } ?? "–") + "</tr>"
            }
            page += "</table><p class=note>Fleet episodes include the operator's takeovers: their success is the fleet's, not the policy's alone.</p>"
        }

        page += "<h2>Over time</h2><div class=charts>"
        let colors = ["#2a9d3a", "#1f6fb2", "#b2341f", "#7a3fb2", "#b28a1f", "#1fb2a4"]
        for (i, task) in s.successCurves.keys.sorted().enumerated() {
            page += "<div><h3>\(HTML.escape(task))</h3>"
            page += SVGLineChart(xLabel: "seconds since the learner started", yAxis: .percent, series: [
                .init(name: "success", color: colors[i % colors.count], points: s.successCurves[task]!.map { ($0.seconds, $0.value) }),
                .init(name: "operator steps", color: "#e07b00", points: (s.interventionCurves[task] ?? []).map { ($0.seconds, $0.value) }),
            ]).svg() + "</div>"
        }
        page += "<div><h3>training loss</h3>"
        page += SVGLineChart(xLabel: "seconds since the learner started", yAxis: .values(fromZero: true), series: [
            .init(name: "flow-matching loss", color: "#444", points: s.lossCurve.map { ($0.seconds, $0.value) }),
        ]).svg() + "</div>"
        if !s.onlineShareCurves.isEmpty {
            page += "<div><h3>adaptive sampler: ω_on per task</h3>"
            page += SVGLineChart(xLabel: "seconds since the learner started", yAxis: .percent, series:
                s.onlineShareCurves.keys.sorted().enumerated().map { i, task in
                    .init(name: task, color: colors[i % colors.count], points: s.onlineShareCurves[task]!.map { ($0.seconds, $0.value) })
                }).svg() + "</div>"
        }
        page += "</div>"

        page += "<h2>Recent episodes</h2>"
        if s.recentEpisodes.isEmpty {
            page += "<p class=note>none yet</p>"
        } else {
            page += "<div class=clips>"
            for e in s.recentEpisodes {
                let share = e.steps > 0 ? 100 * Double(e.operatorSteps) / Double(e.steps) : 0
                page += "<figure><img src='/episodes/\(e.id.uuidString).gif' alt='episode \(e.id.uuidString)' loading='lazy'>"
                page += "<figcaption>\(HTML.escape(e.actor)) · \(HTML.escape(e.taskKey)) · v\(e.policyVersion) · "
                page += "\(e.success ? "success" : "failure") · \(e.steps) steps, \(String(format: "%.0f", share))% operator</figcaption></figure>"
            }
            page += "</div><p class=note>Orange frames: the operator was driving.</p>"
        }
        page += "<p class=note>Also: <a href='/api/status.json'>/api/status.json</a>, <a href='/metrics'>/metrics</a> (Prometheus).</p>"
        return page + "</body></html>\n"
    }

    static func bytes(_ n: Int) -> String {
        n >= 1_000_000 ? String(format: "%.1f MB", Double(n) / 1e6) : n >= 1000 ? String(format: "%.1f kB", Double(n) / 1e3) : "\(n) B"
    }

    private func cell(_ metric: String, _ text: String) -> String {
        "<td data-metric='\(HTML.escape(metric))'>\(HTML.escape(text))</td>"
    }
}
