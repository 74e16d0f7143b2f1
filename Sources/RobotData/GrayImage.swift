import Foundation

/// A single-channel Float image `[height, width]`, row-major: the working format of DataQA's
/// sharpness metric and of optical flow (plain arrays, no OpenCV: see docs/dataqa.md).
public struct GrayImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [Float]

    public init(width: Int, height: Int, pixels: [Float]) throws {
        guard width > 0, height > 0, pixels.count == width * height else {
            throw EpisodeError.shape("\(pixels.count) pixels for a \(width)x\(height) gray image")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    init(uncheckedWidth width: Int, height: Int, pixels: [Float]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Rec. 601 luma of an RGB uint8 frame, scaled to [0, 1].
    public init(rgb: ArraySlice<UInt8>, width: Int, height: Int) throws {
        guard width > 0, height > 0, rgb.count == width * height * 3 else {
            throw EpisodeError.shape("\(rgb.count) bytes for a \(width)x\(height) RGB frame")
        }
        var out = [Float](repeating: 0, count: width * height)
        rgb.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<(width * height) {
                    dst[i] = (0.299 * Float(src[3 * i]) + 0.587 * Float(src[3 * i + 1]) + 0.114 * Float(src[3 * i + 2])) / 255
                }
            }
        }
        self.init(uncheckedWidth: width, height: height, pixels: out)
    }

    /// Frame `index` of a camera as a gray image.
    public init(_ camera: CameraFrames, frame index: Int) throws {
        guard index >= 0, index < camera.count else { throw EpisodeError.shape("frame \(index) of \(camera.count)") }
        try self.init(rgb: camera.frame(index), width: camera.width, height: camera.height)
    }

    public subscript(x: Int, y: Int) -> Float { pixels[y * width + x] }

    /// Correlation with a separable kernel (centre tap in the middle), edges clamped.
    public func filtered(horizontal kh: [Float], vertical kv: [Float]) -> GrayImage {
        let w = width, h = height, rh = kh.count / 2, rv = kv.count / 2
        var tmp = [Float](repeating: 0, count: w * h), out = tmp
        pixels.withUnsafeBufferPointer { src in
            tmp.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h {
                    let row = y * w
                    for x in 0..<w {
                        var s: Float = 0
                        for k in 0..<kh.count { s += kh[k] * src[row + min(max(x + k - rh, 0), w - 1)] }
                        dst[row + x] = s
                    }
                }
            }
        }
        tmp.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h {
                    for x in 0..<w {
                        var s: Float = 0
                        for k in 0..<kv.count { s += kv[k] * src[min(max(y + k - rv, 0), h - 1) * w + x] }
                        dst[y * w + x] = s
                    }
                }
            }
        }
        return GrayImage(uncheckedWidth: w, height: h, pixels: out)
    }

    /// Normalised Gaussian taps, radius ⌈3σ⌉.
    public static func gaussianKernel(sigma: Float) -> [Float] {
        guard sigma > 0 else { return [1] }
        let r = Int((3 * sigma).rounded(.up))
        let taps = (-r...r).map { expf(-Float($0 * $0) / (2 * sigma * sigma)) }
        let sum = taps.reduce(0, +)
        return taps.map { $0 / sum }
    }

    public func gaussianBlurred(sigma: Float) -> GrayImage {
        let k = Self.gaussianKernel(sigma: sigma)
        return filtered(horizontal: k, vertical: k)
    }

    /// Every other pixel of a σ=1 blurred copy (one pyramid level down).
    public func halved() -> GrayImage {
        let blurred = gaussianBlurred(sigma: 1)
        let w2 = (width + 1) / 2, h2 = (height + 1) / 2
        var out = [Float](repeating: 0, count: w2 * h2)
        for y in 0..<h2 { for x in 0..<w2 { out[y * w2 + x] = blurred.pixels[2 * y * width + 2 * x] } }
        return GrayImage(uncheckedWidth: w2, height: h2, pixels: out)
    }

    /// Box-averaged down to `size`×`size` (used by the random-projection embedding).
    public func pooled(to size: Int) -> [Float] {
        var out = [Float](repeating: 0, count: size * size)
        for by in 0..<size {
            let y0 = by * height / size, y1 = max(y0 + 1, (by + 1) * height / size)
            for bx in 0..<size {
                let x0 = bx * width / size, x1 = max(x0 + 1, (bx + 1) * width / size)
                var s: Float = 0
                for y in y0..<y1 { for x in x0..<x1 { s += pixels[y * width + x] } }
                out[by * size + bx] = s / Float((y1 - y0) * (x1 - x0))
            }
        }
        return out
    }

    /// 4-neighbour Laplacian, edges clamped.
    public func laplacian() -> GrayImage {
        let w = width, h = height
        var out = [Float](repeating: 0, count: w * h)
        pixels.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                for y in 0..<h {
                    let up = max(y - 1, 0) * w, down = min(y + 1, h - 1) * w, row = y * w
                    for x in 0..<w {
                        let l = max(x - 1, 0), r = min(x + 1, w - 1)
                        o[row + x] = p[row + l] + p[row + r] + p[up + x] + p[down + x] - 4 * p[row + x]
                    }
                }
            }
        }
        return GrayImage(uncheckedWidth: w, height: h, pixels: out)
    }

    /// Central-difference gradients (one-sided at the border).
    public func gradients() -> (x: GrayImage, y: GrayImage) {
        let w = width, h = height
        var gx = [Float](repeating: 0, count: w * h), gy = gx
        pixels.withUnsafeBufferPointer { p in
            for y in 0..<h {
                let up = max(y - 1, 0), down = min(y + 1, h - 1)
                for x in 0..<w {
                    let l = max(x - 1, 0), r = min(x + 1, w - 1)
                    gx[y * w + x] = (p[y * w + r] - p[y * w + l]) / Float(max(r - l, 1))
                    gy[y * w + x] = (p[down * w + x] - p[up * w + x]) / Float(max(down - up, 1))
                }
            }
        }
        return (GrayImage(uncheckedWidth: w, height: h, pixels: gx), GrayImage(uncheckedWidth: w, height: h, pixels: gy))
    }

    /// Bilinear sample at a real position, edges clamped.
    @inline(__always)
    static func bilinear(_ p: UnsafeBufferPointer<Float>, _ w: Int, _ h: Int, _ x: Float, _ y: Float) -> Float {
        let xc = min(max(x, 0), Float(w - 1)), yc = min(max(y, 0), Float(h - 1))
        let x0 = min(Int(xc), w - 1), y0 = min(Int(yc), h - 1)
        let x1 = min(x0 + 1, w - 1), y1 = min(y0 + 1, h - 1)
        let fx = xc - Float(x0), fy = yc - Float(y0)
        let top = p[y0 * w + x0] * (1 - fx) + p[y0 * w + x1] * fx
        let bottom = p[y1 * w + x0] * (1 - fx) + p[y1 * w + x1] * fx
        return top * (1 - fy) + bottom * fy
    }
}
