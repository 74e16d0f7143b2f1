import Foundation
import Testing
@testable import RobotData

/// Defects a synthetic DataQA episode can carry.
enum QADefect: String, CaseIterable, Sendable {
    case none, jitter, blur, frozen, idle, stuck, chatter
}

/// A smooth 7-joint + gripper episode whose 32×32 camera shows a textured background and a
/// checkered block that moves with joint 0; `defect` injects one known problem.
func qaEpisode(seed: UInt64, defect: QADefect = .none, task: String = "pick_place") throws -> Episode {
    let side = 32
    let idleSteps = defect == .idle ? 30 : 0
    let moving = 40
    let steps = moving + idleSteps
    let amplitude: Float = defect == .stuck ? 0.02 : 0.6
    let phase = Float(seed) * 0.37
    // Joint targets: smooth sinusoids; an idle episode holds still in the middle.
    func motionTime(_ t: Int) -> Int { t < moving / 2 ? t : (t < moving / 2 + idleSteps ? moving / 2 : t - idleSteps) }
    var noise = DataQARandom(seed: seed &+ 99)
    var actions: [[Float]] = [], states: [[Float]] = []
    for t in 0..<steps {
        let m = Float(motionTime(t))
        var q = (0..<7).map { j in amplitude * sin(2 * .pi * m / Float(moving) * (0.5 + 0.1 * Float(j)) + phase + Float(j)) }
        let gripper: Float
        if defect == .chatter { gripper = (t / 2) % 2 == 0 ? 1 : 0 } else { gripper = motionTime(t) < moving / 2 ? 1 : 0 }
        states.append(q + [gripper])
        if defect == .jitter { q = q.map { $0 + 0.03 * noise.gaussian() } }
        actions.append(q + [gripper])
    }
    var pixels = [UInt8](repeating: 0, count: steps * side * side * 3)
    for t in 0..<steps {
        let shown = defect == .frozen && t >= 4 ? 4 : t
        let x0 = Int((10 + 14 * states[shown][0] / 0.6).rounded())
        var gray = [Float](repeating: 0, count: side * side)
        for y in 0..<side {
            for x in 0..<side {
                var v = qaTexture(Float(x) + Float(seed) - 12 * states[shown][0], Float(y) - 8 * states[shown][1])
                if x >= x0, x < x0 + 8, y >= 12, y < 20 { v = (x + y) % 2 == 0 ? 0.95 : 0.05 }
                gray[y * side + x] = v
            }
        }
        if defect == .blur { gray = try GrayImage(width: side, height: side, pixels: gray).gaussianBlurred(sigma: 1.5).pixels }
        for i in 0..<(side * side) {
            let b = UInt8(min(max(gray[i] * 255, 0), 255).rounded())
            for c in 0..<3 { pixels[(t * side * side + i) * 3 + c] = b }
        }
    }
    var mask = [Float](repeating: 0, count: 64)
    for k in 0..<7 { mask[k] = 1 }
    mask[13] = 1
    let unified = actions.map { a -> [Float] in
        var u = [Float](repeating: 0, count: 64)
        for k in 0..<7 { u[k] = a[k] }
        u[13] = a[7]
        return u
    }
    return Episode(
        id: UUID(uuidString: String(format: "00000000-0000-0000-%04X-%012X", QADefect.allCases.firstIndex(of: defect)!, seed))!,
        embodiment: "arm7", task: task, instruction: "test", cameras: ["scene": CameraFrames(height: side, width: side, pixels: pixels)],
        states: try StepMatrix(states, columns: 8), nativeActions: try StepMatrix(actions, columns: 8),
        unifiedActions: try StepMatrix(unified, columns: 64), actionMask: mask,
        rewards: (0..<steps).map { $0 == steps - 1 ? 1 : 0 }, dones: (0..<steps).map { $0 == steps - 1 },
        sources: Array(repeating: .demo, count: steps), timestamps: (0..<steps).map { Double($0) * 0.05 }, success: true)
}

