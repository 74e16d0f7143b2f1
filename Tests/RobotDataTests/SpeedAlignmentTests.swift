import Foundation
import Testing
@testable import RobotData

/// A textured image translated by (dx, dy): pixel (x, y) shows qaTexture(x − dx, y − dy) exactly,
/// so the true flow from the unshifted image is (dx, dy) everywhere.
func shiftedTexture(side: Int, dx: Float, dy: Float) throws -> GrayImage {
    var p = [Float](repeating: 0, count: side * side)
    for y in 0..<side { for x in 0..<side { p[y * side + x] = qaTexture(Float(x) - dx, Float(y) - dy) } }
    return try GrayImage(width: side, height: side, pixels: p)
}

/// An episode whose camera pans over the texture at `pixelsPerStep` and whose states/actions
/// follow the pan position (so resampling can be checked against the frames).
func panningEpisode(steps: Int, pixelsPerStep: Float, side: Int = 32) throws -> Episode {
    var pixels = [UInt8](repeating: 0, count: steps * side * side * 3)
    for t in 0..<steps {
        let image = try shiftedTexture(side: side, dx: pixelsPerStep * Float(t), dy: 0)
        for i in 0..<(side * side) {
            let b = UInt8((image.pixels[i] * 255).rounded())
            for c in 0..<3 { pixels[(t * side * side + i) * 3 + c] = b }
        }
    }
    let positions = (0..<steps).map { [pixelsPerStep * Float($0), 0.5 * pixelsPerStep * Float($0)] }
    var unified = [Float](repeating: 0, count: steps * 64)
    for t in 0..<steps { unified[t * 64] = positions[t][0]; unified[t * 64 + 1] = positions[t][1] }
    var mask = [Float](repeating: 0, count: 64)
    mask[0] = 1; mask[1] = 1
    return Episode(embodiment: "pan", task: "pan", instruction: "pan",
                   cameras: ["scene": CameraFrames(height: side, width: side, pixels: pixels)],
                   states: try StepMatrix(positions, columns: 2), nativeActions: try StepMatrix(positions, columns: 2),
                   unifiedActions: try StepMatrix(rows: steps, columns: 64, values: unified), actionMask: mask,
                   rewards: (0..<steps).map { $0 == steps - 1 ? 1 : 0 }, dones: (0..<steps).map { $0 == steps - 1 },
                   sources: Array(repeating: .demo, count: steps), timestamps: (0..<steps).map { Double($0) * 0.05 },
                   success: true)
}

