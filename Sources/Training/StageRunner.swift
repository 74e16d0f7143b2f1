import Foundation
import RobotData
import RobotSim
import TensorKit
import VLAModel
import Yams

/// What a stage run left behind.
public struct StageResult: Sendable {
    public var stage: StageConfig.Stage
    public var checkpoint: URL
    /// Optimizer steps the stage's checkpoint records.
    public var step: Int
    /// L1: mean pointing error on unseen scenes before and after (nil when the stage was
    /// already complete).
    public var pointingError: (before: Double, after: Double)?
    /// R2: R1 vs R2 success.
    public var r2: R2Report?
    /// L1 with the answer head: held-out exact match per question family.
    public var questions: [GroundingPretraining.FamilyScore]?
}

/// Runs one `StageConfig` (the entry point behind `vla train --config`): L0 saves a fresh
/// model, L1 pointing-pretrains, R0/R1 behaviour-clone (resumable from their own checkpoint),
/// R2 aligns. A stage whose checkpoint (R2: report) already exists is not run again.
public enum StageRunner {
    public static func run(_ config: StageConfig, log: (String) -> Void) throws -> StageResult {
        // Checked before anything is written.
        let model = try modelConfig(config)
        try checkFrozen(config, model: model)
        try FileManager.default.createDirectory(at: config.outputURL, withIntermediateDirectories: true)
        // The settings this output came from, next to it.
        let settings = try YAMLEncoder().encode(config)
        try (settings.hasSuffix("\n") ? settings : settings + "\n")
            .write(to: config.outputURL.appendingPathComponent("stage.yaml"), atomically: true, encoding: .utf8)
        log("stage \(config.stage.rawValue) → \(config.output)" + (config.initFrom.map { " (from \($0))" } ?? ""))
        switch config.stage {
        case .L0: return try initialize(config, model: model, log: log)
        case .L1: return try pointingPretraining(config, model: model, log: log)
        case .R0, .R1:
            // Resumes from its own checkpoint when there is one (init_from is then ignored).
            _ = try config.behaviorCloningRun(model: model).run(log: log)
            return StageResult(stage: config.stage, checkpoint: config.checkpointURL, step: existingStep(config.checkpointURL) ?? 0)
        case .R2: return try align(config, model: model, log: log)
        }
    }

    /// The `init_from` checkpoint's config with the stage's `model` section on top (defaults
    /// on top of `VLAConfig()` without one).
    public static func modelConfig(_ config: StageConfig) throws -> VLAConfig {
        guard let from = config.initFromURL else { return config.modelConfig(base: VLAConfig()) }
        guard existingStep(from) != nil else {
            throw StageConfigError(file: config.source ?? "", key: "init_from", problem: .badValue(
                from.path, expected: "a checkpoint directory (no manifest.json there: run the earlier stage first)"))
        }
        let base = try JSONDecoder().decode(VLAConfig.self, from: Data(contentsOf: from.appendingPathComponent("config.json")))
        return config.modelConfig(base: base)
    }

    /// A model at `model`'s sizes, initialized from the stage's seed, with the `init_from`
    /// weights loaded when there are any.
    public static func startingModel(_ config: StageConfig, model: VLAConfig) throws -> FlowMatchingVLA {
        let vla = try FlowMatchingVLA(config: model, key: RandomKey(seed: config.seed))
        if let from = config.initFromURL { try Checkpoint.load(into: vla, optimizer: nil, from: from) }
        return vla
    }

    /// Every frozen prefix must name parameters of the model (a typo would freeze nothing).
    static func checkFrozen(_ config: StageConfig, model: VLAConfig) throws {
        guard let frozen = config.frozen, !frozen.isEmpty else { return }
        let keys = try FlowMatchingVLA(config: model, key: RandomKey(seed: 0)).parameters().keys
        for (i, prefix) in frozen.enumerated() where !keys.contains(where: { $0 == prefix || $0.hasPrefix(prefix + ".") }) {
            let top = Set(keys.map { String($0.prefix { $0 != "." }) }).sorted()
            throw StageConfigError(file: config.source ?? "", key: "frozen[\(i)]", problem: .badValue(
                prefix, expected: "a parameter path prefix of this model (top level: \(top.joined(separator: ", ")))"))
        }
    }

    static func existingStep(_ checkpoint: URL) -> Int? {
        guard let data = try? Data(contentsOf: checkpoint.appendingPathComponent("manifest.json")) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return (try? decoder.decode(CheckpointManifest.self, from: data))?.step
    }