/// A smooth texture in [0.1, 0.9] (sum of a few plane waves).
func qaTexture(_ x: Float, _ y: Float) -> Float {
    0.5 + 0.18 * sin(2 * .pi * x / 11 + 0.3) * sin(2 * .pi * y / 7) + 0.12 * cos(2 * .pi * (x + y) / 13)
        + 0.1 * sin(2 * .pi * (x - 2 * y) / 17)
}

/// Seeded test randomness (SplitMix64 + Box–Muller).
struct DataQARandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Float { (Float(next() >> 40) + 0.5) / Float(1 << 24) }
    mutating func gaussian() -> Float { (-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform()) }
}

@Suite("DataQA")
struct DataQATests {
    /// Four clean episodes and one per defect, assessed together.
    static func assessed() throws -> (table: [EpisodeQuality], byDefect: [QADefect: EpisodeQuality]) {
        var episodes: [Episode] = []
        var defects: [QADefect] = []
        for seed in 1...4 as ClosedRange<UInt64> { episodes.append(try qaEpisode(seed: seed)); defects.append(.none) }
        for d in QADefect.allCases where d != .none { episodes.append(try qaEpisode(seed: 9, defect: d)); defects.append(d) }
        let table = DataQA().assess(episodes)
        var byDefect: [QADefect: EpisodeQuality] = [:]
        for (d, q) in zip(defects, table) where d != .none { byDefect[d] = q }
        return (table, byDefect)
    }

    @Test func eachMetricRanksItsDefectWorst() throws {
        let (table, d) = try Self.assessed()
        func worst(_ key: (EpisodeQuality) -> Double, highIsBad: Bool) -> UUID {
            (highIsBad ? table.max { key($0) < key($1) } : table.min { key($0) < key($1) })!.id
        }
        #expect(worst({ $0.tremor }, highIsBad: true) == d[.jitter]!.id)
        #expect(worst({ $0.sharpness }, highIsBad: false) == d[.blur]!.id)
        #expect(worst({ $0.frozenFraction }, highIsBad: true) == d[.frozen]!.id)
        // A frozen camera and a robot that barely moves both show the least visual change.
        let leastVisual = table.sorted { $0.visualDiversity < $1.visualDiversity }.prefix(2).map(\.id)
        #expect(Set(leastVisual) == [d[.frozen]!.id, d[.stuck]!.id])
        #expect(worst({ $0.idleFraction }, highIsBad: true) == d[.idle]!.id)
        #expect(worst({ abs($0.durationZ) }, highIsBad: true) == d[.idle]!.id)
        #expect(worst({ $0.stateDiversity }, highIsBad: false) == d[.stuck]!.id)
        #expect(worst({ Double($0.gripperChatter) }, highIsBad: true) == d[.chatter]!.id)
        // Clean episodes: one legit grasp (a single flip, no chatter), nothing frozen or missing.
        for q in table where !d.values.contains(where: { $0.id == q.id }) {
            #expect(q.gripperFlips == 1 && q.gripperChatter == 0 && q.frozenFraction == 0 && q.missingFrames == 0)
        }
    }

