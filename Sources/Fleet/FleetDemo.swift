import Foundation
import RobotData
import RobotSim
import TensorKit
import Training
import VLAModel

/// The main job (`vla demo`): pretrain a small VLA on scripted demos (cached), measure it,
/// post-train it online with a learner and several actors on loopback (HG-DAgger: the
/// scripted operator takes over when the policy strays; SOP's adaptive online/offline mix),
/// and measure it again on the same held-out seeds. Writes `report.json` and `report.html`.
public struct FleetDemo: Sendable {
    public var output: URL
    public var embodiment: EmbodimentKind = .arm7
    public var tasks: [TaskKind] = [.reach]
    public var actors = 4
    public var pretrainDemos = 30
    public var pretrainSteps = 400
    public var pretrainBatchSize = 32
    /// Each actor runs at least this many episodes …
    public var episodesPerActor = 6
    /// … and keeps going until its episodes run under the version published after this many
    /// learner train steps (the post-training budget).
    public var trainSteps = 400
    public var publishEveryTrainSteps = 10
    /// The scripted operator's gate: the policy acts until it has used its step budget or
    /// strays far (arm7's absolute joint targets sit close to the current joints, so 0.3 is
    /// far), then the operator finishes the episode. Earlier takeovers (0.05) label mostly
    /// the operator's own path, and the policy learns less from them (README, Fleet).
    public var gate: InterventionGate.Config = {
        var g = InterventionGate.Config()
        g.deviationThreshold = 0.3
        g.deviationPatience = 3
        g.policyStepBudget = 60
        g.handBackAfter = 10
        return g
    }()
    /// The operator's path when it takes over (the demos always use the phase machine): from
    /// where the policy stalled, straight at the target; the phase machine's lift-first
    /// corrections collapse the action expert (README, Fleet).
    public var operatorApproach = OperatorProfile.Approach.direct
    public var evaluationSeeds = 20
    public var model = VLAConfig()
    public var seed: UInt64 = 0
    /// L1 pointing pretraining before the demos' behaviour cloning (needs `model.pointingWeight` > 0).
    public var pointingScenes = 0
    public var pointingSteps = 0
    /// L1's peak rate: 1e-3 points better than PointingPretraining's 3e-4 in 800 steps (held-out
    /// error 0.118 vs 0.171); after the fleet the two are within run-to-run spread (README).
    public var pointingLearningRate = defaultPointingLearningRate
    public static let defaultPointingLearningRate: Float = 1e-3
    /// Keep L1's grounding frozen through the demos' behaviour cloning.
    public var freezeGrounding = false
    /// JPM guidance strength for the actors and the evaluations (0: off), and its point source.
    public var jpmStrength = 0.0
    public var jpmPoint = JointPredictionModule.PointSource.predicted
    /// JPM's carry on pick/place for the actors and the evaluations (nil: the approach only).
    public var jpmCarry: CarryGuidance?
    /// How the learner and actors post-train (algorithm, frozen prefixes, schedule, RECAP
    /// settings); its seed is replaced by `seed`.
    public var setup = PostTrainingSetup()
    /// RECAP: the classifier-free guidance weight in the final evaluation (SOP: 1.5–2.5).
    public var recapEvaluationGuidance = 1.5

