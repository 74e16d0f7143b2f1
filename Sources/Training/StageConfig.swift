import Foundation
import RobotSim
import VLAModel
import Yams

/// One Green-VLA training stage as data (`stages/R1.yaml`, run by `StageRunner`): which stage,
/// where it writes, which earlier checkpoint it starts from, its data mixture, model, schedule,
/// frozen subtrees and stage options. Keys are snake_case; everything but `stage` and `output`
/// has a default. An unknown key, a key the stage does not use, a bad value or a wrong type is
/// a `StageConfigError` naming the key and the file: a typo must not silently become a default.
public struct StageConfig: Codable, Sendable, Equatable {
    public enum Stage: String, Codable, Sendable, CaseIterable {
        /// A freshly initialized model at the configured sizes (our stand-in for a base VLM).
        case L0
        /// Multimodal pretraining: pointing at the task's target on rendered scenes.
        case L1
        /// Multi-embodiment behaviour cloning over every listed embodiment × task.
        case R0
        /// Single-embodiment adaptation: behaviour cloning from an earlier checkpoint.
        case R1
        /// RL alignment of an R1 checkpoint (`R2Alignment`).
        case R2
    }

    public var stage: Stage
    /// Run directory: `checkpoint/`, `loss.csv`, `stage.yaml` (and R2's report).
    public var output: String
    public var seed: UInt64 = 0
    /// An earlier stage's checkpoint directory: its weights and model config are the start
    /// (the `model` section overrides config fields); the optimizer starts fresh.
    public var initFrom: String?
    public var data: DataMixture?
    public var model: ModelOptions?
    /// R2: the fine-tuning schedule (`steps` = fine-tuning steps).
    public var schedule: ScheduleOptions?
    public var checkpointEvery: Int?
    /// Fit the OOD guard on the training states after behaviour cloning (default true).
    public var oodGuard: Bool?
    /// Parameter-path prefixes kept frozen (`Module.freeze`: "vision", "backbone", …).
    public var frozen: [String]?
    public var pointing: PointingOptions?
    /// Grounding questions: L1's families; R0/R1's VQA co-training scenes and rows per batch.
    public var questions: QuestionOptions?
    public var r2: R2Options?
    /// The file this was read from, named in errors found when running (not a YAML key).
    public var source: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case stage, output, seed
        case initFrom = "init_from"
        case data, model, schedule
        case checkpointEvery = "checkpoint_every"
        case oodGuard = "ood_guard"
        case frozen, pointing, questions, r2
    }

    public init(stage: Stage, output: String) {
        self.stage = stage
        self.output = output
    }

    /// Keys each stage reads; any other known key is `notForStage` (it would do nothing).
    static func keys(for stage: Stage) -> Set<CodingKeys> {
        let common: Set<CodingKeys> = [.stage, .output, .seed, .model]
        switch stage {
        case .L0: return common
        case .L1: return common.union([.initFrom, .data, .pointing, .questions])
        case .R0, .R1: return common.union([.initFrom, .data, .schedule, .checkpointEvery, .oodGuard, .frozen, .questions])
        case .R2: return common.union([.initFrom, .data, .schedule, .frozen, .r2])
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        stage = try c.decodeChoice(Stage.self, forKey: .stage)
        for key in c.allKeys where !Self.keys(for: stage).contains(key) {
            throw StageConfigError(key: key.stringValue, problem: .notForStage(stage.rawValue))
        }
        output = try c.decode(String.self, forKey: .output)
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? 0
        initFrom = try c.decodeIfPresent(String.self, forKey: .initFrom)
        data = try c.decodeIfPresent(DataMixture.self, forKey: .data)
        model = try c.decodeIfPresent(ModelOptions.self, forKey: .model)
        schedule = try c.decodeIfPresent(ScheduleOptions.self, forKey: .schedule)
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery)
        oodGuard = try c.decodeIfPresent(Bool.self, forKey: .oodGuard)
        frozen = try c.decodeIfPresent([String].self, forKey: .frozen)
        pointing = try c.decodeIfPresent(PointingOptions.self, forKey: .pointing)
        questions = try c.decodeIfPresent(QuestionOptions.self, forKey: .questions)
        r2 = try c.decodeIfPresent(R2Options.self, forKey: .r2)
    }

    // MARK: reading

    public static func load(from url: URL) throws -> StageConfig {
        try parse(String(contentsOf: url, encoding: .utf8), file: url.path)
    }

    /// Decodes and checks a stage config; `file` is named in errors.
    public static func parse(_ yaml: String, file: String) throws -> StageConfig {
        do {
            var config = try YAMLDecoder().decode(StageConfig.self, from: yaml)
            try config.validate()
            config.source = file
            return config
        } catch {
            throw configError(error, file: file)
        }
    }

    /// What a stage needs beyond well-typed keys.
    func validate() throws {
        let needsData: Set<Stage> = [.L1, .R0, .R1, .R2]
        if needsData.contains(stage) && data == nil { throw StageConfigError(key: "data", problem: .missingKey) }
        if (stage == .R1 || stage == .R2) && initFrom == nil { throw StageConfigError(key: "init_from", problem: .missingKey) }
        if let data {
            let one: Set<Stage> = [.L1, .R1, .R2]
            if one.contains(stage) && data.embodiments.count != 1 {
                throw StageConfigError(key: "data.embodiments", problem: .badValue(
                    data.embodiments.map(\.rawValue).joined(separator: ", "), expected: "exactly one embodiment (stage \(stage.rawValue) trains one robot body)"))
            }
            if stage == .R2 && data.tasks.count != 1 {
                throw StageConfigError(key: "data.tasks", problem: .badValue(data.tasks.map(\.rawValue).joined(separator: ", "), expected: "exactly one task (R2 aligns one task)"))
            }
            // R2's rollouts and evaluation use each task's own distractor range.
            if stage == .R2 && data.maxDistractors != nil { throw StageConfigError(key: "data.max_distractors", problem: .notForStage("R2")) }
            // R2 rolls out on every seed: it does not take the split.
            if stage == .R2 && data.seenScenesOnly != nil { throw StageConfigError(key: "data.seen_scenes_only", problem: .notForStage("R2")) }
            for (i, t) in data.tasks.enumerated() where !data.embodiments.contains(where: { t.embodiments.contains($0) }) {
                throw StageConfigError(key: "data.tasks[\(i)]", problem: .badValue(t.rawValue, expected: "a task one of the listed embodiments can do"))
            }
            try Self.positive(data.demosPerPair, "data.demos_per_pair")
            for (i, v) in (data.operatorSpeeds ?? []).enumerated() where !(v > 0 && v.isFinite) {
                throw StageConfigError(key: "data.operator_speeds[\(i)]", problem: .badValue(String(v), expected: "a positive speed scale"))
            }
            if data.operatorSpeeds?.isEmpty == true {
                throw StageConfigError(key: "data.operator_speeds", problem: .badValue("[]", expected: "at least one speed scale"))
            }
        }
        try Self.positive(checkpointEvery, "checkpoint_every")
        try Self.positive(schedule?.steps, "schedule.steps")
        try Self.positive(schedule?.batchSize, "schedule.batch_size")
        try Self.positive(pointing?.scenes, "pointing.scenes")
        try Self.positive(pointing?.steps, "pointing.steps")
        try Self.positive(pointing?.batchSize, "pointing.batch_size")
        try Self.positive(questions?.scenes, "questions.scenes")
        try Self.positive(questions?.batchSize, "questions.batch_size")
        // L1's scenes and batches are the `pointing` section's.
        if stage == .L1, questions?.scenes != nil { throw StageConfigError(key: "questions.scenes", problem: .notForStage("L1")) }
        if stage == .L1, questions?.batchSize != nil { throw StageConfigError(key: "questions.batch_size", problem: .notForStage("L1")) }
        if questions?.families?.isEmpty == true {
            throw StageConfigError(key: "questions.families", problem: .badValue("[]", expected: "at least one question family"))
        }
    }

    static func positive(_ value: Int?, _ key: String) throws {
        if let value, value < 1 { throw StageConfigError(key: key, problem: .badValue("\(value)", expected: "a positive integer")) }
    }

    // MARK: run settings

    public var outputURL: URL { URL(fileURLWithPath: output) }
    public var checkpointURL: URL { outputURL.appendingPathComponent("checkpoint") }
    public var initFromURL: URL? { initFrom.map { URL(fileURLWithPath: $0) } }

    /// `base` (the `init_from` checkpoint's config, or the defaults) with the `model` section on top.
    public func modelConfig(base: VLAConfig) -> VLAConfig { model?.applied(to: base) ?? base }

    /// The optimizer schedule: `schedule` over the defaults (R2: its fine-tuning defaults).
    public var trainingSchedule: TrainingSchedule {
        var base = TrainingSchedule()
        if stage == .R2 {
            base = R2Config().fineTune
            base.totalSteps = R2Config().fineTuneSteps
        }
        return schedule?.applied(to: base) ?? base
    }

    /// The behaviour-cloning run of R0/R1 (L1 and R2 use its data settings to get demos).
    public func behaviorCloningRun(model config: VLAConfig) -> BehaviorCloningRun {
        var run = BehaviorCloningRun(output: outputURL)
        if let data {
            run.embodiments = data.embodiments
            run.tasks = data.tasks
            if let n = data.demosPerPair { run.demosPerPair = n }
            run.maxDistractors = data.maxDistractors
            if let v = data.operatorSpeeds { run.operatorSpeeds = v }
            run.episodeStore = data.episodeStore.map { URL(fileURLWithPath: $0) }
            run.sceneSplit = data.sceneSplit
        }
        run.model = config
        run.schedule = trainingSchedule
        run.seed = seed
        if let checkpointEvery { run.checkpointEvery = checkpointEvery }
        if oodGuard == false { run.oodGuard = nil }
        run.initFrom = initFromURL
        run.frozen = frozen ?? []
        if let q = questions {
            if let v = q.scenes { run.questionScenes = v }
            if let v = q.batchSize { run.questionBatchSize = v }
            if let v = q.families { run.questionFamilies = v }
        }
        return run
    }

    /// L1 with the answer head (`model.answer_weight` > 0): grounding questions on the
    /// `pointing` section's scenes and steps (and the pointing loss when its weight is > 0).
    public var groundingPretraining: GroundingPretraining {
        let p = pointingPretraining
        var generator = GroundingQuestions(embodiment: p.embodiment, tasks: p.tasks, families: questions?.families ?? QuestionFamily.allCases)
        generator.sceneSplit = p.sceneSplit
        var l1 = GroundingPretraining(questions: generator)
        l1.seed = p.seed
        l1.scenes = p.scenes
        l1.steps = p.steps
        l1.batchSize = p.batchSize
        l1.learningRate = p.learningRate
        l1.heldOutScenes = p.heldOutScenes
        l1.firstSeed = p.firstSeed
        return l1
    }

    /// L1's pointing pretraining.
    public var pointingPretraining: PointingPretraining {
        var l1 = PointingPretraining(embodiment: data?.embodiments.first ?? .arm7, tasks: data?.tasks ?? [.reach])
        l1.seed = seed
        l1.sceneSplit = data?.sceneSplit
        if let p = pointing {
            if let v = p.scenes { l1.scenes = v }
            if let v = p.steps { l1.steps = v }
            if let v = p.batchSize { l1.batchSize = v }
            if let v = p.learningRate { l1.learningRate = v }
            if let v = p.heldOutScenes { l1.heldOutScenes = v }
        }
        return l1
    }

    /// R2's settings: the `r2` section, fine-tuning from `schedule`, the stage's seed.
    public var r2Config: R2Config {
        var c = R2Config()
        c.seed = seed
        c.fineTune = trainingSchedule
        c.fineTuneSteps = trainingSchedule.totalSteps
        r2?.apply(to: &c)
        return c
    }

    // MARK: errors

    /// `a.b[2].c` for a coding path.
    static func keyPath(_ path: [CodingKey]) -> String {
        path.reduce("") { text, key in
            if let i = key.intValue { return text + "[\(i)]" }
            return text.isEmpty ? key.stringValue : text + "." + key.stringValue
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is UInt64.Type: return "a non-negative integer"
        case is Int.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        case is Node.Mapping.Type: return "a mapping (indented key: value lines)"
        case is Node.Sequence.Type: return "a list"
        case is Node.Scalar.Type: return "a single value"
        default: return "\(type)"
        }
    }

    /// Decoding errors (Yams wraps errors thrown while decoding in `dataCorrupted`) as
    /// `StageConfigError`s naming `file`.
    static func configError(_ error: Error, file: String) -> StageConfigError {
        switch error {
        case var e as StageConfigError:
            e.file = file
            return e
        case DecodingError.typeMismatch(let type, let context), DecodingError.valueNotFound(let type, let context):
            return StageConfigError(file: file, key: keyPath(context.codingPath), problem: .wrongType(expected: typeName(type)))
        case DecodingError.keyNotFound(let key, let context):
            return StageConfigError(file: file, key: keyPath(context.codingPath + [key]), problem: .missingKey)
        case DecodingError.dataCorrupted(let context):
            if let inner = context.underlyingError { return configError(inner, file: file) }
            return StageConfigError(file: file, key: keyPath(context.codingPath), problem: .invalidYAML(context.debugDescription))
        default:
            return StageConfigError(file: file, key: "", problem: .invalidYAML("\(error)"))
        }
    }
}