    static func initialize(_ config: StageConfig, model: VLAConfig, log: (String) -> Void) throws -> StageResult {
        if let step = existingStep(config.checkpointURL) {
            log("L0: \(config.checkpointURL.path) exists, nothing to do")
            return StageResult(stage: .L0, checkpoint: config.checkpointURL, step: step)
        }
        let vla = try FlowMatchingVLA(config: model, key: RandomKey(seed: config.seed))
        // No data yet: empty statistics; later stages bring their own.
        try VLAPolicy(model: vla, stats: NormalizationStats(episodes: [])).save(to: config.checkpointURL, optimizer: nil, step: 0)
        log("L0: fresh model, \(vla.parameterCount) parameters → \(config.checkpointURL.path)")
        return StageResult(stage: .L0, checkpoint: config.checkpointURL, step: 0)
    }

    static func pointingPretraining(_ config: StageConfig, model: VLAConfig, log: (String) -> Void) throws -> StageResult {
        if let step = existingStep(config.checkpointURL) {
            log("L1: \(config.checkpointURL.path) exists, nothing to do")
            return StageResult(stage: .L1, checkpoint: config.checkpointURL, step: step)
        }
        guard model.pointingWeight > 0 || model.answerWeight > 0 else {
            throw StageConfigError(file: config.source ?? "", key: "model.pointing_weight", problem: .badValue(
                "\(model.pointingWeight)", expected: "> 0, or answer_weight > 0 (L1 trains the pointing head, the answer head or both)"))
        }
        // Demos only for the state statistics the policy's inputs are standardized with;
        // the episode store keeps them for R0.
        let demos = try config.behaviorCloningRun(model: model).demonstrations(log: log)
        let stats = model.relativeActions
            ? try NormalizationStats(episodes: demos, relativeTo: DemoCollector.specs, horizon: model.horizon)
            : NormalizationStats(episodes: demos)
        let policy = VLAPolicy(model: try startingModel(config, model: model), stats: stats)
        if model.answerWeight > 0 {
            let l1 = config.groundingPretraining
            let report = try l1.run(policy: policy, log: log)
            try policy.save(to: config.checkpointURL, optimizer: nil, step: l1.steps)
            return StageResult(stage: .L1, checkpoint: config.checkpointURL, step: l1.steps, pointingError: report.pointingError,
                               questions: report.families)
        }
        let l1 = config.pointingPretraining
        let error = try l1.run(policy: policy, log: log)
        try policy.save(to: config.checkpointURL, optimizer: nil, step: l1.steps)
        return StageResult(stage: .L1, checkpoint: config.checkpointURL, step: l1.steps, pointingError: error)
    }

    static func align(_ config: StageConfig, model: VLAConfig, log: (String) -> Void) throws -> StageResult {
        let reportURL = config.outputURL.appendingPathComponent("r2-report.json")
        if FileManager.default.fileExists(atPath: reportURL.path) {
            log("R2: \(reportURL.path) exists, nothing to do")
            let report = try JSONDecoder().decode(R2Report.self, from: Data(contentsOf: reportURL))
            return StageResult(stage: .R2, checkpoint: config.checkpointURL, step: existingStep(config.checkpointURL) ?? 0, r2: report)
        }
        guard let from = config.initFromURL, let data = config.data else { throw StageConfigError(key: "init_from", problem: .missingKey) }
        let embodiment = data.embodiments[0], task = data.tasks[0]
        // The R1 policy decodes with its own statistics.
        let stats = try NormalizationStats.read(from.appendingPathComponent("normalization.json"))
        guard stats.actions[embodiment.rawValue] != nil else {
            throw StageConfigError(file: config.source ?? "", key: "data.embodiments[0]", problem: .badValue(
                embodiment.rawValue, expected: "an embodiment the init_from checkpoint was trained on (\(stats.actions.keys.sorted().joined(separator: ", ")))"))
        }
        let vla = try startingModel(config, model: model)
        let demos = try config.behaviorCloningRun(model: model).demonstrations(log: log)
        if let frozen = config.frozen, !frozen.isEmpty { vla.freeze(frozen) }
        let r2 = R2Alignment(policy: VLAPolicy(model: vla, stats: stats), embodiment: embodiment, task: task, demos: demos, config: config.r2Config)
        let report = try r2.run(output: config.outputURL, log: log)
        return StageResult(stage: .R2, checkpoint: config.checkpointURL, step: config.r2Config.fineTuneSteps, r2: report)
    }
}