    /// The OOD guard on the actors (fitted at pretraining, `checkpoint/ood-guard.json`).
    public var oodGuard = OODGuardMode.off
    /// When actors load new weights (episode boundaries: SOP's rule).
    public var weightSwap = WeightSwap.episodeBoundary
    /// Actors' control rate (steps per second of robot time; nil: as fast as they can).
    public var controlRate: Double?
    /// A robot-time budget per actor (seconds from its first episode): actors start no episode
    /// after it, instead of running until the version after `trainSteps` (fleet-scaling runs
    /// compare equal robot time).
    public var fleetDuration: Double?
    /// Learner pace: a train step starts at most this often (0: back to back).
    public var learnerStepInterval = 0.0
    /// Offline HG-DAgger instead of online post-training: this many rounds, each of which runs
    /// every actor for `episodesPerActor` episodes on a fixed policy (training paused), then
    /// trains `trainSteps / rounds` steps on all data so far and publishes (nil: online, SOP).
    public var offlineRounds: Int?
    /// Lock-step rounds instead of SOP's asynchronous fleet (nil): every actor runs this many
    /// episodes with the newest version, the learner trains `publishEveryTrainSteps` steps on
    /// them (in a fixed order) and publishes, and again, for `trainSteps` steps in all. Actors
    /// register one after another, so scene seeds and tasks follow actor numbers: the run is a
    /// function of `seed` (see `LockstepRounds`). Not with `offlineRounds` or `fleetDuration`.
    public var lockstepEpisodesPerRound: Int?
    /// SOP's on-policy vs more-offline-data baseline instead of the fleet: this many more
    /// scripted demos per task (the seeds after the pretraining demos'), then the learner's
    /// backend trains `trainSteps` steps on the pretraining demos plus these, no online data
    /// (nil: the fleet).
    public var extraDemos: Int?
    /// Pretraining demos, L1 scenes and the fleet's episodes only from this split's seen
    /// scenes, so `vla eval --scenes novel-…` measures how far post-training carries to
    /// target colours and positions nothing trained on. nil: every scene.
    public var sceneSplit: SceneSplit?
    /// Evaluate the pretrained policy first (a series of runs from one checkpoint needs it once).
    public var evaluateBefore = true
    /// Where the pretraining run lives (default `output/pretrain`; runs may share one).
    public var pretrainDirectory: URL?
    /// Save the learner's policy this many seconds into the fleet phase, to
    /// `output/snapshots/<seconds>s` (listed in `report.snapshots`): fleet scaling's learning
    /// curves. Times after the fleet phase ends are skipped.
    public var snapshotSeconds: [Double] = []
    /// Seconds between the fleet phase's progress lines.
    public var progressInterval = 20.0
    /// Called once the fleet's learner serves (e.g. to attach its dashboard).
    public var onLearnerStarted: (@Sendable (FleetLearner) async -> Void)?

    public init(output: URL) { self.output = output }