    /// Thresholds calibrated on the clean synthetic episodes vs the defective ones
    /// (`QualityThresholds.calibrated`) keep every clean episode and reject every defect.
    @Test func defectiveEpisodesScoreBelowCleanOnesAndFailFilters() throws {
        let (raw, d) = try Self.assessed()
        let defective = Set(d.values.map(\.id))
        let thresholds = QualityThresholds.calibrated(clean: raw.filter { !defective.contains($0.id) },
                                                      imperfect: raw.filter { defective.contains($0.id) })
        let table = raw.map { q -> EpisodeQuality in
            var q = q
            q.failures = thresholds.failures(q)
            q.score = thresholds.score(q)
            return q
        }
        let clean = table.filter { !defective.contains($0.id) }
        for q in clean { #expect(q.failures.isEmpty, "clean episode fails \(q.failures)") }
        let cleanMin = clean.map(\.score).min()!
        for (defect, old) in d {
            let q = table.first { $0.id == old.id }!
            #expect(q.score < cleanMin, "\(defect) scores \(q.score) ≥ clean \(cleanMin)")
            #expect(!q.failures.isEmpty, "\(defect) passes every threshold")
        }
        let view = FilteredView(dataset: "synthetic", thresholds: thresholds, table: table)
        #expect(Set(view.episodeIDs) == Set(clean.map(\.id)))
        #expect(view.rejected.count == d.count)
        let weights = DataQA.samplingWeights(table)
        #expect(abs(weights.values.reduce(0, +) - 1) < 1e-12)
    }

    /// Closed forms: a constant velocity has S = 0; an alternating ±1 velocity is almost all
    /// "tremor" (its σ=2 Gaussian smoothing is ≈ 0 inside).
    @Test func tremorClosedForms() throws {
        func episode(_ joint0: [Float]) throws -> Episode {
            var e = try qaEpisode(seed: 1)
            let t = e.stepCount
            var u = [Float](repeating: 0, count: t * 64)
            for i in 0..<t { u[i * 64] = joint0[i] }
            e.unifiedActions = try StepMatrix(rows: t, columns: 64, values: u)
            var mask = [Float](repeating: 0, count: 64)
            mask[0] = 1
            e.actionMask = mask
            return e
        }
        let qa = DataQA()
        #expect(qa.tremor(try episode((0..<40).map { 0.1 * Float($0) })) < 1e-6)
        // Positions 0, 1, 0, 1, …: velocity ±1; smoothed velocity of an alternating sign with
        // σ = 2 (13 taps) has magnitude Σ(−1)^k w_k / Σ w_k = 7.5e-4 in the interior.
        let zigzag = try episode((0..<40).map { Float($0 % 2) })
        #expect(qa.tremor(zigzag) > 0.9)
    }

    @Test func stateDiversityAndRobustZClosedForms() throws {
        var e = try qaEpisode(seed: 1)
        // s_t = (t, 2, …): sample variance of 0…39 is 40·41/12 = 136.666…, other columns constant.
        e.states = try StepMatrix((0..<40).map { [Float($0)] + Array(repeating: 2, count: 7) }, columns: 8)
        #expect(abs(DataQA().stateDiversity(e) - (40.0 * 41 / 12).squareRoot()) < 1e-9)
        // [8, 10, 11, 12, 30]: median 11, MAD = median(3, 1, 0, 1, 19) = 1.
        let z = DataQA.robustZ([8, 10, 11, 12, 30])
        #expect(abs(z[4] - 0.6745 * 19) < 1e-12 && abs(z[0] + 0.6745 * 3) < 1e-12)
    }

    /// One bright pixel at (3, 3): the Laplacian in its 8×8 block holds −4 once and +1 four
    /// times, mean 0, so the block std is √(20/64) = 0.55902.
    @Test func sharpnessOfAnImpulse() throws {
        var pixels = [Float](repeating: 0, count: 16 * 16)
        pixels[3 * 16 + 3] = 1
        let image = try GrayImage(width: 16, height: 16, pixels: pixels)
        #expect(abs(DataQA().blockMaxLaplacianStd(image) - (20.0 / 64).squareRoot()) < 1e-6)
    }

    @Test func gripperChatterCountsQuicklyUndoneFlips() throws {
        var e = try qaEpisode(seed: 1)
        // Flips at t = 2, 3, 4 (chatter: 3 − 2 and 4 − 3 ≤ 5) and at t = 12 (8 steps later: a real change).
        let commands: [Float] = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1] + Array(repeating: 1, count: 27)
        for t in 0..<40 { e.unifiedActions.values[t * 64 + 13] = commands[t] }
        let r = DataQA().gripperChatter(e)
        #expect(r.flips == 4 && r.chatter == 2)
    }