@Suite("Speed alignment")
struct SpeedAlignmentTests {
    /// Values from SciPy 1.17 `PchipInterpolator`, which equal the hand computation:
    /// x = [0,1,2,3], y = [0,1,1,2]: slopes (1.5, 0, 0, 1.5) → p(0.5) = 0.125·1.5 + 0.5·1 = 0.6875,
    /// p(1.5) = 1, p(2.5) = 0.5 + 1 − 0.125·1.5 = 1.3125.
    /// x = [0,1,3], y = [0,2,3]: slopes (2.5, 9/10.5, 0) → p(0.5) = 1.2053571, p(2) = 2.7142857.
    @Test func pchipMatchesHandComputedValues() throws {
        let f = try MonotoneCubicInterpolation(x: [0, 1, 2, 3], y: [0, 1, 1, 2])
        #expect(f.slopes == [1.5, 0, 0, 1.5])
        for (x, y) in [(0.5, 0.6875), (1.5, 1.0), (2.5, 1.3125)] { #expect(abs(f(x) - y) < 1e-12) }
        let g = try MonotoneCubicInterpolation(x: [0, 1, 3], y: [0, 2, 3])
        #expect(abs(g.slopes[1] - 9 / 10.5) < 1e-12 && g.slopes[0] == 2.5 && g.slopes[2] == 0)
        for (x, y) in [(0.5, 1.205357142857), (2.0, 2.714285714286), (2.5, 2.924107142857)] { #expect(abs(g(x) - y) < 1e-9) }
    }

    @Test func pchipKeepsKnotsAndMonotonicityWithoutOvershoot() throws {
        var rng = DataQARandom(seed: 5)
        var x: [Double] = [0], y: [Double] = [0]
        for _ in 0..<30 {
            x.append(x.last! + 0.2 + Double(rng.uniform()))
            // Non-decreasing with flat runs and jumps.
            y.append(y.last! + (rng.uniform() < 0.3 ? 0 : Double(rng.uniform()) * 3))
        }
        let f = try MonotoneCubicInterpolation(x: x, y: y)
        for (xi, yi) in zip(x, y) { #expect(abs(f(xi) - yi) < 1e-12) }
        var previous = -Double.infinity
        for k in 0...3000 {
            let v = f(x.last! * Double(k) / 3000)
            #expect(v >= previous - 1e-12)
            previous = v
        }
        // A 0/1 step (gripper command) stays inside [0, 1].
        let step = try MonotoneCubicInterpolation(x: [0, 1, 2, 3, 4, 5], y: [1, 1, 1, 0, 0, 0])
        for k in 0...500 { let v = step(Double(k) / 100); #expect(v >= 0 && v <= 1) }
        #expect(throws: InterpolationError.notIncreasing(index: 2)) { try MonotoneCubicInterpolation(x: [0, 1, 1], y: [0, 1, 2]) }
    }

    /// Tolerance: 0.05 px on the median over reliable interior pixels of a 48×48 frame.
    @Test func lucasKanadeRecoversASubpixelTranslation() throws {
        let a = try shiftedTexture(side: 48, dx: 0, dy: 0)
        let b = try shiftedTexture(side: 48, dx: 1.5, dy: -0.5)
        let field = try OpticalFlow().flow(from: a, to: b)
        var us: [Double] = [], vs: [Double] = []
        for y in 6..<42 { for x in 6..<42 where field.reliable[y * 48 + x] {
            us.append(Double(field.u[y * 48 + x])); vs.append(Double(field.v[y * 48 + x]))
        } }
        #expect(us.count > 1000)
        #expect(abs(DataQA.median(us) - 1.5) < 0.05)
        #expect(abs(DataQA.median(vs) + 0.5) < 0.05)
        // A larger shift needs the pyramid: (−4, 2) px on a smoother texture (periods ≥ 17 px, so
        // the shift is not aliased), within 0.1 px.
        func smooth(_ dx: Float, _ dy: Float) throws -> GrayImage {
            var p = [Float](repeating: 0, count: 48 * 48)
            for y in 0..<48 { for x in 0..<48 { p[y * 48 + x] = qaTexture((Float(x) - dx) / 2.5, (Float(y) - dy) / 2.5) } }
            return try GrayImage(width: 48, height: 48, pixels: p)
        }
        let far = try OpticalFlow().flow(from: try smooth(0, 0), to: try smooth(-4, 2))
        let interior = (8..<40).flatMap { y in (8..<40).map { y * 48 + $0 } }
        #expect(abs(DataQA.median(interior.map { Double(far.u[$0]) }) + 4) < 0.1)
        #expect(abs(DataQA.median(interior.map { Double(far.v[$0]) }) - 2) < 0.1)
    }

    @Test func slowAndFastPansAreAlignedToTheTargetSpeed() throws {
        let aligner = SpeedAlignment(camera: "scene")
        let slow = try aligner.measured(try panningEpisode(steps: 40, pixelsPerStep: 0.5))
        let fast = try aligner.measured(try panningEpisode(steps: 12, pixelsPerStep: 2))
        #expect(abs(slow.speed! - 0.5) < 0.05, "slow pan \(slow.speed!)")
        #expect(abs(fast.speed! - 2) < 0.2, "fast pan \(fast.speed!)")
        let target: Float = 1
        for e in [slow, fast] {
            let (aligned, _, _) = try aligner.align(e, to: target)
            #expect(abs(aligned.speed! / target - 1) < 0.1, "aligned speed \(aligned.speed!)")
            // The pan's actions are linear in time, which PCHIP reproduces exactly; the last
            // sample is the last step.
            let a = aligned.nativeActions, n = aligned.stepCount
            let slope = (a.values[(n - 1) * 2] - a.values[0]) / Float(n - 1)
            for k in 0..<n { #expect(abs(a.values[k * 2] - Float(k) * slope) < 1e-4) }
            #expect(Array(a.row(n - 1)) == Array(e.nativeActions.row(e.stepCount - 1)))
            try aligned.validate()
        }
        let speeds = try SpeedAlignment.groupSpeeds([slow, fast], by: \.embodiment)
        #expect(abs(speeds["pan"]! - (slow.speed! + fast.speed!) / 2) < 1e-6)
    }

    @Test func resamplingAtWholeStepsKeepsRowsExactly() throws {
        let e = try qaEpisode(seed: 3)
        // T = 40: Δ = 3 → round(39/3) + 1 = 14 samples at 0, 3, …, 39 (the last step kept).
        let r = try SpeedAlignment.resample(e, step: 3)
        #expect(r.stepCount == 14)
        for k in 0..<14 {
            #expect(Array(r.states.row(k)) == Array(e.states.row(3 * k)))
            #expect(Array(r.cameras["scene"]!.frame(k)) == Array(e.cameras["scene"]!.frame(3 * k)))
        }
        #expect(r.dones.last == true && r.dones.dropLast().allSatisfy { !$0 } && r.rewards.last == 1)
        #expect(abs(r.timestamps[1] - 0.05) < 1e-12)
        #expect(throws: SpeedAlignmentError.badStep(0)) { try SpeedAlignment.resample(e, step: 0) }
        #expect(throws: SpeedAlignmentError.unknownCamera("wrist")) { try SpeedAlignment(camera: "wrist").measure(e) }
    }
}