    public func run(log: @escaping @Sendable (String) -> Void) async throws -> FleetDemoReport {
        var report = FleetDemoReport()
        // Locals, so the actor tasks below do not capture self.
        let (model, embodiment, tasks, episodes, gate) = (self.model, self.embodiment, self.tasks, self.episodesPerActor, self.gate)
        let (operatorApproach, sceneSplit) = (self.operatorApproach, self.sceneSplit)
        let (jpmStrength, jpmPoint, jpmCarry) = (self.jpmStrength, self.jpmPoint, self.jpmCarry)
        report.settings = [
            "embodiment": embodiment.rawValue, "tasks": tasks.map(\.rawValue).joined(separator: ","),
            "actors": "\(actors)", "pretrain demos per task": "\(pretrainDemos)",
            "pretrain steps": "\(pretrainSteps)",
            "L1 pointing": pointingSteps > 0 && pointingScenes > 0 ? "\(pointingScenes) scenes, \(pointingSteps) steps, peak lr \(pointingLearningRate)" : "off",
            "episodes per actor (minimum)": "\(episodesPerActor)",
            "post-training train steps": "\(trainSteps)",
            "held-out seeds per task": "\(evaluationSeeds)", "post-training batch": "\(setup.schedule.batchSize)",
            "post-training learning rate": "\(setup.schedule.learningRate)", "seed": "\(seed)",
            "JPM guidance": jpmStrength > 0 ? "strength \(jpmStrength), \(jpmPoint.rawValue) point\(jpmCarry == nil ? "" : ", carry")" : "off",
            "algorithm": setup.algorithm == .recap
                ? "RECAP (value steps \(setup.recapValueSteps), n = \(setup.recapLookahead), positive fraction \(setup.recapPositiveFraction), value \(setup.recapContinuousValue ? "trained online" : "frozen"), CFG w fleet \(setup.recapFleetGuidance) / evaluation \(recapEvaluationGuidance))"
                : "HG-DAgger",
            "OOD guard on actors": oodGuard.rawValue,
            "post-training": extraDemos.map { "offline: \($0) more scripted demos per task, no fleet" }
                ?? offlineRounds.map { "offline HG-DAgger: \($0) rounds of collect (training paused), then retrain" }
                ?? lockstepEpisodesPerRound.map { "online in lock-step rounds: \($0) episode(s) per actor, then \(publishEveryTrainSteps) train steps" }
                ?? "online (SOP)",
            "frozen in post-training": setup.frozen.isEmpty ? "nothing" : setup.frozen.joined(separator: ", "),
            "gate": "deviation > \(gate.deviationThreshold) for \(gate.deviationPatience) steps, budget \(gate.policyStepBudget), hand back after \(gate.handBackAfter)",
            "operator approach on takeover": operatorApproach.rawValue,
            "scenes (demos, L1, fleet)": sceneSplit == nil ? "all" : "seen only (held-out target colours and positions never played)",
        ]
        if let perRound = lockstepEpisodesPerRound {
            guard perRound >= 1, offlineRounds == nil, fleetDuration == nil, extraDemos == nil else {
                throw FleetDemoError.lockstepConflict
            }
        }
        // 1. Pretrain (resumes or returns at once when the cached run is complete).
        var pretrain = BehaviorCloningRun(output: pretrainDirectory ?? output.appendingPathComponent("pretrain"))
        pretrain.embodiments = [embodiment]
        pretrain.tasks = tasks
        pretrain.demosPerPair = pretrainDemos
        pretrain.model = model
        pretrain.schedule.totalSteps = pretrainSteps
        pretrain.schedule.batchSize = pretrainBatchSize
        pretrain.seed = seed
        pretrain.pointingScenes = pointingScenes
        pretrain.pointingSteps = pointingSteps
        pretrain.pointingLearningRate = pointingLearningRate
        pretrain.freezeGrounding = freezeGrounding
        pretrain.sceneSplit = sceneSplit
        try FileManager.default.createDirectory(at: pretrain.output, withIntermediateDirectories: true)
        log("== pretraining on \(pretrainDemos) scripted demos per task (\(embodiment.rawValue): \(tasks.map(\.rawValue).joined(separator: ", ")))")
        let pretrained = try pretrain.run(log: log)
        let checkpoint = pretrain.output.appendingPathComponent("checkpoint")
        if jpmStrength > 0, jpmCarry != nil, jpmPoint == .predicted, pretrained.model.placePointingHead == nil {
            throw FleetDemoError.carryNeedsPlaceHead(checkpoint: checkpoint.path)
        }

        // 2. Held-out evaluation before the fleet (seeds 0 ..< n; demos use seeds ≥ 10 000).
        let seeds = heldOutSeeds
        if evaluateBefore {
            // Cached next to the checkpoint: runs that share a pretraining share its evaluation.
            let cache = pretrain.output.appendingPathComponent(
                "held-out-\(embodiment.rawValue)-\(tasks.map(\.rawValue).joined(separator: "+"))-seeds\(evaluationSeeds)-jpm\(jpmStrength)-\(jpmPoint.rawValue)\(jpmCarry == nil ? "" : "-carry").json")
            if let cached = Self.cachedEvaluation(cache, newerThan: checkpoint) {
                log("== the pretrained policy's held-out evaluation, cached in \(cache.lastPathComponent)")
                for e in cached { log("pretrained \(e.embodiment)/\(e.task): \(FleetDemoReport.rate(e))") }
                report.before = cached
            } else {
                log("== evaluating the pretrained policy on \(evaluationSeeds) held-out seeds per task")
                report.before = try evaluate(pretrained, seeds: seeds, label: "pretrained", log: log)
                try JSONEncoder().encode(report.before).write(to: cache, options: .atomic)
            }
        }

        // 3. Fleet post-training: learner + actors on loopback.
        let demos = try PostTrainingSetup.offlineDemos(store: pretrain.demoStoreDirectory, embodiment: embodiment,
                                                       tasks: tasks, imageSize: model.imageSize, perTask: pretrainDemos)
        let setup = { var s = self.setup; s.seed = seed; return s }()
        if let extraDemos {
            let (trainer, algorithm) = try await trainOnMoreDemos(extraDemos, demos: demos, checkpoint: checkpoint, setup: setup,
                                                                   report: &report, log: log)
            return try finish(report: &report, trainer: trainer, algorithm: algorithm, seeds: seeds, log: log)
        }
        let (backend, trainer, algorithm) = try setup.learnerBackend(checkpoint: checkpoint, offline: demos) { log("== " + $0) }
        let fleetRun = output.appendingPathComponent("fleet-\(Int(Date().timeIntervalSince1970))")
        var config = FleetLearnerConfig(storeDirectory: fleetRun)
        config.tensorBoardDirectory = fleetRun.appendingPathComponent("tensorboard")
        config.catalog = TaskCatalog(tasks.map { (embodiment, $0) })
        config.publishEveryTrainSteps = publishEveryTrainSteps
        // The seed picks the fleet's scenes too (seed 0: the learner's default range).
        config.seedBase = FleetLearnerConfig.defaultSeedBase + seed &* Self.seedStride
        config.trainStepInterval = learnerStepInterval
        config.lockstep = lockstepEpisodesPerRound.map { LockstepRounds(actors: actors, episodesPerRound: $0) }
        // Version 1 is the pretrained policy; version v follows (v − 1)·K train steps.
        let targetVersion = trainSteps / max(1, publishEveryTrainSteps) + 1
        // Lock-step: round r acts with version r; `targetVersion − 1` rounds reach the budget.
        let lockstepEpisodes = lockstepEpisodesPerRound.map { $0 * (targetVersion - 1) }
        let learner = try FleetLearner(config: config, backend: backend)
        let port = try await learner.start()
        await onLearnerStarted?(learner)
        if let fleetDuration {
            log("== fleet: learner on 127.0.0.1:\(port), \(actors) actors for \(Int(fleetDuration)) s of robot time"
                + (controlRate.map { " at \($0) Hz" } ?? ""))
        } else if let perRound = lockstepEpisodesPerRound {
            log("== fleet in lock-step rounds: learner on 127.0.0.1:\(port), \(actors) actors × \(perRound) episode(s) per round, "
                + "\(publishEveryTrainSteps) train steps per round, \(targetVersion - 1) rounds")
        } else {
            log("== fleet: learner on 127.0.0.1:\(port), \(actors) actors, ≥ \(episodesPerActor) episodes each, until \(trainSteps) train steps")
        }
        let started = Date()
        let (controlRate, budget, weightSwap) = (self.controlRate, fleetDuration, self.weightSwap)
        let ood = try oodGuard == .off ? nil
            : PolicyEvaluator.OODSettings(guardModel: OODGuard.read(OODGuard.url(inCheckpoint: checkpoint)), mode: oodGuard)
        // The actors of one phase: each runs `episodes` episodes (and, online, on until the
        // target version acted in one of them).
        let (actorCount, perRound) = (actors, lockstepEpisodesPerRound)
        @Sendable func runActors(episodes: Int, targetVersion: Int?) async throws -> [(String, FleetActorReport, PolicyEvaluator.OODCounts?)] {
            try await withThrowingTaskGroup(of: (String, FleetActorReport, PolicyEvaluator.OODCounts?).self) { group in
                for i in 0..<actorCount {
                    group.addTask {
                        let id = "demo-actor-\(i)"
                        // Lock-step: registration in actor order fixes each actor's seeds and task.
                        while perRound != nil, i > 0, !learner.isRegistered("demo-actor-\(i - 1)") {
                            try await Task.sleep(for: .milliseconds(5))
                        }
                        var c = FleetActorConfig(actorID: id, learnerPort: port, embodiment: embodiment, tasks: tasks)
                        c.episodes = budget == nil ? episodes : 10_000   // until the budget is spent
                        c.targetPolicyVersion = budget == nil ? targetVersion : nil
                        c.robotTimeBudget = budget
                        c.controlRate = controlRate
                        c.weightSwap = weightSwap
                        c.maxEpisodes = targetVersion == nil && budget == nil ? episodes : 10_000
                        c.lockstepEpisodesPerVersion = perRound
                        c.environment = EnvironmentConfig(imageWidth: model.imageSize, imageHeight: model.imageSize)
                        c.stepsPerChunk = 16
                        c.gate = gate
                        c.operatorApproach = operatorApproach
                        c.sceneSplit = sceneSplit
                        let policy = try setup.actorPolicy(checkpoint: checkpoint)
                        let jpm = Self.jointPredictionModule(strength: jpmStrength, point: jpmPoint, carry: jpmCarry)
                        let actorPolicy = VLAActorPolicy(policy: policy, embodiment: embodiment.spec, seed: seed &* 1_000 &+ UInt64(100 + i), jpm: jpm, ood: ood)
                        let report = try await FleetActor(config: c, policy: actorPolicy).run()
                        let ok = report.episodes.filter(\.success).count
                        let help = report.episodes.reduce(0) { $0 + $1.operatorSteps }, steps = report.episodes.reduce(0) { $0 + $1.steps }
                        let task = report.episodes.first?.task ?? "-"
                        log("actor \(i) (\(task)): \(report.episodes.count) episodes, \(ok) successes, "
                            + String(format: "operator steps %.0f%%, ", 100 * Double(help) / Double(max(1, steps)))
                            + "versions \(report.episodes.map(\.policyVersion))"
                            + (ood == nil ? "" : ", OOD chunks \(actorPolicy.oodCounts.outOfDistributionDecisions)/\(actorPolicy.oodCounts.decisions)"
                               + " (corrected \(actorPolicy.oodCounts.correctedChunks))"))
                        return (id, report, ood == nil ? nil : actorPolicy.oodCounts)
                    }
                }
                var all: [(String, FleetActorReport, PolicyEvaluator.OODCounts?)] = []
                for try await r in group { all.append(r) }
                return all
            }
        }
        var reports: [(String, FleetActorReport, PolicyEvaluator.OODCounts?)] = []
        // The fleet runs for minutes: a progress line every `progressInterval` seconds.
        let progress = Task { [trainSteps, progressInterval] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(progressInterval))
                if Task.isCancelled { break }
                log(Self.fleetProgress(learner.metrics.snapshot(), history: learner.history.snapshot().episodes,
                                       seconds: Date().timeIntervalSince(started), trainSteps: trainSteps))
            }
        }
        defer { progress.cancel() }
        let snapshots = Task { [snapshotSeconds, output] in
            var taken: [FleetDemoReport.Snapshot] = []
            for t in snapshotSeconds.sorted() {
                let wait = t - Date().timeIntervalSince(started)
                if wait > 0 { try? await Task.sleep(for: .seconds(wait)) }
                if Task.isCancelled { break }
                let directory = output.appendingPathComponent("snapshots/\(Int(t.rounded()))s")
                let step = try TensorLock.run {
                    try trainer.policy.save(to: directory, optimizer: nil, step: trainer.step)
                    return trainer.step
                }
                log(String(format: "snapshot at %.0f s: train step %d → %@", t, step, directory.path))
                taken.append(.init(seconds: t, trainStep: step, checkpoint: directory.path))
            }
            return taken
        }
        defer { snapshots.cancel() }
        do {
            if let rounds = offlineRounds {
                // Plain HG-DAgger (SOP's offline baseline): collect with a fixed policy, then
                // retrain on everything collected so far, and again; same steps in all.
                learner.pauseTraining(true)
                await learner.waitUntilTrainingPaused()
                for round in 0..<rounds {
                    log("== offline round \(round + 1)/\(rounds): \(actors) actors × \(episodes) episodes with version \(learner.latestVersion), training paused")
                    reports += try await runActors(episodes: episodes, targetVersion: nil)
                    let goal = (round + 1) * trainSteps / rounds
                    log("== offline round \(round + 1)/\(rounds): retraining to train step \(goal)")
                    await learner.trainUntil(step: goal)
                    try await learner.publish()
                }
            } else if let lockstepEpisodes {
                reports = try await runActors(episodes: lockstepEpisodes, targetVersion: nil)
                await learner.waitUntilPublished(version: targetVersion)
            } else {
                reports = try await runActors(episodes: episodes, targetVersion: targetVersion)
            }
        } catch {
            await learner.stop()
            throw error
        }
        progress.cancel()
        snapshots.cancel()
        report.snapshots = snapshotSeconds.isEmpty ? nil : try await snapshots.value
        report.fleetSeconds = Date().timeIntervalSince(started)
        await learner.stop()
        report.record(learner.metrics.snapshot())
        report.onlineShares = await backend.onlineShares
        for (actor, _, counts) in reports {
            guard let c = counts else { continue }
            report.oodGuard[actor] = .init(chunks: c.decisions, outOfDistribution: c.outOfDistributionDecisions, corrected: c.correctedChunks)
        }
        report.episodes = reports.flatMap { actor, r, _ in
            r.episodes.map {
                FleetDemoReport.Episode(actor: actor, task: $0.task, policyVersion: $0.policyVersion, policyLag: $0.policyLag,
                                        steps: $0.steps, operatorSteps: $0.operatorSteps, success: $0.success,
                                        finishedAt: $0.finished.timeIntervalSince(started), takeovers: $0.takeovers.map(\.rawValue))
            }
        }.sorted { $0.finishedAt < $1.finishedAt }
        log(String(format: "fleet: %d episodes in %.0f s (%.3f/s), %d train steps, %d versions, operator steps %.0f%%, mean policy lag %.2f",
                   report.episodes.count, report.fleetSeconds, report.episodesPerSecond, report.trainSteps,
                   report.versionsPublished, 100 * report.interventionRate, report.meanPolicyLag))
        log("operator takeovers: " + report.takeoverSummary)
        log(String(format: "learner ingest %.2f MB/s; weights %.2f MB per version (last delta %.2f MB), encoded in %.0f ms; sent %d versions, %d as deltas, %.1f MB",
                   report.ingestMegabytesPerSecond, Double(report.publicationBytes) / 1e6, Double(report.publicationDeltaBytes) / 1e6,
                   1000 * report.publicationSeconds, report.versionsSent, report.deltaVersionsSent, Double(report.weightBytesSent) / 1e6))

        return try finish(report: &report, trainer: trainer, algorithm: algorithm, seeds: seeds, log: log)
    }

    /// 4. The same held-out evaluation after post-training; saves the post-trained checkpoint
    /// and the report.
    private func finish(report: inout FleetDemoReport, trainer: BehaviorCloningTrainer, algorithm: any PostTrainingAlgorithm,
                        seeds: [UInt64], log: @escaping @Sendable (String) -> Void) throws -> FleetDemoReport {
        log("== evaluating the post-trained policy on the same seeds")
        report.algorithmSummary = algorithm.summary
        report.after = try TensorLock.run { try evaluatePostTrained(trainer.policy, seeds: seeds, label: "post-trained", log: log) }
        try trainer.policy.save(to: output.appendingPathComponent("post-trained"), optimizer: trainer.optimizer, step: trainer.step)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(report).write(to: output.appendingPathComponent("report.json"), options: .atomic)
        try Data(report.html().utf8).write(to: output.appendingPathComponent("report.html"), options: .atomic)
        return report
    }

    /// The more-offline-data baseline: `extra` new scripted demos per task from the seeds after
    /// the pretraining demos' (the pretraining's own rule, `BehaviorCloningRun.demoSeeds`;
    /// failed ones skipped), then `trainSteps` learner train steps on all demos, no fleet. The
    /// robot time the demos took is in the log and the settings.
    private func trainOnMoreDemos(_ extra: Int, demos: [Episode], checkpoint: URL, setup: PostTrainingSetup,
                                  report: inout FleetDemoReport, log: @escaping @Sendable (String) -> Void) async throws
        -> (BehaviorCloningTrainer, any PostTrainingAlgorithm) {
        var fresh: [Episode] = []
        for task in tasks {
            let seeds = BehaviorCloningRun.demoSeeds(after: demos.filter { $0.task == task.rawValue }, needed: extra)
            var tried = 0
            let collected = try DemoCollector.collectSuccessful(count: extra, embodiment: embodiment, task: task, seeds: seeds,
                                                               imageSize: model.imageSize, progress: { n, succeeded in
                tried = n
                if n % 50 == 0 { log("collecting \(embodiment.rawValue)/\(task.rawValue) extra demos: \(succeeded)/\(extra)") }
            })
            if tried > 0 { log("\(embodiment.rawValue)/\(task.rawValue): \(collected.count) extra demos from seeds \(seeds[0])…\(seeds[tried - 1])") }
            fresh += collected
        }
        let steps = fresh.reduce(0) { $0 + $1.stepCount }
        let robotMinutes = fresh.reduce(0.0) { $0 + Double($1.stepCount) * $1.controlPeriod } / 60
        report.settings["post-training"] = "offline: \(fresh.count) more scripted demos (\(steps) steps, "
            + String(format: "%.1f robot-minutes", robotMinutes) + "), no fleet"
        log("== more offline data instead of the fleet: \(fresh.count) new demos, \(steps) steps = "
            + String(format: "%.1f", robotMinutes) + " robot-minutes; \(trainSteps) train steps on \(demos.count + fresh.count) demos")
        let (backend, trainer, algorithm) = try setup.learnerBackend(checkpoint: checkpoint, offline: demos + fresh) { log("== " + $0) }
        let started = Date()
        var recent: [Float] = []
        for step in 1...max(1, trainSteps) {
            if let loss = try await backend.trainStep() { recent.append(loss) }
            if recent.count > 50 { recent.removeFirst() }
            if step % 100 == 0 || step == trainSteps {
                log(String(format: "train step %d/%d  loss %.4f", step, trainSteps, recent.reduce(0, +) / Float(max(1, recent.count))))
            }
        }
        report.fleetSeconds = Date().timeIntervalSince(started)
        report.trainSteps = await backend.stepsTrained
        return (trainer, algorithm)
    }

    /// One progress line of the fleet phase: train steps against the budget, versions, episodes
    /// with the success and operator-step share of the last 50.
    static func fleetProgress(_ m: FleetMetrics.Snapshot, history: [LearnerHistory.Episode], seconds: Double, trainSteps: Int) -> String {
        let recent = history.suffix(50)
        let steps = recent.reduce(0) { $0 + $1.steps }
        let recentText = recent.isEmpty ? "" : String(format: "; last %d: success %.0f%%, operator steps %.0f%%", recent.count,
            100 * Double(recent.filter(\.success).count) / Double(recent.count),
            100 * Double(recent.reduce(0) { $0 + $1.operatorSteps }) / Double(max(1, steps)))
        return String(format: "fleet %.0f s: train step %d/%d, version %d, %d episodes", seconds, m.trainSteps, trainSteps,
                      m.latestVersion, m.episodesAccepted) + recentText
    }

    /// A cached evaluation, if it was written after the checkpoint (else it may be stale).
    static func cachedEvaluation(_ file: URL, newerThan checkpoint: URL) -> [FleetDemoReport.Evaluation]? {
        func modified(_ url: URL) -> Date? { try? url.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate }
        // Every checkpoint save rewrites config.json.
        guard let written = modified(file), let trained = modified(checkpoint.appendingPathComponent("config.json")), written >= trained,
              let data = try? Data(contentsOf: file) else { return nil }
        return try? JSONDecoder().decode([FleetDemoReport.Evaluation].self, from: data)
    }

    /// A JPM module as configured (nil when the strength is 0); one per actor and evaluation,
    /// since it holds one episode's targets.
    static func jointPredictionModule(strength: Double, point: JointPredictionModule.PointSource,
                                      carry: CarryGuidance?) -> JointPredictionModule? {
        strength > 0 ? JointPredictionModule(strength: strength, pointSource: point, carry: carry) : nil
    }

    /// Scene seeds between two demo seeds' fleets: room for 100 actors' ranges of 100 000.
    static let seedStride: UInt64 = 10_000_000

    /// The evaluation seeds, before and after (0 ..< n; demos use seeds ≥ 10 000).
    var heldOutSeeds: [UInt64] { Array(UInt64(0)..<UInt64(evaluationSeeds)) }

    /// The held-out evaluation of a post-trained policy (the report's "after", the scaling
    /// curves): one trained with RECAP's advantage token samples toward "positive" at
    /// `recapEvaluationGuidance` rather than the fleet's rollout weight.
    func evaluatePostTrained(_ policy: VLAPolicy, seeds: [UInt64], label: String, log: (String) -> Void) throws -> [FleetDemoReport.Evaluation] {
        if policy.model.config.advantageConditioning { policy.advantageGuidance = recapEvaluationGuidance }
        return try evaluate(policy, seeds: seeds, label: label, log: log)
    }

    /// The held-out evaluation of `policy` on every task (JPM as configured).
    func evaluate(_ policy: VLAPolicy, seeds: [UInt64], label: String, log: (String) -> Void) throws -> [FleetDemoReport.Evaluation] {
        try tasks.map { task in
            let jpm = Self.jointPredictionModule(strength: jpmStrength, point: jpmPoint, carry: jpmCarry)
            let result = try PolicyEvaluator.evaluate(policy: policy, embodiment: embodiment, task: task, seeds: seeds, jpm: jpm) { done, total, ok in
                if done % 25 == 0 && done < total { log("\(label) \(embodiment.rawValue)/\(task.rawValue): \(done)/\(total) seeds, \(ok) successes") }
            }
            let r = result.success
            log("\(label) \(embodiment.rawValue)/\(task.rawValue): \(r)")
            if !result.milestones.isEmpty { log("  milestones: \(result.milestoneSummary)") }
            return FleetDemoReport.Evaluation(embodiment: embodiment.rawValue, task: task.rawValue, episodes: r.episodes,
                                              successes: r.successes, rate: r.rate,
                                              interval: [r.interval95.low, r.interval95.high], perSeedSuccess: result.outcomes,
                                              milestones: result.milestones.map { .init(milestone: $0.milestone.rawValue, episodes: $0.episodes) })
        }
    }
}

public enum FleetDemoError: Error, CustomStringConvertible {
    /// JPM's carry with predicted points needs the place head (the oracle point does not).
    case carryNeedsPlaceHead(checkpoint: String)
    /// Lock-step rounds need at least one episode per round and no time budget or offline phase.
    case lockstepConflict

    public var description: String {
        switch self {
        case .carryNeedsPlaceHead(let checkpoint):
            return "JPM's carry with the predicted point needs a place head in \(checkpoint) "
                + "(vla train pointing-head --head place --checkpoint \(checkpoint)) or the oracle point"
        case .lockstepConflict:
            return "lock-step rounds need at least 1 episode per round and run neither with offline rounds, extra demos nor a robot-time budget"
        }
    }
}

