import Foundation

/// A 3x3 rotation/linear map stored as rows. Columns of a MuJoCo `xmat` are the frame's axes.
public struct Mat3: Sendable, Equatable {
    public var r0, r1, r2: SIMD3<Double>

    public init(rows: (SIMD3<Double>, SIMD3<Double>, SIMD3<Double>)) {
        r0 = rows.0; r1 = rows.1; r2 = rows.2
    }

    public init(columns c0: SIMD3<Double>, _ c1: SIMD3<Double>, _ c2: SIMD3<Double>) {
        r0 = SIMD3(c0.x, c1.x, c2.x); r1 = SIMD3(c0.y, c1.y, c2.y); r2 = SIMD3(c0.z, c1.z, c2.z)
    }

    public static let identity = Mat3(rows: (SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1)))

    public func column(_ i: Int) -> SIMD3<Double> { SIMD3(r0[i], r1[i], r2[i]) }
    public var transposed: Mat3 { Mat3(columns: r0, r1, r2) }

    public static func * (a: Mat3, v: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3((a.r0 * v).sum(), (a.r1 * v).sum(), (a.r2 * v).sum())
    }

    public static func * (a: Mat3, b: Mat3) -> Mat3 {
        Mat3(columns: a * b.column(0), a * b.column(1), a * b.column(2))
    }

    public static func rotationZ(_ t: Double) -> Mat3 {
        Mat3(rows: (SIMD3(cos(t), -sin(t), 0), SIMD3(sin(t), cos(t), 0), SIMD3(0, 0, 1)))
    }
    public static func rotationY(_ t: Double) -> Mat3 {
        Mat3(rows: (SIMD3(cos(t), 0, sin(t)), SIMD3(0, 1, 0), SIMD3(-sin(t), 0, cos(t))))
    }
    public static func rotationX(_ t: Double) -> Mat3 {
        Mat3(rows: (SIMD3(1, 0, 0), SIMD3(0, cos(t), -sin(t)), SIMD3(0, sin(t), cos(t))))
    }

    /// R = Rz(yaw) Ry(pitch) Rx(roll).
    public static func fromRPY(_ rpy: SIMD3<Double>) -> Mat3 {
        rotationZ(rpy.z) * rotationY(rpy.y) * rotationX(rpy.x)
    }

    /// Inverse of `fromRPY` (roll, pitch, yaw).
    public var rpy: SIMD3<Double> {
        let pitch = asin(max(-1, min(1, -r2.x)))
        let roll = atan2(r2.y, r2.z)
        let yaw = atan2(r1.x, r0.x)
        return SIMD3(roll, pitch, yaw)
    }

    /// Rotation vector (axis * angle) of this rotation.
    public var rotationVector: SIMD3<Double> {
        let c = max(-1, min(1, (r0.x + r1.y + r2.z - 1) / 2))
        let angle = acos(c)
        let v = SIMD3(r2.y - r1.z, r0.z - r2.x, r1.x - r0.y)
        if angle < 1e-9 { return v / 2 }
        let s = sin(angle)
        if s < 1e-6 {
            // angle ≈ π: axis from the diagonal
            let d = SIMD3(r0.x, r1.y, r2.z)
            var axis = SIMD3((max(0, (d.x + 1) / 2)).squareRoot(), (max(0, (d.y + 1) / 2)).squareRoot(), (max(0, (d.z + 1) / 2)).squareRoot())
            if r0.y < 0 { axis.y = -axis.y }
            if r0.z < 0 { axis.z = -axis.z }
            return axis * angle
        }
        return v * (angle / (2 * s))
    }

    /// Rotation for axis-angle vector `w`.
    public static func exp(_ w: SIMD3<Double>) -> Mat3 {
        let a = (w * w).sum().squareRoot()
        if a < 1e-12 { return .identity }
        let k = w / a
        let K = Mat3(rows: (SIMD3(0, -k.z, k.y), SIMD3(k.z, 0, -k.x), SIMD3(-k.y, k.x, 0)))
        let KK = K * K
        func add(_ x: Mat3, _ y: Mat3, _ s: Double, _ t: Double) -> Mat3 {
            Mat3(rows: (x.r0 * s + y.r0 * t, x.r1 * s + y.r1 * t, x.r2 * s + y.r2 * t))
        }
        let m = add(K, KK, sin(a), 1 - cos(a))
        return Mat3(rows: (identity.r0 + m.r0, identity.r1 + m.r1, identity.r2 + m.r2))
    }

    /// Orientation error (world frame rotation vector) that rotates `self` onto `target`.
    public func orientationError(to target: Mat3) -> SIMD3<Double> {
        (target * transposed).rotationVector
    }
}

