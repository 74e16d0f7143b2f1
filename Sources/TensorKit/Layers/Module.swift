/// A slot holding one trainable tensor inside a `Module`.
///
/// Declare parameters as `@Param var weight: Tensor`; the wrapper is a reference, so the
/// module tree can be walked by reflection and updated in place (optimizers, checkpoints).
@propertyWrapper
public final class Param: @unchecked Sendable {
    public var wrappedValue: Tensor
    /// Frozen parameters are skipped by `trainableParameters()` (and so get no gradient).
    public var isFrozen = false
    public init(wrappedValue: Tensor) { self.wrappedValue = wrappedValue }
}

/// Like `Param`, for a parameter that may be absent (e.g. a bias that is switched off).
@propertyWrapper
public final class OptionalParam: @unchecked Sendable {
    public var wrappedValue: Tensor?
    public var isFrozen = false
    public init(wrappedValue: Tensor?) { self.wrappedValue = wrappedValue }
}

/// A parameter found in a module tree: its dotted key and a way to read and replace it.
public struct ParameterSlot {
    public let key: String
    let read: () -> Tensor
    let write: (Tensor) -> Void
    public let isFrozen: Bool
    public var value: Tensor { read() }
}

/// Base class of every layer and model: a tree of named parameters and child modules.
///
/// Parameters (`@Param`) and children (stored `Module`s, arrays of them, or optionals) are
/// found by reflection, named by their property names and joined with dots:
/// `blocks.0.attention.query.weight`. The same keys name tensors in checkpoints.
open class Module: @unchecked Sendable {
    /// Training mode (dropout on); switch the whole tree with `train(_:)`.
    public private(set) var isTraining = true

    public init() {}

    /// Direct children with their names (reflection over stored properties).
    public func children() -> [(String, Module)] {
        var result: [(String, Module)] = []
        forEachProperty { name, value in
            for (suffix, module) in Module.modules(in: value) {
                result.append((suffix.isEmpty ? name : "\(name).\(suffix)", module))
            }
        }
        return result
    }

    /// Every parameter in the tree, depth first, in declaration order.
    public func parameterSlots(prefix: String = "") -> [ParameterSlot] {
        var slots: [ParameterSlot] = []
        forEachProperty { name, value in
            let key = prefix.isEmpty ? name : "\(prefix).\(name)"
            if let p = value as? Param {
                slots.append(ParameterSlot(key: key, read: { p.wrappedValue }, write: { p.wrappedValue = $0 }, isFrozen: p.isFrozen))
            } else if let p = value as? OptionalParam {
                if p.wrappedValue != nil {
                    slots.append(ParameterSlot(key: key, read: { p.wrappedValue! }, write: { p.wrappedValue = $0 }, isFrozen: p.isFrozen))
                }
            } else {
                for (suffix, module) in Module.modules(in: value) {
                    let childKey = suffix.isEmpty ? key : "\(key).\(suffix)"
                    slots += module.parameterSlots(prefix: childKey)
                }
            }
        }
        return slots
    }

