import Foundation

/// A named colour used for objects, zones and bins.
public struct NamedColor: Sendable, Equatable {
    public let name: String
    public let rgb: SIMD3<Double>

    static let palette: [NamedColor] = [
        NamedColor(name: "red", rgb: SIMD3(0.85, 0.10, 0.10)),
        NamedColor(name: "green", rgb: SIMD3(0.10, 0.70, 0.15)),
        NamedColor(name: "blue", rgb: SIMD3(0.10, 0.25, 0.90)),
        NamedColor(name: "yellow", rgb: SIMD3(0.95, 0.85, 0.10)),
        NamedColor(name: "purple", rgb: SIMD3(0.60, 0.15, 0.75)),
        NamedColor(name: "orange", rgb: SIMD3(1.00, 0.50, 0.05)),
    ]
}

public enum ObjectShape: String, Sendable { case box, cylinder }

/// A movable object (free body named `name`, geom `name_geom`).
public struct SceneObject: Sendable {
    public let name: String
    public let color: NamedColor
    /// Rendered colour (the named colour with a small seeded jitter).
    public let rgb: SIMD3<Double>
    public let shape: ObjectShape
    /// Half extent (box half side / cylinder radius), metres.
    public let halfSize: Double
    public var position: SIMD3<Double>
    public let yaw: Double

    /// Every cylinder (puck) is 3 cm tall.
    public static let cylinderHalfHeight = 0.015
    /// Half of the object's height: its top is `position.z + halfHeight`.
    public var halfHeight: Double { shape == .box ? halfSize : Self.cylinderHalfHeight }

    /// "red block", "blue puck", ...
    public var phrase: String { "\(color.name) \(shape == .box ? "block" : "puck")" }
}

/// A flat coloured target area (visual only).
public struct SceneZone: Sendable, Equatable {
    public let color: NamedColor
    public let center: SIMD3<Double>
    /// Radius (circle) or half side (square mat).
    public let radius: Double
}

/// An open-topped bin (static walls).
public struct SceneBin: Sendable {
    public let color: NamedColor
    public let center: SIMD3<Double>
    public let innerHalf: Double
}

/// A cabinet whose drawer slides toward the robot (−x).
public struct SceneDrawer: Sendable {
    public let color: NamedColor
    /// Centre of the closed drawer's front face.
    public let front: SIMD3<Double>
    public static let handleHeight = 0.07
    public static let handleOffset = 0.05
    public static let travel = 0.2
    public static let openThreshold = 0.12
}

/// Everything a seed decided about a scene.
public struct SceneLayout: Sendable {
    public var objects: [SceneObject] = []
    /// Index of the named object (reach/push/pick/stack top block).
    public var target: Int = 0
    /// Stack base block index.
    public var second: Int? = nil
    public var zone: SceneZone? = nil
    /// Chain scenes only: the square mat for pick_place (`zone` is then the push circle).
    public var mat: SceneZone? = nil
    public var bins: [SceneBin] = []
    public var drawer: SceneDrawer? = nil
    public var instruction: String = ""
    public var tableRGB = SIMD3<Double>(0.55, 0.45, 0.35)
    public var lightDirection = SIMD3<Double>(0, 0, -1)
    public var lightDiffuse = 0.7
    public var sceneCameraPosition = SIMD3<Double>(1.0, 0, 0.5)
    public var sceneCameraTarget = SIMD3<Double>(0.45, 0, 0.1)
}
