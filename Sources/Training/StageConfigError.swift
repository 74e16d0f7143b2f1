import Foundation

/// A stage config that cannot be run as written: which file, which key (dotted, list items as
/// `[i]`: `schedule.learning_rate`, `data.embodiments[1]`) and what is wrong with it.
public struct StageConfigError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    public enum Problem: Equatable, Sendable {
        /// The key is not one this section has (a typo must not silently become a default).
        case unknownKey(allowed: [String])
        case missingKey
        case wrongType(expected: String)
        case badValue(String, expected: String)
        /// A real key that this stage does not use.
        case notForStage(String)
        case invalidYAML(String)
    }

    public var file: String
    /// Empty for the document as a whole.
    public var key: String
    public var problem: Problem

    public init(file: String = "", key: String, problem: Problem) {
        self.file = file
        self.key = key
        self.problem = problem
    }

    public var description: String {
        let at = "\(file.isEmpty ? "stage config" : file): \(key.isEmpty ? "top level" : "`\(key)`")"
        switch problem {
        case .unknownKey(let allowed): return "\(at): unknown key (allowed here: \(allowed.joined(separator: ", ")))"
        case .missingKey: return "\(at): required but missing"
        case .wrongType(let expected): return "\(at): expected \(expected)"
        case .badValue(let value, let expected): return "\(at): \"\(value)\" is not \(expected)"
        case .notForStage(let stage): return "\(at): not used by stage \(stage); remove it"
        case .invalidYAML(let message): return "\(at): not valid YAML: \(message)"
        }
    }
    public var errorDescription: String? { description }
}
