import Foundation

/// Dense pyramidal Lucas–Kanade optical flow over plain Float arrays.
///
/// Why not OpenCV: it is not a dependency and would be the project's only C++ outside CMLX;
/// speed alignment needs only the *mean* flow magnitude of small frames, for which a dense LK
/// (structure tensor and mismatch terms as Gaussian-windowed image filters, a few Gauss–Newton
/// updates per pyramid level, coarse to fine) is ~150 lines and exact enough (see tests:
/// a (1.5, −0.5) px shift is recovered to < 0.05 px).
public struct OpticalFlow: Sendable {
    /// Pyramid levels (coarsest level keeps ≥ `minimumLevelSide` pixels a side: smaller levels are
    /// mostly border and bias the estimate).
    public var levels = 3
    public var minimumLevelSide = 16
    /// Gauss–Newton updates per level.
    public var iterations = 4
    /// σ (pixels) of the Gaussian integration window.
    public var windowSigma: Float = 1.5
    /// Pixels whose structure tensor's smaller eigenvalue is below this (intensities in [0, 1])
    /// are untextured: they get no update and are left out of the mean magnitude.
    public var minimumEigenvalue: Float = 1e-5

    /// σ (pixels) of a Gaussian applied to both frames first: rendered frames without
    /// anti-aliasing have hard 1-px steps at edges, on which LK's linearisation is biased.
    public var presmoothSigma: Float = 1

    public init() {}

    /// The flow from image `a` to image `b`: `a(x, y) ≈ b(x + u, y + v)`.
    public struct Field: Sendable {
        public let width: Int
        public let height: Int
        public var u: [Float]
        public var v: [Float]
        /// 1 where the window was textured enough to trust the flow.
        public var reliable: [Bool]

        /// Mean |(u, v)| over reliable pixels at least `border` pixels inside the frame (the warp
        /// clamps at the edges, so flow there is biased low); 0 if there are none. Pixels per frame.
        public func meanMagnitude(border: Int = 3) -> Float {
            var s: Float = 0, n = 0
            for y in border..<max(border, height - border) {
                for x in border..<max(border, width - border) where reliable[y * width + x] {
                    let i = y * width + x
                    s += (u[i] * u[i] + v[i] * v[i]).squareRoot()
                    n += 1
                }
            }
            return n == 0 ? 0 : s / Float(n)
        }
    }

    public func flow(from a: GrayImage, to b: GrayImage) throws -> Field {
        guard a.width == b.width, a.height == b.height else {
            throw EpisodeError.shape("optical flow between \(a.width)x\(a.height) and \(b.width)x\(b.height) images")
        }
        var pyramidA = [a.gaussianBlurred(sigma: presmoothSigma)], pyramidB = [b.gaussianBlurred(sigma: presmoothSigma)]
        while pyramidA.count < max(levels, 1), min(pyramidA.last!.width, pyramidA.last!.height) / 2 >= minimumLevelSide {
            pyramidA.append(pyramidA.last!.halved())
            pyramidB.append(pyramidB.last!.halved())
        }
        let window = GrayImage.gaussianKernel(sigma: windowSigma)
        var u: [Float] = [], v: [Float] = []
        var reliable: [Bool] = []
        for level in stride(from: pyramidA.count - 1, through: 0, by: -1) {
            let i1 = pyramidA[level], i2 = pyramidB[level]
            let w = i1.width, h = i1.height
            (u, v) = upsampled(u, v, to: (w, h), from: level + 1 < pyramidA.count ? (pyramidA[level + 1].width, pyramidA[level + 1].height) : nil)
            let (gx, gy) = i1.gradients()
            let sxx = product(gx, gx).filtered(horizontal: window, vertical: window).pixels
            let sxy = product(gx, gy).filtered(horizontal: window, vertical: window).pixels
            let syy = product(gy, gy).filtered(horizontal: window, vertical: window).pixels
            reliable = (0..<(w * h)).map { i in
                let half = (sxx[i] + syy[i]) / 2, d = (sxx[i] - syy[i]) / 2
                return half - (d * d + sxy[i] * sxy[i]).squareRoot() > minimumEigenvalue
            }
            for _ in 0..<iterations {
                // Mismatch after warping b back by the current flow.
                var it = [Float](repeating: 0, count: w * h)
                i2.pixels.withUnsafeBufferPointer { p in
                    for y in 0..<h { for x in 0..<w {
                        let k = y * w + x
                        it[k] = GrayImage.bilinear(p, w, h, Float(x) + u[k], Float(y) + v[k]) - i1.pixels[k]
                    } }
                }
                let t = try GrayImage(width: w, height: h, pixels: it)
                let bx = product(gx, t).filtered(horizontal: window, vertical: window).pixels
                let by = product(gy, t).filtered(horizontal: window, vertical: window).pixels
                for k in 0..<(w * h) where reliable[k] {
                    let det = sxx[k] * syy[k] - sxy[k] * sxy[k]
                    guard det > 0 else { continue }
                    u[k] -= (syy[k] * bx[k] - sxy[k] * by[k]) / det
                    v[k] -= (sxx[k] * by[k] - sxy[k] * bx[k]) / det
                }
            }
        }
        return Field(width: a.width, height: a.height, u: u, v: v, reliable: reliable)
    }

    func product(_ a: GrayImage, _ b: GrayImage) -> GrayImage {
        var out = [Float](repeating: 0, count: a.pixels.count)
        for i in out.indices { out[i] = a.pixels[i] * b.pixels[i] }
        return GrayImage(uncheckedWidth: a.width, height: a.height, pixels: out)
    }

    /// Coarse flow → finer level: nearest coarse pixel, vectors doubled. Zero at the top level.
    func upsampled(_ u: [Float], _ v: [Float], to size: (Int, Int), from coarse: (Int, Int)?) -> ([Float], [Float]) {
        let (w, h) = size
        guard let (cw, ch) = coarse, u.count == cw * ch else {
            return ([Float](repeating: 0, count: w * h), [Float](repeating: 0, count: w * h))
        }
        var fu = [Float](repeating: 0, count: w * h), fv = fu
        for y in 0..<h { for x in 0..<w {
            let c = min(y / 2, ch - 1) * cw + min(x / 2, cw - 1)
            fu[y * w + x] = 2 * u[c]
            fv[y * w + x] = 2 * v[c]
        } }
        return (fu, fv)
    }

    /// Mean flow magnitude between consecutive frames of one camera (pixels per step),
    /// using at most `maxPairs` evenly spaced pairs (all when nil).
    public func meanSpeed(_ camera: CameraFrames, maxPairs: Int? = nil) throws -> Float {
        let pairs = camera.count - 1
        guard pairs >= 1 else { return 0 }
        let n = min(pairs, maxPairs ?? pairs)
        let picks = n == pairs ? Array(0..<pairs) : (0..<n).map { $0 * pairs / n }
        var total: Float = 0
        var previous: (Int, GrayImage)? = nil
        for t in picks {
            let a = previous?.0 == t ? previous!.1 : try GrayImage(camera, frame: t)
            let b = try GrayImage(camera, frame: t + 1)
            total += try flow(from: a, to: b).meanMagnitude()
            previous = (t + 1, b)
        }
        return total / Float(n)
    }
}
