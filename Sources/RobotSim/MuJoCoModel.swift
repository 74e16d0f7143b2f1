import CMuJoCo

/// Errors from the MuJoCo layer.
public enum MuJoCoError: Error, CustomStringConvertible, Equatable {
    case compile(String)
    case unknownName(kind: String, name: String)
    case renderer(String)
    case shape(String)

    public var description: String {
        switch self {
        case .compile(let message): "MJCF compile failed: \(message)"
        case .unknownName(let kind, let name): "no \(kind) named '\(name)' in the model"
        case .renderer(let message): "renderer: \(message)"
        case .shape(let message): "shape: \(message)"
        }
    }
}

/// Kinds of named MuJoCo objects this wrapper looks up.
public enum MuJoCoObject: Sendable {
    case body, joint, geom, site, camera, actuator

    var raw: Int32 {
        switch self {
        case .body: Int32(mjOBJ_BODY.rawValue)
        case .joint: Int32(mjOBJ_JOINT.rawValue)
        case .geom: Int32(mjOBJ_GEOM.rawValue)
        case .site: Int32(mjOBJ_SITE.rawValue)
        case .camera: Int32(mjOBJ_CAMERA.rawValue)
        case .actuator: Int32(mjOBJ_ACTUATOR.rawValue)
        }
    }
}

/// Owns a compiled `mjModel` (deleted on deinit). Immutable after compilation, so it may be
/// shared between threads (each thread needs its own `MuJoCoSimulation`).
public final class MuJoCoModel: @unchecked Sendable {
    public let raw: UnsafeMutablePointer<mjModel>
    /// The MJCF text this model was compiled from.
    public let xml: String

    /// Compile MJCF text (`mj_parseXMLString` + `mj_compile`).
    public init(xml: String) throws {
        var error = [CChar](repeating: 0, count: 1024)
        guard let model = cmj_compile_xml_string(xml, &error, Int32(error.count)) else {
            throw MuJoCoError.compile(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        raw = model
        self.xml = xml
    }

    deinit { mj_deleteModel(raw) }

    public var nq: Int { Int(raw.pointee.nq) }
    public var nv: Int { Int(raw.pointee.nv) }
    public var nu: Int { Int(raw.pointee.nu) }
    public var timestep: Double { raw.pointee.opt.timestep }

    /// Id of a named object, or throws `unknownName`.
    public func id(of kind: MuJoCoObject, _ name: String) throws -> Int {
        let id = mj_name2id(raw, kind.raw, name)
        guard id >= 0 else { throw MuJoCoError.unknownName(kind: "\(kind)", name: name) }
        return Int(id)
    }

    /// Id of a named object or nil.
    public func optionalID(of kind: MuJoCoObject, _ name: String) -> Int? {
        let id = mj_name2id(raw, kind.raw, name)
        return id >= 0 ? Int(id) : nil
    }

    /// qpos address of joint `joint`.
    public func qposAddress(joint: Int) -> Int { Int(raw.pointee.jnt_qposadr[joint]) }
    /// qvel (dof) address of joint `joint`.
    public func dofAddress(joint: Int) -> Int { Int(raw.pointee.jnt_dofadr[joint]) }
}