@inlinable func dot(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Double { (a * b).sum() }
@inlinable func norm(_ a: SIMD3<Double>) -> Double { (a * a).sum().squareRoot() }
@inlinable func cross(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> SIMD3<Double> {
    SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}
@inlinable func normalized(_ a: SIMD3<Double>) -> SIMD3<Double> { a / max(norm(a), 1e-12) }

/// Wrap an angle to (-π, π].
@inlinable func wrapAngle(_ a: Double) -> Double {
    var x = a.truncatingRemainder(dividingBy: 2 * .pi)
    if x > .pi { x -= 2 * .pi }
    if x <= -.pi { x += 2 * .pi }
    return x
}

/// Solve A x = b for a small dense square system (Gaussian elimination, partial pivoting).
/// A is n x n row-major.
func solveLinear(_ a: [Double], _ b: [Double], n: Int) -> [Double] {
    var m = a
    var x = b
    for col in 0..<n {
        var pivot = col
        for r in col + 1..<n where abs(m[r * n + col]) > abs(m[pivot * n + col]) { pivot = r }
        if pivot != col {
            for c in 0..<n { m.swapAt(col * n + c, pivot * n + c) }
            x.swapAt(col, pivot)
        }
        let d = m[col * n + col]
        if abs(d) < 1e-14 { continue }
        for r in col + 1..<n {
            let f = m[r * n + col] / d
            if f == 0 { continue }
            for c in col..<n { m[r * n + c] -= f * m[col * n + c] }
            x[r] -= f * x[col]
        }
    }
    for col in stride(from: n - 1, through: 0, by: -1) {
        var s = x[col]
        for c in col + 1..<n { s -= m[col * n + c] * x[c] }
        let d = m[col * n + col]
        x[col] = abs(d) < 1e-14 ? 0 : s / d
    }
    return x
}

/// Damped least squares: dq = Jᵀ (J Jᵀ + λ² I)⁻¹ e, plus a null-space term
/// (I − J⁺J) z when `nullspace` is given. J is [m, n] row-major.
func dampedLeastSquares(jacobian j: [Double], rows m: Int, cols n: Int, error e: [Double], damping: Double, nullspace z: [Double]? = nil) -> [Double] {
    var jjt = [Double](repeating: 0, count: m * m)
    for r in 0..<m {
        for c in 0..<m {
            var s = 0.0
            for k in 0..<n { s += j[r * n + k] * j[c * n + k] }
            jjt[r * m + c] = s + (r == c ? damping * damping : 0)
        }
    }
    let y = solveLinear(jjt, e, n: m)
    var dq = [Double](repeating: 0, count: n)
    for k in 0..<n { for r in 0..<m { dq[k] += j[r * n + k] * y[r] } }
    if let z {
        // (I - J^T (JJ^T+λ²)^-1 J) z
        var jz = [Double](repeating: 0, count: m)
        for r in 0..<m { for k in 0..<n { jz[r] += j[r * n + k] * z[k] } }
        let w = solveLinear(jjt, jz, n: m)
        for k in 0..<n {
            var s = 0.0
            for r in 0..<m { s += j[r * n + k] * w[r] }
            dq[k] += z[k] - s
        }
    }
    return dq
}
