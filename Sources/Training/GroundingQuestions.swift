import Foundation
import RobotData
import RobotSim
import VLAModel

/// Kinds of sim-generated question (Green-VLA's L1 grounding data).
public enum QuestionFamily: String, CaseIterable, Sendable, Codable {
    /// "point to the red block" → "<0.42 -0.13>": the object's scene-camera image point.
    case pointTo = "point_to"
    /// "which object is closest to the gripper?" → "red block"; "what color is the puck?" → "blue".
    case whichObject = "which_object"
    /// "where is the blue puck?" → "far left" (see `GroundingQuestions.whereIs`).
    case whereIs = "where_is"
    /// "describe the scene" → "a red block, a blue puck and a green circle".
    case caption
}

/// One question about a scene and its answer, computed from simulator state.
public struct GroundingQuestion: Sendable, Equatable {
    public var family: QuestionFamily
    public var question: String
    public var answer: String
    /// Point-to: the exact (unrounded) image point the answer writes at 2 decimals.
    public var point: SIMD2<Double>?
}

/// A scene rendered once at reset: its observation (with the task's instruction), where the
/// task's target appears in the scene camera (the pointing head's label) and its questions.
public struct GroundingScene: Sendable {
    public var seed: UInt64
    public var task: TaskKind
    public var observation: PolicyObservation
    public var targetPoint: SIMD2<Float>?
    public var questions: [GroundingQuestion]
}

/// Generates grounding questions with answers from a RobotSim scene seed: one reset, one
/// render, answers from the simulator's state (object positions, the layout's colours and
/// shapes, the camera's projection). One question per family per scene; which object a
/// question asks about comes from the seed.
public struct GroundingQuestions: Sendable {
    public var embodiment: EmbodimentKind
    /// Scenes cycle through these tasks (their layouts differ: zones, bins, cabinets).
    public var tasks: [TaskKind]
    public var families: [QuestionFamily] = QuestionFamily.allCases
    /// Ask only about what a policy trained on this split's seen scenes may know: `scenes`
    /// skips the scenes it holds out, and `scene` drops the questions that would name a
    /// held-out colour or label an object in the held-out region (see `questions(_:seed:split:)`).
    /// nil: every scene and question.
    public var sceneSplit: SceneSplit?

    public init(embodiment: EmbodimentKind, tasks: [TaskKind], families: [QuestionFamily] = QuestionFamily.allCases) {
        self.embodiment = embodiment
        self.tasks = tasks.filter { $0.embodiments.contains(embodiment) }
        self.families = families
    }

    /// The robot base: arm7 and arm6 are mounted at the world origin (the bimanual torso turns
    /// there), facing +x, so +y is the robot's left.
    public static let robotBase = SIMD3<Double>(0, 0, 0)
    /// Where-is's near/far boundary: the middle of the band (0.36–0.62 m ahead of the base)
    /// where tasks place objects.
    public static let farBoundary = 0.49

    /// Where-is: "left" when the object is on the robot's left (y > base y), else "right";
    /// "far" when it is more than `farBoundary` ahead of the base (x), else "near":
    /// "far left", "near right", …
    public static func whereIs(_ p: SIMD3<Double>) -> String {
        let offset = p - robotBase
        return "\(offset.x > farBoundary ? "far" : "near") \(offset.y > 0 ? "left" : "right")"
    }

    /// "<x y>", each rounded to 2 decimals (no "-0.00").
    public static func pointText(_ p: SIMD2<Double>) -> String {
        func f(_ v: Double) -> String {
            let r = (v * 100).rounded() / 100
            return String(format: "%.2f", r == 0 ? 0 : r)
        }
        return "<\(f(p.x)) \(f(p.y))>"
    }

    /// Parses `pointText`'s format; nil for anything else.
    public static func parsePoint(_ text: String) -> SIMD2<Double>? {
        guard text.hasPrefix("<"), text.hasSuffix(">") else { return nil }
        let parts = text.dropFirst().dropLast().split(separator: " ")
        guard parts.count == 2, let x = Double(parts[0]), let y = Double(parts[1]) else { return nil }
        return SIMD2(x, y)
    }

    /// "a red block", "an orange puck", … joined as "a, b and c".
    static func list(_ phrases: [String]) -> String {
        let items = phrases.map { ("aeiou".contains($0.first ?? "x") ? "an " : "a ") + $0 }
        guard items.count > 1 else { return items.first ?? "nothing" }
        return items.dropLast().joined(separator: ", ") + " and " + items.last!
    }

    /// Everything visible on the table with its phrase and world position: objects ("red block"),
    /// the zone ("green circle" when round (push), "green square" otherwise), bins, the cabinet.
    public static func sceneItems(_ env: RobotEnvironment) -> [(phrase: String, position: SIMD3<Double>)] {
        let layout = env.layout
        var items = layout.objects.indices.map { (layout.objects[$0].phrase, env.objectPosition($0)) }
        if let zone = layout.zone { items.append(("\(zone.color.name) \(env.task == .push ? "circle" : "square")", zone.center)) }
        items += layout.bins.map { ("\($0.color.name) bin", $0.center) }
        if let drawer = layout.drawer { items.append(("\(drawer.color.name) cabinet", drawer.front)) }
        return items
    }