// MARK: - sections

extension StageConfig {
    /// What the stage trains on: every listed embodiment × task pair the embodiment can do.
    public struct DataMixture: Codable, Sendable, Equatable {
        public var embodiments: [EmbodimentKind]
        public var tasks: [TaskKind]
        public var demosPerPair: Int?
        public var maxDistractors: Int?
        /// Operator speed scales the demos cycle through (`BehaviorCloningRun.operatorSpeeds`).
        public var operatorSpeeds: [Double]?
        /// Shared between stages so demos are collected once (default: `output`/demos).
        public var episodeStore: String?
        /// Train on `SceneSplit.standard`'s seen scenes only: demos, L1 pointing scenes and
        /// questions, R0/R1's VQA co-training (`vla train bc --seen-scenes-only`).
        public var seenScenesOnly: Bool?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case embodiments, tasks
            case demosPerPair = "demos_per_pair"
            case maxDistractors = "max_distractors"
            case operatorSpeeds = "operator_speeds"
            case episodeStore = "episode_store"
            case seenScenesOnly = "seen_scenes_only"
        }

        /// The split the stage trains within (nil: every scene).
        public var sceneSplit: SceneSplit? { seenScenesOnly == true ? .standard : nil }

        public init(embodiments: [EmbodimentKind], tasks: [TaskKind]) {
            self.embodiments = embodiments
            self.tasks = tasks
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            embodiments = try c.decodeChoices(EmbodimentKind.self, forKey: .embodiments)
            tasks = try c.decodeChoices(TaskKind.self, forKey: .tasks)
            demosPerPair = try c.decodeIfPresent(Int.self, forKey: .demosPerPair)
            maxDistractors = try c.decodeIfPresent(Int.self, forKey: .maxDistractors)
            operatorSpeeds = try c.decodeIfPresent([Double].self, forKey: .operatorSpeeds)
            episodeStore = try c.decodeIfPresent(String.self, forKey: .episodeStore)
            seenScenesOnly = try c.decodeIfPresent(Bool.self, forKey: .seenScenesOnly)
        }
    }

    /// Any `VLAConfig` field; absent ones keep the base config's value.
    public struct ModelOptions: Codable, Sendable, Equatable {
        public var imageSize: Int?
        public var cameraSlots: Int?
        public var maxTextLength: Int?
        public var dims: Int?
        public var heads: Int?
        public var backboneLayers: Int?
        public var expertLayers: Int?
        public var horizon: Int?
        public var executeSteps: Int?
        public var samplingSteps: Int?
        public var noiseDraws: Int?
        public var stateNoise: Float?
        public var insulateBackbone: Bool?
        public var keypoints: Int?
        public var pointingWeight: Double?
        /// The place-pointing head's slot (`vla train pointing-head` fits it; no stage trains it).
        public var placePointing: Bool?
        public var relativeActions: Bool?
        public var advantageConditioning: Bool?
        public var speedConditioning: Bool?
        public var progressWeight: Double?
        /// `bytes` or `minilm` (`TextEncoderChoice`).
        public var textEncoder: TextEncoderChoice?
        public var answerWeight: Double?
        public var maxAnswerLength: Int?
        /// `body-first` or `instruction-first` (`PromptLayout`).
        public var promptLayout: PromptLayout?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case imageSize = "image_size", cameraSlots = "camera_slots", maxTextLength = "max_text_length"
            case dims, heads, backboneLayers = "backbone_layers", expertLayers = "expert_layers"
            case horizon, executeSteps = "execute_steps", samplingSteps = "sampling_steps", noiseDraws = "noise_draws"
            case stateNoise = "state_noise", insulateBackbone = "insulate_backbone", keypoints
            case pointingWeight = "pointing_weight", placePointing = "place_pointing", relativeActions = "relative_actions"
            case advantageConditioning = "advantage_conditioning", textEncoder = "text_encoder"
            case speedConditioning = "speed_conditioning", progressWeight = "progress_weight"
            case answerWeight = "answer_weight", maxAnswerLength = "max_answer_length", promptLayout = "prompt_layout"
        }

        public init() {}

        public init(from decoder: Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            imageSize = try c.decodeIfPresent(Int.self, forKey: .imageSize)
            cameraSlots = try c.decodeIfPresent(Int.self, forKey: .cameraSlots)
            maxTextLength = try c.decodeIfPresent(Int.self, forKey: .maxTextLength)
            dims = try c.decodeIfPresent(Int.self, forKey: .dims)
            heads = try c.decodeIfPresent(Int.self, forKey: .heads)
            backboneLayers = try c.decodeIfPresent(Int.self, forKey: .backboneLayers)
            expertLayers = try c.decodeIfPresent(Int.self, forKey: .expertLayers)
            horizon = try c.decodeIfPresent(Int.self, forKey: .horizon)
            executeSteps = try c.decodeIfPresent(Int.self, forKey: .executeSteps)
            samplingSteps = try c.decodeIfPresent(Int.self, forKey: .samplingSteps)
            noiseDraws = try c.decodeIfPresent(Int.self, forKey: .noiseDraws)
            stateNoise = try c.decodeIfPresent(Float.self, forKey: .stateNoise)
            insulateBackbone = try c.decodeIfPresent(Bool.self, forKey: .insulateBackbone)
            keypoints = try c.decodeIfPresent(Int.self, forKey: .keypoints)
            pointingWeight = try c.decodeIfPresent(Double.self, forKey: .pointingWeight)
            placePointing = try c.decodeIfPresent(Bool.self, forKey: .placePointing)
            relativeActions = try c.decodeIfPresent(Bool.self, forKey: .relativeActions)
            advantageConditioning = try c.decodeIfPresent(Bool.self, forKey: .advantageConditioning)
            speedConditioning = try c.decodeIfPresent(Bool.self, forKey: .speedConditioning)
            progressWeight = try c.decodeIfPresent(Double.self, forKey: .progressWeight)
            textEncoder = try c.decodeIfPresent(TextEncoderChoice.self, forKey: .textEncoder)
            answerWeight = try c.decodeIfPresent(Double.self, forKey: .answerWeight)
            maxAnswerLength = try c.decodeIfPresent(Int.self, forKey: .maxAnswerLength)
            promptLayout = try c.decodeIfPresent(PromptLayout.self, forKey: .promptLayout)
        }

        public func applied(to base: VLAConfig) -> VLAConfig {
            var c = base
            if let v = imageSize { c.imageSize = v }
            if let v = cameraSlots { c.cameraSlots = v }
            if let v = maxTextLength { c.maxTextLength = v }
            if let v = dims { c.dims = v }
            if let v = heads { c.heads = v }
            if let v = backboneLayers { c.backboneLayers = v }
            if let v = expertLayers { c.expertLayers = v }
            if let v = horizon { c.horizon = v }
            if let v = executeSteps { c.executeSteps = v }
            if let v = samplingSteps { c.samplingSteps = v }
            if let v = noiseDraws { c.noiseDraws = v }
            if let v = stateNoise { c.stateNoise = v }
            if let v = insulateBackbone { c.insulateBackbone = v }
            if let v = keypoints { c.keypoints = v }
            if let v = pointingWeight { c.pointingWeight = v }
            if let v = placePointing { c.placePointing = v }
            if let v = relativeActions { c.relativeActions = v }
            if let v = advantageConditioning { c.advantageConditioning = v }
            if let v = speedConditioning { c.speedConditioning = v }
            if let v = progressWeight { c.progressWeight = v }
            if let v = textEncoder { c.textEncoder = v }
            if let v = answerWeight { c.answerWeight = v }
            if let v = maxAnswerLength { c.maxAnswerLength = v }
            if let v = promptLayout { c.promptLayout = v }
            return c
        }
    }

    /// AdamW (β = 0.9/0.95) with warmup-stable-decay; absent fields keep the stage's defaults.
    public struct ScheduleOptions: Codable, Sendable, Equatable {
        public var learningRate: Float?
        public var weightDecay: Float?
        public var warmupSteps: Int?
        /// Share of `steps` spent decaying to 5% of the peak rate.
        public var decayFraction: Double?
        public var steps: Int?
        public var batchSize: Int?
        public var gradientClip: Double?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case learningRate = "learning_rate", weightDecay = "weight_decay", warmupSteps = "warmup_steps"
            case decayFraction = "decay_fraction", steps, batchSize = "batch_size", gradientClip = "gradient_clip"
        }

        public init() {}

        public init(from decoder: Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate)
            weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay)
            warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps)
            decayFraction = try c.decodeIfPresent(Double.self, forKey: .decayFraction)
            steps = try c.decodeIfPresent(Int.self, forKey: .steps)
            batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize)
            gradientClip = try c.decodeIfPresent(Double.self, forKey: .gradientClip)
        }

        public func applied(to base: TrainingSchedule) -> TrainingSchedule {
            var s = base
            if let v = learningRate { s.learningRate = v }
            if let v = weightDecay { s.weightDecay = v }
            if let v = warmupSteps { s.warmupSteps = v }
            if let v = decayFraction { s.decayFraction = v }
            if let v = steps { s.totalSteps = v }
            if let v = batchSize { s.batchSize = v }
            if let v = gradientClip { s.gradientClip = v }
            return s
        }
    }

    /// L1: pointing pretraining on rendered scenes (`PointingPretraining`).
    public struct PointingOptions: Codable, Sendable, Equatable {
        public var scenes: Int?
        public var steps: Int?
        public var batchSize: Int?
        public var learningRate: Float?
        /// Unseen scenes the pointing error is measured on, before and after.
        public var heldOutScenes: Int?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case scenes, steps, batchSize = "batch_size", learningRate = "learning_rate", heldOutScenes = "held_out_scenes"
        }

        public init() {}

        public init(from decoder: Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            scenes = try c.decodeIfPresent(Int.self, forKey: .scenes)
            steps = try c.decodeIfPresent(Int.self, forKey: .steps)
            batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize)
            learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate)
            heldOutScenes = try c.decodeIfPresent(Int.self, forKey: .heldOutScenes)
        }
    }

    /// Grounding questions (`GroundingQuestions`): which families (L1, R0, R1), and for R0/R1's
    /// VQA co-training how many scenes are rendered and how many questions join each batch.
    public struct QuestionOptions: Codable, Sendable, Equatable {
        public var families: [QuestionFamily]?
        public var scenes: Int?
        public var batchSize: Int?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case families, scenes, batchSize = "batch_size"
        }

        public init() {}

        public init(from decoder: Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            families = c.contains(.families) ? try c.decodeChoices(QuestionFamily.self, forKey: .families) : nil
            scenes = try c.decodeIfPresent(Int.self, forKey: .scenes)
            batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize)
        }
    }

    /// R2: the `R2Config` fields (fine-tuning comes from the stage's `schedule`, the seed from
    /// the stage's `seed`).
    public struct R2Options: Codable, Sendable, Equatable {
        public var rolloutEpisodes: Int?
        public var rolloutSeedStart: UInt64?
        public var discount: Double?
        public var criticSteps: Int?
        public var criticBatch: Int?
        public var criticHidden: [Int]?
        public var iqlTau: Double?
        public var iqlLearningRate: Float?
        public var iqlTargetUpdateRate: Double?
        public var refineSteps: Int?
        public var refineStepSize: Double?
        public var noiseIterations: Int?
        public var noiseEpisodesPerIteration: Int?
        public var noiseSeedStart: UInt64?
        public var noiseLearningRate: Float?
        public var noiseKLWeight: Double?
        public var evalEpisodes: Int?
        public var evalSeedStart: UInt64?
        public var jpmStrength: Double?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case rolloutEpisodes = "rollout_episodes", rolloutSeedStart = "rollout_seed_start", discount
            case criticSteps = "critic_steps", criticBatch = "critic_batch", criticHidden = "critic_hidden"
            case iqlTau = "iql_tau", iqlLearningRate = "iql_learning_rate", iqlTargetUpdateRate = "iql_target_update_rate"
            case refineSteps = "refine_steps", refineStepSize = "refine_step_size"
            case noiseIterations = "noise_iterations", noiseEpisodesPerIteration = "noise_episodes_per_iteration"
            case noiseSeedStart = "noise_seed_start", noiseLearningRate = "noise_learning_rate", noiseKLWeight = "noise_kl_weight"
            case evalEpisodes = "eval_episodes", evalSeedStart = "eval_seed_start"
            case jpmStrength = "jpm_strength"
        }

        public init() {}

        public init(from decoder: Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            rolloutEpisodes = try c.decodeIfPresent(Int.self, forKey: .rolloutEpisodes)
            rolloutSeedStart = try c.decodeIfPresent(UInt64.self, forKey: .rolloutSeedStart)
            discount = try c.decodeIfPresent(Double.self, forKey: .discount)
            criticSteps = try c.decodeIfPresent(Int.self, forKey: .criticSteps)
            criticBatch = try c.decodeIfPresent(Int.self, forKey: .criticBatch)
            criticHidden = try c.decodeIfPresent([Int].self, forKey: .criticHidden)
            iqlTau = try c.decodeIfPresent(Double.self, forKey: .iqlTau)
            iqlLearningRate = try c.decodeIfPresent(Float.self, forKey: .iqlLearningRate)
            iqlTargetUpdateRate = try c.decodeIfPresent(Double.self, forKey: .iqlTargetUpdateRate)
            refineSteps = try c.decodeIfPresent(Int.self, forKey: .refineSteps)
            refineStepSize = try c.decodeIfPresent(Double.self, forKey: .refineStepSize)
            noiseIterations = try c.decodeIfPresent(Int.self, forKey: .noiseIterations)
            noiseEpisodesPerIteration = try c.decodeIfPresent(Int.self, forKey: .noiseEpisodesPerIteration)
            noiseSeedStart = try c.decodeIfPresent(UInt64.self, forKey: .noiseSeedStart)
            noiseLearningRate = try c.decodeIfPresent(Float.self, forKey: .noiseLearningRate)
            noiseKLWeight = try c.decodeIfPresent(Double.self, forKey: .noiseKLWeight)
            evalEpisodes = try c.decodeIfPresent(Int.self, forKey: .evalEpisodes)
            evalSeedStart = try c.decodeIfPresent(UInt64.self, forKey: .evalSeedStart)
            jpmStrength = try c.decodeIfPresent(Double.self, forKey: .jpmStrength)
        }

        public func apply(to c: inout R2Config) {
            if let v = rolloutEpisodes { c.rolloutEpisodes = v }
            if let v = rolloutSeedStart { c.rolloutSeedStart = v }
            if let v = discount { c.discount = v }
            if let v = criticSteps { c.criticSteps = v }
            if let v = criticBatch { c.criticBatch = v }
            if let v = criticHidden { c.iql.hidden = v }
            if let v = iqlTau { c.iql.tau = v }
            if let v = iqlLearningRate { c.iql.learningRate = v }
            if let v = iqlTargetUpdateRate { c.iql.targetUpdateRate = v }
            if let v = refineSteps { c.refineSteps = v }
            if let v = refineStepSize { c.refineStepSize = v }
            if let v = noiseIterations { c.noiseIterations = v }
            if let v = noiseEpisodesPerIteration { c.noiseEpisodesPerIteration = v }
            if let v = noiseSeedStart { c.noiseSeedStart = v }
            if let v = noiseLearningRate { c.noise.learningRate = v }
            if let v = noiseKLWeight { c.noise.klWeight = v }
            if let v = evalEpisodes { c.evalEpisodes = v }
            if let v = evalSeedStart { c.evalSeedStart = v }
            if let v = jpmStrength { c.jpmStrength = v }
        }
    }
}

