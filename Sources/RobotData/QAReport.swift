import Foundation

/// The output of `vla data qa`: the per-episode table (CSV + JSON) and a self-contained HTML
/// report (inline SVG histograms, the worst episodes' frames as PNG data URIs).
public struct QAReport: Sendable {
    public var dataset: String
    public var thresholds: QualityThresholds
    public var table: [EpisodeQuality]
    /// Worst episodes shown with frames in the HTML report.
    public var worstCount = 5
    /// Frames shown per worst episode (evenly spaced).
    public var framesPerEpisode = 6

    public init(dataset: String, thresholds: QualityThresholds, table: [EpisodeQuality]) {
        self.dataset = dataset
        self.thresholds = thresholds
        self.table = table
    }

    public var csv: String {
        func escape(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        return ([EpisodeQuality.csvColumns] + table.map(\.csvRow)).map { $0.map(escape).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    /// `{"dataset", "thresholds", "episodes": [EpisodeQuality], "weights": {id: w}}`.
    public func json() throws -> Data {
        struct Document: Encodable {
            let dataset: String
            let thresholds: QualityThresholds
            let episodes: [EpisodeQuality]
            let weights: [String: Double]
        }
        let weights = DataQA.samplingWeights(table)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(Document(dataset: dataset, thresholds: thresholds, episodes: table,
                                           weights: Dictionary(uniqueKeysWithValues: weights.map { ($0.key.uuidString, $0.value) })))
    }

    /// The lowest-scoring episodes (ties: more failures first, then id).
    public var worst: [EpisodeQuality] {
        Array(table.sorted { ($0.score, -$0.failures.count, $0.id.uuidString) < ($1.score, -$1.failures.count, $1.id.uuidString) }
            .prefix(worstCount))
    }

    /// Plain HTML; `episodes` supplies the frames of the worst episodes (by id; missing ones are skipped).
    public func html(episodes: [UUID: Episode]) -> String {
        var h = """
        <!DOCTYPE html><html><head><meta charset="utf-8"><title>DataQA: \(escape(dataset))</title>
        <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}
        td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}.bad{background:#fdd}
        .hist{display:inline-block;margin:0 1em 1em 0}img{image-rendering:pixelated;margin-right:2px}</style>
        </head><body><h1>DataQA report</h1>
        <p>Dataset <code>\(escape(dataset))</code>: \(table.count) episodes, \(table.filter { $0.failures.isEmpty }.count) pass every threshold,
        mean quality score \(String(format: "%.3f", table.isEmpty ? 0 : table.reduce(0) { $0 + $1.score } / Double(table.count))).</p>
        <h2>Histograms</h2><p>Red line: threshold.</p>
        """
        let metrics: [(String, (EpisodeQuality) -> Double, Double?)] = [
            ("tremor", { $0.tremor }, thresholds.maxTremor),
            ("sharpness", { $0.sharpness }, thresholds.minSharpness),
            ("stateDiversity", { $0.stateDiversity }, thresholds.minStateDiversity),
            ("visualDiversity", { $0.visualDiversity }, thresholds.minVisualDiversity),
            ("idleFraction", { $0.idleFraction }, thresholds.maxIdleFraction),
            ("durationZ", { $0.durationZ }, thresholds.maxDurationZ),
            ("frozenFraction", { $0.frozenFraction }, thresholds.maxFrozenFraction),
            ("gripperChatter", { Double($0.gripperChatter) }, Double(thresholds.maxGripperChatter)),
            ("score", { $0.score }, nil),
        ]
        for (name, value, limit) in metrics {
            h += "<div class=\"hist\"><div>\(name)</div>\(Self.histogramSVG(table.map(value), threshold: limit))</div>\n"
        }
        h += "<h2>Worst episodes</h2>\n"
        for q in worst {
            h += "<h3>\(q.id.uuidString) — \(escape(q.task)), score \(String(format: "%.3f", q.score))"
            h += q.failures.isEmpty ? "" : ", fails: \(q.failures.joined(separator: ", "))"
            h += "</h3>\n<p>"
            if let e = episodes[q.id] {
                for name in e.cameras.keys.sorted() {
                    let c = e.cameras[name]!
                    let n = min(framesPerEpisode, c.count)
                    for k in 0..<n {
                        let t = n == 1 ? 0 : k * (c.count - 1) / (n - 1)
                        if let uri = try? PNGImage.dataURI(rgb: c.frame(t), width: c.width, height: c.height) {
                            h += "<img src=\"\(uri)\" width=\"\(c.width * 2)\" title=\"\(escape(name)) step \(t)\">"
                        }
                    }
                    h += "<br>\n"
                }
            }
            h += "</p>\n"
        }
        h += "<h2>Episodes</h2><table><tr>" + EpisodeQuality.csvColumns.map { "<th>\($0)</th>" }.joined() + "</tr>\n"
        for q in table.sorted(by: { $0.score < $1.score }) {
            h += "<tr\(q.failures.isEmpty ? "" : " class=\"bad\"")>" + q.csvRow.map { "<td>\(escape($0))</td>" }.joined() + "</tr>\n"
        }
        return h + "</table></body></html>\n"
    }

    /// Writes `quality.csv`, `quality.json` and `report.html` into `directory`.
    public func write(to directory: URL, episodes: [UUID: Episode]) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data(csv.utf8).write(to: directory.appendingPathComponent("quality.csv"), options: .atomic)
        try json().write(to: directory.appendingPathComponent("quality.json"), options: .atomic)
        try Data(html(episodes: episodes).utf8).write(to: directory.appendingPathComponent("report.html"), options: .atomic)
    }

    /// A 20-bin histogram as inline SVG, with an optional threshold marker.
    public static func histogramSVG(_ values: [Double], threshold: Double?, bins: Int = 20, width: Int = 240, height: Int = 90) -> String {
        let finite = values.filter(\.isFinite)
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        if let t = threshold, t.isFinite { lo = min(lo, t); hi = max(hi, t) }
        if hi <= lo { hi = lo + 1 }
        var counts = [Int](repeating: 0, count: bins)
        for v in finite { counts[min(Int((v - lo) / (hi - lo) * Double(bins)), bins - 1)] += 1 }
        let top = max(counts.max() ?? 1, 1)
        let plot = height - 14, bw = Double(width) / Double(bins)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\">"
        for (i, c) in counts.enumerated() where c > 0 {
            let bh = Double(plot) * Double(c) / Double(top)
            s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#4a7ab0\"><title>%d</title></rect>",
                        Double(i) * bw, Double(plot) - bh, bw - 1, bh, c)
        }
        if let t = threshold, t.isFinite {
            let x = (t - lo) / (hi - lo) * Double(width)
            s += String(format: "<line x1=\"%.1f\" y1=\"0\" x2=\"%.1f\" y2=\"%d\" stroke=\"red\"/>", x, x, plot)
        }
        s += String(format: "<text x=\"0\" y=\"%d\" font-size=\"10\">%.3g</text>", height - 2, lo)
        s += String(format: "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">%.3g</text>", width, height - 2, hi)
        return s + "</svg>"
    }

    func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
