import Foundation

/// Green-VLA's DataQA: per-episode quality metrics, a quality score, filtering and the
/// sampling weights the loader's curriculum uses. Every metric is a pure function of the
/// episode (plus the task's length distribution for `durationZ`); see docs/dataqa.md.
public struct DataQA: Sendable {
    /// σ (steps) of the Gaussian that smooths velocities for the tremor metric.
    public var tremorSigma: Double = 2
    /// Velocity-norm pairs below this are skipped by the tremor ratio (0/0 while still).
    public var tremorFloor: Double = 1e-4
    /// Non-overlapping blocks (pixels a side) for the sharpness block-max.
    public var sharpnessBlock = 8
    /// A step is idle when no native state entry moves more than this.
    public var idleTolerance: Float = 1e-3
    /// Frames closer than this (mean |Δ| per byte, in [0, 1]) count as repeated: a stalled
    /// stream repeats frames exactly, while a slowly moving camera still changes ~0.2 levels.
    public var frozenTolerance: Float = 0.05 / 255
    /// A frozen run: ≥ `frozenRun` repeated transitions while a state entry moved > `frozenMotion`.
    public var frozenRun = 3
    public var frozenMotion: Float = 0.05
    /// Gripper commands are compared to this level for sign flips (RobotSim: 1 open, 0 closed).
    public var gripperCenter: Float = 0.5
    /// A flip undone within this many steps is chatter.
    public var chatterWindow = 5
    /// Random-projection image embedding: pooled side, feature count, seed.
    public var embeddingPool = 8
    public var embeddingFeatures = 32
    public var embeddingSeed: UInt64 = 0x5EED_DA7A
    public var thresholds = QualityThresholds()

    public init(thresholds: QualityThresholds = QualityThresholds()) { self.thresholds = thresholds }

    // MARK: dataset

    /// Metrics, score and failures for every episode; `durationZ` is computed within each task.
    public func assess(_ episodes: [Episode]) -> [EpisodeQuality] {
        var table = episodes.map { metrics($0) }
        let byTask = Dictionary(grouping: table.indices, by: { table[$0].task })
        for indices in byTask.values {
            let z = Self.robustZ(indices.map { Double(table[$0].steps) })
            for (k, i) in indices.enumerated() { table[i].durationZ = z[k] }
        }
        for i in table.indices {
            table[i].failures = thresholds.failures(table[i])
            table[i].score = thresholds.score(table[i])
        }
        return table
    }

    /// Every metric except `durationZ` (which needs the other episodes of the task; 0 here).
    public func metrics(_ e: Episode) -> EpisodeQuality {
        let frozen = frozenAndMissing(e)
        let chatter = gripperChatter(e)
        return EpisodeQuality(
            id: e.id, task: e.task, embodiment: e.embodiment, steps: e.stepCount, success: e.success,
            tremor: tremor(e), sharpness: sharpness(e), stateDiversity: stateDiversity(e),
            visualDiversity: visualDiversity(e), idleFraction: idleFraction(e), durationZ: 0,
            missingFrames: frozen.missing, frozenFraction: frozen.frozenFraction,
            gripperChatter: chatter.chatter, gripperFlips: chatter.flips, nonFinite: nonFiniteCount(e))
    }

    /// Sampling weight per episode: score / Σ score (uniform if every score is 0).
    public static func samplingWeights(_ table: [EpisodeQuality]) -> [UUID: Double] {
        let total = table.reduce(0) { $0 + $1.score }
        return Dictionary(uniqueKeysWithValues: table.map { ($0.id, total > 0 ? $0.score / total : 1 / Double(table.count)) })
    }

    /// Curriculum weight w_d per group (dataset, task or embodiment): the group's effective
    /// number of good episodes Σ score, normalised over groups. The loader samples group d with
    /// W_d(t) ∝ w_d^{α_t}.
    public static func datasetWeights(_ table: [EpisodeQuality], groupedBy key: (EpisodeQuality) -> String) -> [String: Double] {
        let sums = Dictionary(grouping: table, by: key).mapValues { $0.reduce(0) { $0 + $1.score } }
        let total = sums.values.reduce(0, +)
        return sums.mapValues { total > 0 ? $0 / total : 1 / Double(sums.count) }
    }