// MARK: - strict decoding

/// Any key, to list every key a mapping has.
struct AnyConfigKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// A keyed container that throws `unknownKey` for a key that is not one of `Key`'s cases
    /// (plain `Decodable` ignores extra keys).
    func strictContainer<Key: CodingKey & CaseIterable>(keyedBy: Key.Type) throws -> KeyedDecodingContainer<Key> {
        let known = Key.allCases.map(\.stringValue)
        for key in try container(keyedBy: AnyConfigKey.self).allKeys where !known.contains(key.stringValue) {
            throw StageConfigError(key: StageConfig.keyPath(codingPath + [key]), problem: .unknownKey(allowed: known))
        }
        return try container(keyedBy: Key.self)
    }
}

extension KeyedDecodingContainer {
    /// A named choice (stage, embodiment, task) with an error listing the allowed names.
    func decodeChoice<E: RawRepresentable & CaseIterable>(_ type: E.Type, forKey key: Key) throws -> E where E.RawValue == String {
        let raw = try decode(String.self, forKey: key)
        return try Self.choice(raw, E.self, path: codingPath + [key])
    }

    func decodeChoices<E: RawRepresentable & CaseIterable>(_ type: E.Type, forKey key: Key) throws -> [E] where E.RawValue == String {
        try decode([String].self, forKey: key).enumerated().map { i, raw in
            try Self.choice(raw, E.self, path: codingPath + [key, IndexKey(intValue: i)])
        }
    }

    private static func choice<E: RawRepresentable & CaseIterable>(_ raw: String, _ type: E.Type, path: [CodingKey]) throws -> E where E.RawValue == String {
        guard let value = E(rawValue: raw) else {
            throw StageConfigError(key: StageConfig.keyPath(path), problem: .badValue(
                raw, expected: "one of " + E.allCases.map(\.rawValue).joined(separator: ", ")))
        }
        return value
    }
}

/// A list position in a key path.
private struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}