    /// The questions about `env`'s current state (call after `reset()`); `seed` picks the
    /// objects asked about and the which-object form. With `split`, a question about a held-out
    /// object (one whose colour or layout position the split holds out as a target: its name
    /// or its place would be a label no seen scene gives) and a caption naming a held-out
    /// colour are dropped; the others are the same questions as without it.
    public func questions(_ env: RobotEnvironment, seed: UInt64, split: SceneSplit? = nil) -> [GroundingQuestion] {
        let objects = env.layout.objects
        let all = subjectQuestions(env, seed: seed)
        guard let split else { return all.map(\.question) }
        return all.filter { q, subject in
            if let i = subject, split.holdsOut(colorName: objects[i].color.name) || split.holdsOut(position: objects[i].position) { return false }
            let words = (q.question + " " + q.answer).split(whereSeparator: { !$0.isLetter }).map(String.init)
            return !words.contains(where: split.holdsOut(colorName:))
        }.map(\.question)
    }

    /// `questions` with the object each one is about (nil for a caption).
    func subjectQuestions(_ env: RobotEnvironment, seed: UInt64) -> [(question: GroundingQuestion, subject: Int?)] {
        let objects = env.layout.objects
        guard !objects.isEmpty else { return families.contains(.caption) ? [(caption(env), nil)] : [] }
        var generator = SplitMix64(seed: seed &* 0x9E37_79B9 &+ 17)
        func pick() -> Int { Int(generator.next() % UInt64(objects.count)) }
        var out: [(question: GroundingQuestion, subject: Int?)] = []
        for family in families {
            switch family {
            case .pointTo:
                let i = pick()
                guard let p = env.imagePoint(env.objectPosition(i), camera: "scene") else { continue }
                out.append((GroundingQuestion(family: .pointTo, question: "point to the \(objects[i].phrase)", answer: Self.pointText(p), point: p), i))
            case .whichObject:
                let askColor = generator.next() % 2 == 0
                let i = pick()
                let sameShape = objects.filter { $0.shape == objects[i].shape }.count
                if askColor && sameShape == 1 {
                    let noun = objects[i].shape == .box ? "block" : "puck"
                    out.append((GroundingQuestion(family: .whichObject, question: "what color is the \(noun)?", answer: objects[i].color.name), i))
                } else {
                    let grippers = env.gripperPositions
                    let distance = { (k: Int) in grippers.map { g in
                        let d = env.objectPosition(k) - g
                        return (d * d).sum()
                    }.min() ?? 0 }
                    let closest = objects.indices.min { distance($0) < distance($1) }!
                    out.append((GroundingQuestion(family: .whichObject, question: "which object is closest to the gripper?",
                                                  answer: objects[closest].phrase), closest))
                }
            case .whereIs:
                let i = pick()
                out.append((GroundingQuestion(family: .whereIs, question: "where is the \(objects[i].phrase)?",
                                              answer: Self.whereIs(env.objectPosition(i))), i))
            case .caption:
                out.append((caption(env), nil))
            }
        }
        return out
    }

    /// Every scene item, left to right as the scene camera sees them.
    func caption(_ env: RobotEnvironment) -> GroundingQuestion {
        let ordered = Self.sceneItems(env).map { ($0.phrase, env.imagePoint($0.position, camera: "scene")?.x ?? 0) }
            .sorted { $0.1 < $1.1 }.map(\.0)
        return GroundingQuestion(family: .caption, question: "describe the scene", answer: Self.list(ordered))
    }

    /// Scene `index`'s task (scenes cycle through `tasks`).
    public func task(forScene index: Int) -> TaskKind { tasks[index % tasks.count] }

    /// Resets scene `seed` of `task`, renders it and asks its questions.
    public func scene(seed: UInt64, task: TaskKind, imageSize: Int) throws -> GroundingScene {
        let env = try RobotEnvironment(embodiment: embodiment, task: task, seed: seed,
                                       config: EnvironmentConfig(imageWidth: imageSize, imageHeight: imageSize))
        let o = env.reset()
        // Sort and drawer name no single target to point at (as in `PointingPretraining`).
        let pointable = task != .sort && task != .drawer
        let target = pointable ? env.targetImagePoint.map { SIMD2(Float($0.x), Float($0.y)) } : nil
        return GroundingScene(seed: seed, task: task, observation: PolicyEvaluator.policyObservation(o, env: env),
                              targetPoint: target, questions: questions(env, seed: seed, split: sceneSplit))
    }

    /// `count` scenes from consecutive seeds from `firstSeed`, cycling through the tasks; with a
    /// split, seeds whose scene it holds out for the task of their turn are skipped (so there
    /// are as many scenes as without it).
    public func scenes(firstSeed: UInt64, count: Int, imageSize: Int, log: (String) -> Void = { _ in }) throws -> [GroundingScene] {
        guard !tasks.isEmpty else { throw EnvironmentError.unsupported(embodiment: embodiment.rawValue, task: "any of the listed tasks") }
        var out: [GroundingScene] = []
        out.reserveCapacity(count)
        for i in 0... {
            guard out.count < count else { break }
            let seed = firstSeed + UInt64(i), task = task(forScene: i)
            if let sceneSplit, sceneSplit.part(embodiment: embodiment, task: task, seed: seed) != .seen { continue }
            out.append(try scene(seed: seed, task: task, imageSize: imageSize))
            if out.count % 500 == 0 { log("grounding scenes: \(out.count)/\(count) rendered") }
        }
        return out
    }
}