    /// 0.6745 (x − median) / MAD; when MAD is 0, the mean absolute deviation (× 1.2533) stands
    /// in; when that is 0 too, every z is 0.
    public static func robustZ(_ x: [Double]) -> [Double] {
        guard x.count > 1 else { return x.map { _ in 0 } }
        let m = median(x)
        let mad = median(x.map { abs($0 - m) })
        if mad > 0 { return x.map { 0.6745 * ($0 - m) / mad } }
        let meanAD = x.reduce(0) { $0 + abs($1 - m) } / Double(x.count)
        return meanAD > 0 ? x.map { ($0 - m) / (1.2533 * meanAD) } : x.map { _ in 0 }
    }

    /// The median (mean of the middle two for an even count; NaN when empty).
    public static func median(_ x: [Double]) -> Double {
        guard !x.isEmpty else { return .nan }
        let s = x.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    // MARK: motion metrics

    /// Unified action slots that move an arm (every valid slot except the grippers).
    static func motionSlots(_ e: Episode) -> [Int] {
        let grippers: Set = [UnifiedActionSpace.leftGripper, UnifiedActionSpace.rightGripper]
        return e.actionMask.indices.filter { e.actionMask[$0] > 0 && !grippers.contains($0) }
    }

    /// True when the valid motion slots are end-effector deltas (the actions already are velocities).
    static func commandsVelocities(_ slots: [Int]) -> Bool {
        let deltas = Set(UnifiedActionSpace.endEffectorPosition).union(UnifiedActionSpace.endEffectorRPY)
        return !slots.isEmpty && slots.allSatisfy { deltas.contains($0) }
    }

    /// Tremor S = mean_t ‖v_s,t − v_t‖ / (‖v_s,t‖ + ‖v_t‖) over steps where the denominator
    /// exceeds `tremorFloor`. v is the commanded joint velocity (first difference of the
    /// unified arm slots; the actions themselves for end-effector-delta control), v_s its
    /// Gaussian smoothing (σ = `tremorSigma` steps, renormalised at the ends).
    public func tremor(_ e: Episode) -> Double {
        let slots = Self.motionSlots(e)
        let a = e.unifiedActions
        let velocities = Self.commandsVelocities(slots)
        let n = velocities ? a.rows : a.rows - 1
        guard n >= 3, !slots.isEmpty else { return 0 }
        var v = [[Double]](repeating: [], count: slots.count)
        for (j, s) in slots.enumerated() {
            v[j] = (0..<n).map { t in
                velocities ? Double(a.values[t * a.columns + s])
                    : Double(a.values[(t + 1) * a.columns + s] - a.values[t * a.columns + s])
            }
        }
        let smooth = v.map { Self.gaussianSmooth($0, sigma: tremorSigma) }
        var sum = 0.0, count = 0
        for t in 0..<n {
            var diff = 0.0, ns = 0.0, nv = 0.0
            for j in slots.indices {
                diff += (smooth[j][t] - v[j][t]) * (smooth[j][t] - v[j][t])
                ns += smooth[j][t] * smooth[j][t]
                nv += v[j][t] * v[j][t]
            }
            let denominator = ns.squareRoot() + nv.squareRoot()
            guard denominator > tremorFloor, denominator.isFinite else { continue }
            sum += diff.squareRoot() / denominator
            count += 1
        }
        return count == 0 ? 0 : sum / Double(count)
    }

    static func gaussianSmooth(_ x: [Double], sigma: Double) -> [Double] {
        let r = Int((3 * sigma).rounded(.up))
        let w = (-r...r).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        return x.indices.map { t in
            var s = 0.0, ws = 0.0
            for k in -r...r where t + k >= 0 && t + k < x.count {
                s += w[k + r] * x[t + k]
                ws += w[k + r]
            }
            return s / ws
        }
    }

    /// √tr Cov(s): the spread of native proprio states over the episode.
    public func stateDiversity(_ e: Episode) -> Double {
        let s = e.states
        guard s.rows > 1 else { return 0 }
        var trace = 0.0
        for c in 0..<s.columns {
            let column = (0..<s.rows).map { Double(s.values[$0 * s.columns + c]) }
            let mean = column.reduce(0, +) / Double(s.rows)
            trace += column.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(s.rows - 1)
        }
        return trace.squareRoot()
    }

    /// Fraction of transitions t → t+1 where no native state entry moved more than `idleTolerance`.
    public func idleFraction(_ e: Episode) -> Double {
        let s = e.states
        guard s.rows > 1 else { return 1 }
        var idle = 0
        for t in 0..<(s.rows - 1) where !stateMoved(s, t) { idle += 1 }
        return Double(idle) / Double(s.rows - 1)
    }

    func stateMoved(_ s: StepMatrix, _ t: Int) -> Bool {
        (0..<s.columns).contains { abs(s.values[(t + 1) * s.columns + $0] - s.values[t * s.columns + $0]) > idleTolerance }
    }

    /// Gripper command sign flips around `gripperCenter`, and those undone within `chatterWindow` steps.
    public func gripperChatter(_ e: Episode) -> (flips: Int, chatter: Int) {
        var flips = 0, chatter = 0
        let a = e.unifiedActions
        for slot in [UnifiedActionSpace.leftGripper, UnifiedActionSpace.rightGripper] where e.actionMask[slot] > 0 {
            var flipSteps: [Int] = []
            var previous: Bool? = nil
            for t in 0..<a.rows {
                let g = a.values[t * a.columns + slot]
                guard g.isFinite, g != gripperCenter else { continue }
                let open = g > gripperCenter
                if let p = previous, p != open { flipSteps.append(t) }
                previous = open
            }
            flips += flipSteps.count
            for k in 1..<max(flipSteps.count, 1) where flipSteps[k] - flipSteps[k - 1] <= chatterWindow { chatter += 1 }
        }
        return (flips, chatter)
    }

    public func nonFiniteCount(_ e: Episode) -> Int {
        [e.states.values, e.nativeActions.values, e.unifiedActions.values, e.rewards].reduce(0) { n, values in
            n + values.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
        }
    }

    // MARK: image metrics

    /// Median over frames (all cameras pooled) of the frame's block-max: the std of the
    /// Laplacian in each non-overlapping `sharpnessBlock`² block, maximised over blocks.
    /// A blurred frame has no sharp block; 0 when there are no frames.
    public func sharpness(_ e: Episode) -> Double {
        var values: [Double] = []
        for name in e.cameras.keys.sorted() {
            let camera = e.cameras[name]!
            for t in 0..<camera.count {
                guard let image = try? GrayImage(camera, frame: t) else { continue }
                values.append(Double(blockMaxLaplacianStd(image)))
            }
        }
        return values.isEmpty ? 0 : Self.median(values)
    }

    public func blockMaxLaplacianStd(_ image: GrayImage) -> Float {
        let l = image.laplacian()
        let b = max(2, sharpnessBlock)
        var best: Float = 0
        for y0 in stride(from: 0, to: image.height, by: b) {
            for x0 in stride(from: 0, to: image.width, by: b) {
                var s: Float = 0, s2: Float = 0, n: Float = 0
                for y in y0..<min(y0 + b, image.height) {
                    for x in x0..<min(x0 + b, image.width) {
                        let v = l.pixels[y * image.width + x]
                        s += v; s2 += v * v; n += 1
                    }
                }
                guard n > 1 else { continue }
                let mean = s / n
                best = max(best, max(s2 / n - mean * mean, 0).squareRoot())
            }
        }
        return best
    }

    /// Mean over features of the std over time of each frame's embedding. The embedding (until
    /// the vision encoder exists) is a fixed seeded Gaussian random projection, scaled by
    /// 1/√d, of the frame box-pooled to `embeddingPool`² gray pixels; cameras are concatenated.
    public func visualDiversity(_ e: Episode) -> Double {
        let names = e.cameras.keys.sorted()
        guard let steps = names.first.map({ e.cameras[$0]!.count }), steps > 1 else { return 0 }
        let d = embeddingPool * embeddingPool
        let projection = Self.randomProjection(rows: embeddingFeatures, columns: d, seed: embeddingSeed)
        var total = 0.0, features = 0
        for name in names {
            let camera = e.cameras[name]!
            var embeddings: [[Double]] = []
            for t in 0..<camera.count {
                guard let image = try? GrayImage(camera, frame: t) else { continue }
                let x = image.pooled(to: embeddingPool)
                embeddings.append((0..<embeddingFeatures).map { r in
                    var s = 0.0
                    for c in 0..<d { s += projection[r * d + c] * Double(x[c]) }
                    return s
                })
            }
            guard embeddings.count > 1 else { continue }
            for f in 0..<embeddingFeatures {
                let column = embeddings.map { $0[f] }
                let mean = column.reduce(0, +) / Double(column.count)
                total += (column.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(column.count)).squareRoot()
                features += 1
            }
        }
        return features == 0 ? 0 : total / Double(features)
    }

    /// `[rows, columns]` N(0, 1/columns) entries from a SplitMix64 + Box–Muller stream.
    static func randomProjection(rows: Int, columns: Int, seed: UInt64) -> [Double] {
        var generator = SplitMix64(seed: seed)
        // In (0, 1): log() below never sees 0.
        func next() -> Double { (Double(generator.next() >> 11) + 0.5) / Double(1 << 53) }
        let scale = 1 / Double(columns).squareRoot()
        return (0..<(rows * columns)).map { _ in
            (-2 * log(next())).squareRoot() * cos(2 * .pi * next()) * scale
        }
    }

    /// Missing frames (every pixel equal: a blank render) and the fraction of transitions
    /// inside frozen runs: a camera repeating (mean |Δ| < `frozenTolerance`) its frame for at
    /// least `frozenRun` transitions while the arm command moved more than `frozenMotion` over
    /// the run (max over unified arm slots; grippers excluded since a closing gripper may be
    /// invisible). Runs, not single repeats: a small move may leave a tiny frame unchanged.
    public func frozenAndMissing(_ e: Episode) -> (missing: Int, frozenFraction: Double) {
        var missing = 0
        var frozen = Set<Int>()
        for name in e.cameras.keys.sorted() {
            let camera = e.cameras[name]!
            var unchanged = [Bool](repeating: false, count: camera.count)
            camera.pixels.withUnsafeBufferPointer { p in
                let n = camera.frameBytes
                for t in 0..<camera.count {
                    let first = p[t * n]
                    if !(0..<n).contains(where: { p[t * n + $0] != first }) { missing += 1 }
                    guard t > 0 else { continue }
                    var diff = 0
                    for i in 0..<n { diff += abs(Int(p[t * n + i]) - Int(p[(t - 1) * n + i])) }
                    unchanged[t] = Float(diff) / Float(n) / 255 < frozenTolerance
                }
            }
            var t = 1
            while t < camera.count {
                guard unchanged[t] else { t += 1; continue }
                var end = t
                while end + 1 < camera.count, unchanged[end + 1] { end += 1 }
                // Frames t−1 … end are identical.
                let start = t - 1
                if end - start >= frozenRun, end < e.unifiedActions.rows, armDisplacement(e, from: start, to: end) > frozenMotion {
                    for k in t...end { frozen.insert(k) }
                }
                t = end + 1
            }
        }
        return (missing, Double(frozen.count) / Double(max(e.stepCount - 1, 1)))
    }

    /// Largest change of a unified arm slot between two steps (for end-effector-delta control:
    /// the largest summed |delta|, i.e. the commanded travel).
    func armDisplacement(_ e: Episode, from a: Int, to b: Int) -> Float {
        let slots = Self.motionSlots(e), u = e.unifiedActions
        if Self.commandsVelocities(slots) {
            return slots.map { s in (a..<b).reduce(Float(0)) { $0 + abs(u.values[$1 * u.columns + s]) } }.max() ?? 0
        }
        return slots.map { abs(u.values[b * u.columns + $0] - u.values[a * u.columns + $0]) }.max() ?? 0
    }
}