    @Test func nonFiniteAndMissingFramesAreCounted() throws {
        var e = try qaEpisode(seed: 2)
        e.states.values[5] = .nan
        e.unifiedActions.values[64 * 3] = .infinity
        let c = e.cameras["scene"]!
        var pixels = c.pixels
        for i in (7 * c.frameBytes)..<(8 * c.frameBytes) { pixels[i] = 0 }
        e.cameras["scene"] = CameraFrames(height: c.height, width: c.width, pixels: pixels)
        let q = DataQA().metrics(e)
        #expect(q.nonFinite == 2 && q.missingFrames == 1)
        #expect(QualityThresholds().score(q) == 0)
    }

    @Test func thresholdsParseFlatYAMLAndJSONAndRejectUnknownKeys() throws {
        let t = try QualityThresholds.parse(yaml: "# comment\nmaxTremor: 0.25  # inline\nrequireSuccess: true\n\nmaxGripperChatter: 4\n")
        #expect(t.maxTremor == 0.25 && t.requireSuccess && t.maxGripperChatter == 4 && t.minSharpness == QualityThresholds().minSharpness)
        #expect(try QualityThresholds.parse(yaml: t.yaml) == t)
        #expect(throws: QualityThresholdsError.unknownKey("maxTremour")) { try QualityThresholds.parse(yaml: "maxTremour: 1") }
        #expect(throws: QualityThresholdsError.badValue(key: "maxIdleFraction", value: "lots")) {
            try QualityThresholds.parse(yaml: "maxIdleFraction: lots")
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("thresholds-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(#"{"maxTremor": 0.3, "requireSuccess": false, "maxMissingFrames": 2}"#.utf8).write(to: url)
        let j = try QualityThresholds.load(from: url)
        #expect(j.maxTremor == 0.3 && !j.requireSuccess && j.maxMissingFrames == 2)
    }

    /// Known constants: Adler-32("Wikipedia") = 0x11E60398; every IEND chunk's CRC is 0xAE426082.
    @Test func pngEncoderChecksums() throws {
        let z = PNGImage.zlibStored(Array("Wikipedia".utf8))
        #expect(Array(z.suffix(4)) == [0x11, 0xE6, 0x03, 0x98])
        let png = try PNGImage.encode(rgb: ArraySlice([UInt8](repeating: 200, count: 2 * 3 * 3)), width: 2, height: 3)
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(Array(png.suffix(4)) == [0xAE, 0x42, 0x60, 0x82])
        #expect(throws: EpisodeError.self) { try PNGImage.encode(rgb: [1, 2], width: 2, height: 2) }
    }

    @Test func reportWritesTableAndHTMLAndScoresReachTheStore() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("dataqa-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let episodes = [try qaEpisode(seed: 1), try qaEpisode(seed: 2), try qaEpisode(seed: 3, defect: .frozen)]
        let table = DataQA().assess(episodes)
        let report = QAReport(dataset: "synthetic", thresholds: QualityThresholds(), table: table)
        try report.write(to: root, episodes: Dictionary(uniqueKeysWithValues: episodes.map { ($0.id, $0) }))
        let csv = try String(contentsOf: root.appendingPathComponent("quality.csv"), encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 4)
        let html = try String(contentsOf: root.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(html.contains("<svg") && html.contains("data:image/png;base64,"))
        #expect(report.worst.first?.id == episodes[2].id)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("quality.json"))) as! [String: Any]
        #expect((json["episodes"] as! [Any]).count == 3)

        let store = try EpisodeStore(root: root.appendingPathComponent("store"))
        for e in episodes { try store.insert(e) }
        for q in table { try store.setQualityScore(q.score, for: q.id) }
        #expect(try store.records(matching: EpisodeQuery(minimumQuality: 0.5)).count == 2)
    }
}
