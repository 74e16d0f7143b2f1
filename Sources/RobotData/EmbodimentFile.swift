import Foundation
import Yams

/// Embodiment files (`embodiments/<name>.yaml`): an embodiment's native action and state
/// layout and its unified-space maps Φ_e declared as data, so a new robot body needs a file,
/// not code. Each native entry names its unified slot (`UnifiedActionSpace.slotName`, e.g.
/// `left_arm_6`, `left_gripper`, `ee_x`, `ee_qw`, `torso_0`) or gives its index:
///
/// ```yaml
/// name: arm7
/// control_mode: joint        # joint | cartesian ("Control mode: …" in the prompt)
/// num_arms: 1                # "Num hands: …" in the prompt
/// actions:                   # native order: [native name, unified slot]
///   - [joint1, left_arm_0]
///   - [gripper, left_gripper]
/// states:
///   - [joint1, left_arm_0]
/// cameras: [scene]           # optional: the cameras every episode must carry (`EmbodimentFile`)
/// ```
extension EmbodimentSpec {
    public enum FileError: Error, Equatable, CustomStringConvertible {
        case unreadable(String)
        case missingField(String)
        case badEntry(section: String, index: Int)
        case unknownSlot(String)
        case badControlMode(String)
        case badCamera(index: Int)

        public var description: String {
            switch self {
            case .unreadable(let why): return "EmbodimentSpec.FileError.unreadable: \(why)"
            case .missingField(let f): return "EmbodimentSpec.FileError.missingField: \"\(f)\" is required"
            case .badEntry(let s, let i): return "EmbodimentSpec.FileError.badEntry: \(s)[\(i)] must be [native name, slot]"
            case .unknownSlot(let s): return "EmbodimentSpec.FileError.unknownSlot: \"\(s)\" is not a unified slot name or index 0…63"
            case .badControlMode(let m): return "EmbodimentSpec.FileError.badControlMode: \"\(m)\" (joint or cartesian)"
            case .badCamera(let i): return "EmbodimentSpec.FileError.badCamera: cameras[\(i)] must be a unique name of 1…64 A–Z a–z 0–9 _ - ."
            }
        }
    }

    /// Parses an embodiment file; slot conflicts are refused like any `EmbodimentSpec`.
    public init(yaml text: String) throws {
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch { throw FileError.unreadable("\(error)") }
        guard let fields = root as? [String: Any] else { throw FileError.unreadable("the file must be a YAML map") }
        guard let name = fields["name"] as? String, !name.isEmpty else { throw FileError.missingField("name") }
        guard let modeName = fields["control_mode"] as? String else { throw FileError.missingField("control_mode") }
        guard let mode = ControlMode(rawValue: modeName) else { throw FileError.badControlMode(modeName) }
        guard let arms = fields["num_arms"] as? Int else { throw FileError.missingField("num_arms") }
        func entries(_ section: String) throws -> (names: [String], slots: [Int]) {
            guard let list = fields[section] as? [Any] else { throw FileError.missingField(section) }
            var names: [String] = [], slots: [Int] = []
            for (i, item) in list.enumerated() {
                guard let pair = item as? [Any], pair.count == 2, let native = pair[0] as? String else {
                    throw FileError.badEntry(section: section, index: i)
                }
                names.append(native)
                slots.append(try Self.slot(pair[1]))
            }
            return (names, slots)
        }
        let (actionNames, actionSlots) = try entries("actions")
        let (stateNames, stateSlots) = try entries("states")
        try self.init(name: name, controlMode: mode, numArms: arms, actionNames: actionNames, actionSlots: actionSlots,
                      stateNames: stateNames, stateSlots: stateSlots)
    }

    public static func load(_ url: URL) throws -> EmbodimentSpec {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch { throw FileError.unreadable("\(url.path): \(error)") }
        return try EmbodimentSpec(yaml: text)
    }

    /// Every `*.yaml` in `directory`, by embodiment name.
    public static func loadAll(_ directory: URL) throws -> [String: EmbodimentSpec] {
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "yaml" }.sorted { $0.path < $1.path }
        return Dictionary(try files.map { let s = try load($0); return (s.name, s) }) { first, _ in first }
    }

    /// A slot by name (`UnifiedActionSpace.slotName`) or index.
    static func slot(_ value: Any) throws -> Int {
        if let index = value as? Int {
            guard (0..<UnifiedActionSpace.dimension).contains(index) else { throw FileError.unknownSlot("\(index)") }
            return index
        }
        guard let name = value as? String,
              let slot = (0..<UnifiedActionSpace.dimension).first(where: { UnifiedActionSpace.slotName($0) == name }) else {
            throw FileError.unknownSlot("\(value)")
        }
        return slot
    }

    /// The file text for this spec (what `embodiments/*.yaml` hold for the built-in bodies).
    public var yaml: String {
        func section(_ names: [String], _ slots: [Int]) -> String {
            zip(names, slots).map { "  - [\($0), \(UnifiedActionSpace.slotName($1))]" }.joined(separator: "\n")
        }
        return """
            name: \(name)
            control_mode: \(controlMode.rawValue)
            num_arms: \(numArms)
            actions:
            \(section(actionNames, actionMap.slots))
            states:
            \(section(stateNames, stateMap.slots))

            """
    }
}

/// An embodiment file with its optional `cameras:` list: the camera names every episode of the
/// body must carry (e.g. `[scene]`, the VLA's scene slot), so a learner can refuse uploads
/// without them. `EmbodimentSpec(yaml:)` reads the same file and ignores the list.
public struct EmbodimentFile: Sendable, Equatable {
    public let spec: EmbodimentSpec
    /// nil: the file declares no cameras (any or none are accepted).
    public let cameras: [String]?

    public init(yaml text: String) throws {
        spec = try EmbodimentSpec(yaml: text)
        let root = try? Yams.load(yaml: text) as? [String: Any]
        guard let value = root?["cameras"] else { cameras = nil; return }
        guard let list = value as? [Any] else { throw EmbodimentSpec.FileError.badCamera(index: 0) }
        var names: [String] = []
        for (i, item) in list.enumerated() {
            guard let name = item as? String, Episode.isStorableCameraName(name), !names.contains(name) else {
                throw EmbodimentSpec.FileError.badCamera(index: i)
            }
            names.append(name)
        }
        cameras = names
    }

    public static func load(_ url: URL) throws -> EmbodimentFile {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch { throw EmbodimentSpec.FileError.unreadable("\(url.path): \(error)") }
        return try EmbodimentFile(yaml: text)
    }
}