    /// All parameters by dotted key.
    public func parameters() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: parameterSlots().map { ($0.key, $0.value) })
    }
    /// Parameters that are not frozen.
    public func trainableParameters() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: parameterSlots().filter { !$0.isFrozen }.map { ($0.key, $0.value) })
    }
    /// Number of scalar parameters.
    public var parameterCount: Int { parameterSlots().reduce(0) { $0 + $1.value.count } }

    /// Replaces parameters by key. Unknown keys and shape changes throw (unless `strict` is false,
    /// which ignores unknown keys but still checks shapes).
    public func update(parameters: [String: Tensor], strict: Bool = true) throws {
        let slots = Dictionary(uniqueKeysWithValues: parameterSlots().map { ($0.key, $0) })
        for (key, value) in parameters {
            guard let slot = slots[key] else {
                if strict { throw TensorError.unknownParameter(key) }
                continue
            }
            let old = slot.value.shape
            guard old == value.shape else {
                throw TensorError.shapeMismatch("parameter \(key): expected \(old), got \(value.shape)")
            }
            slot.write(value)
        }
    }

    /// Freezes every parameter whose key starts with one of `prefixes` (all when empty).
    public func freeze(_ prefixes: [String] = []) { setFrozen(true, prefixes) }
    public func unfreeze(_ prefixes: [String] = []) { setFrozen(false, prefixes) }

    private func setFrozen(_ frozen: Bool, _ prefixes: [String], prefix: String = "") {
        forEachProperty { name, value in
            let key = prefix.isEmpty ? name : "\(prefix).\(name)"
            let matches = prefixes.isEmpty || prefixes.contains { key == $0 || key.hasPrefix($0 + ".") }
            if let p = value as? Param { if matches { p.isFrozen = frozen } }
            else if let p = value as? OptionalParam { if matches { p.isFrozen = frozen } }
            else {
                for (suffix, module) in Module.modules(in: value) {
                    let childKey = suffix.isEmpty ? key : "\(key).\(suffix)"
                    let childMatches = prefixes.isEmpty || prefixes.contains { childKey == $0 || childKey.hasPrefix($0 + ".") }
                    // A matched subtree is frozen whole; otherwise keep matching deeper keys.
                    module.setFrozen(frozen, childMatches ? [] : prefixes, prefix: childMatches ? "" : childKey)
                }
            }
        }
    }

    /// Switches training mode for the whole tree.
    public func train(_ on: Bool = true) {
        isTraining = on
        for (_, child) in children() { child.train(on) }
    }

    // MARK: reflection

    private func forEachProperty(_ body: (String, Any) -> Void) {
        var mirror: Mirror? = Mirror(reflecting: self)
        var chain: [Mirror] = []
        while let m = mirror { chain.append(m); mirror = m.superclassMirror }
        // Base-class properties first, so keys follow declaration order from the root type down.
        for m in chain.reversed() {
            for child in m.children {
                guard var name = child.label else { continue }
                if name.hasPrefix("_") { name.removeFirst() }
                if name == "isTraining" { continue }
                body(name, child.value)
            }
        }
    }

    /// Modules reachable from a stored property value: itself, array elements ("0", "1", …),
    /// or a present optional.
    private static func modules(in value: Any) -> [(String, Module)] {
        if let m = value as? Module { return [("", m)] }
        if let list = value as? [Module] { return list.enumerated().map { ("\($0.offset)", $0.element) } }
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional, let wrapped = mirror.children.first?.value {
            return modules(in: wrapped)
        }
        if mirror.displayStyle == .dictionary {
            var result: [(String, Module)] = []
            for entry in mirror.children {
                let pair = Array(Mirror(reflecting: entry.value).children)
                if pair.count == 2, let key = pair[0].value as? String, let m = pair[1].value as? Module {
                    result.append((key, m))
                }
            }
            return result.sorted { $0.0 < $1.0 }
        }
        return []
    }
}

/// A nested view of dotted keys (`a.b.0.c`), for printing and for tools that want trees.
public indirect enum ParameterTree: CustomStringConvertible {
    case tensor(Tensor)
    case node([String: ParameterTree])

    /// Builds the tree from dotted keys.
    public static func unflatten(_ flat: [String: Tensor]) -> ParameterTree {
        var root: [String: ParameterTree] = [:]
        for (key, value) in flat {
            insert(&root, key.split(separator: ".").map(String.init)[...], value)
        }
        return .node(root)
    }
    private static func insert(_ node: inout [String: ParameterTree], _ path: ArraySlice<String>, _ value: Tensor) {
        guard let head = path.first else { return }
        if path.count == 1 { node[head] = .tensor(value); return }
        var child: [String: ParameterTree] = [:]
        if case .node(let existing)? = node[head] { child = existing }
        insert(&child, path.dropFirst(), value)
        node[head] = .node(child)
    }

    /// Back to dotted keys.
    public func flattened(prefix: String = "") -> [String: Tensor] {
        switch self {
        case .tensor(let t): return [prefix: t]
        case .node(let children):
            var out: [String: Tensor] = [:]
            for (k, v) in children {
                out.merge(v.flattened(prefix: prefix.isEmpty ? k : "\(prefix).\(k)")) { a, _ in a }
            }
            return out
        }
    }

    public var description: String { render(indent: "") }
    private func render(indent: String) -> String {
        switch self {
        case .tensor(let t): return "\(t.shape) \(t.dtype)"
        case .node(let children):
            return children.keys.sorted().map { k in
                let v = children[k]!
                if case .tensor = v { return "\(indent)\(k): \(v.render(indent: indent))" }
                return "\(indent)\(k):\n\(v.render(indent: indent + "  "))"
            }.joined(separator: "\n")
        }
    }
}
