import Foundation

/// An inline SVG line chart for self-contained HTML (the demo report, the learner dashboard):
/// one or more named series against a shared x axis, no scripts, no external files.
public struct SVGLineChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        /// CSS colour.
        public var color: String
        public var points: [(x: Double, y: Double)]

        public init(name: String, color: String, points: [(x: Double, y: Double)]) {
            self.name = name; self.color = color; self.points = points
        }
    }

    public enum YAxis: Sendable {
        /// 0–1 drawn as 0–100%.
        case percent
        /// The series' own range, padded to include 0 when `fromZero`.
        case values(fromZero: Bool)
    }

    public var xLabel: String
    public var yAxis: YAxis
    public var series: [Series]
    public var width = 640.0
    public var height = 220.0
    /// Series with more points than this are drawn without point markers.
    public var markerLimit = 40

    public init(xLabel: String, yAxis: YAxis, series: [Series]) {
        self.xLabel = xLabel; self.yAxis = yAxis; self.series = series
    }

    public func svg() -> String {
        let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.map(\.y) }.filter(\.isFinite)
        guard let xLo = xs.min(), let xMax = xs.max(), !ys.isEmpty else { return "<p class=note>no data yet</p>" }
        let xHi = max(xMax, xLo + 1)
        let (yLo, yHi): (Double, Double)
        switch yAxis {
        case .percent: (yLo, yHi) = (0, 1)
        case .values(let fromZero):
            let lo = fromZero ? min(0, ys.min()!) : ys.min()!, hi = ys.max()!
            (yLo, yHi) = hi > lo ? (lo, hi) : (lo - 0.5, lo + 0.5)
        }
        let (w, h) = (width, height), left = 56.0, bottom = 36.0, top = 12.0, right = 12.0
        func px(_ v: Double) -> Double { left + (v - xLo) / (xHi - xLo) * (w - left - right) }
        func py(_ v: Double) -> Double { top + (1 - (v - yLo) / (yHi - yLo)) * (h - top - bottom) }
        func yText(_ v: Double) -> String {
            switch yAxis {
            case .percent: String(format: "%.0f%%", 100 * v)
            case .values: abs(v) >= 100 || v == 0 ? String(format: "%.0f", v) : String(format: "%.3g", v)
            }
        }
        var svg = "<svg xmlns='http://www.w3.org/2000/svg' width='\(Int(w))' height='\(Int(h))' font-size='11'>"
        for v in [yLo, (yLo + yHi) / 2, yHi] {
            svg += String(format: "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke='#ddd'/>", left, w - right, py(v), py(v))
            svg += String(format: "<text x='%.1f' y='%.1f' text-anchor='end'>", left - 4, py(v) + 4) + yText(v) + "</text>"
        }
        svg += String(format: "<text x='%.1f' y='%.1f' text-anchor='middle'>", (left + w - right) / 2, h - 6) + HTML.escape(xLabel) + "</text>"
        svg += String(format: "<text x='%.1f' y='%.1f'>%.0f</text><text x='%.1f' y='%.1f' text-anchor='end'>%.0f</text>",
                      left, h - bottom + 14, xLo, w - right, h - bottom + 14, xMax)
        for (i, s) in series.enumerated() {
            let finite = s.points.filter { $0.y.isFinite }
            let points = finite.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
            svg += "<polyline fill='none' stroke='\(HTML.escape(s.color))' stroke-width='2' points='\(points)'/>"
            if finite.count <= markerLimit {
                for p in finite { svg += String(format: "<circle cx='%.1f' cy='%.1f' r='3' ", px(p.x), py(p.y)) + "fill='\(HTML.escape(s.color))'/>" }
            }
            svg += String(format: "<text x='%.1f' y='%.1f' ", w - right - 130, top + 10 + 14 * Double(i))
                + "fill='\(HTML.escape(s.color))'>\(HTML.escape(s.name))</text>"
        }
        return svg + "</svg>"
    }
}

/// HTML text escaping for the generated pages.
public enum HTML {
    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&#39;")
    }
}
