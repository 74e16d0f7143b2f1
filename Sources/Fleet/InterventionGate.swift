/// HG-DAgger gating: decides, step by step, whether the operator takes over from the policy.
///
/// The (scripted) operator watches the policy and takes over when its command strays far
/// from what the operator would do for `deviationPatience` steps in a row, when the robot
/// stops making progress (the state barely changes over `stallWindow` policy steps), or when
/// the policy has used its step budget for the episode, or — with a policy that has a progress
/// head — when the policy's own estimate of task progress stops rising (`progressStallWindow`).
/// It hands control back once it has
/// acted for at least `handBackAfter` steps and the policy's proposal agrees with its own
/// again (the situation is recovered), never once the budget is spent.
public struct InterventionGate: Sendable {
    public struct Config: Sendable {
        public var enabled = true
        /// L2 distance between policy and operator native actions that counts as straying.
        public var deviationThreshold: Float = 0.6
        public var deviationPatience = 3
        public var stallWindow = 12
        /// L2 change of the native state over `stallWindow` steps below which it is a stall.
        public var stallEpsilon: Float = 2e-3
        /// Policy steps per episode before the operator finishes the episode.
        public var policyStepBudget = 150
        public var handBackAfter = 20
        /// Policy steps over which the progress head's estimate must rise by at least
        /// `progressStallMinimum` (0: not watched).
        public var progressStallWindow = 0
        public var progressStallMinimum: Float = 0.05

        public init() {}
    }

    public enum Reason: String, Sendable, Codable { case deviation, stall, budget, invalidAction, progressStall }

    public let config: Config
    public private(set) var operatorActive = false
    public private(set) var takeovers: [Reason] = []
    private var policySteps = 0
    private var operatorSteps = 0
    private var deviating = 0
    private var recentStates: [[Float]] = []
    private var recentProgress: [Float] = []

    public init(config: Config = Config()) { self.config = config }

    /// Whether the next decision looks at the policy's proposal: always while the policy
    /// drives; during a takeover only once handing back is possible (saves inference).
    public var needsPolicyProposal: Bool {
        !config.enabled || !operatorActive
            || (operatorSteps >= config.handBackAfter && policySteps < config.policyStepBudget)
    }

    public mutating func reset() {
        operatorActive = false
        takeovers = []
        policySteps = 0
        operatorSteps = 0
        deviating = 0
        recentStates = []
        recentProgress = []
    }

    /// Who acts at this step. `policyAction` nil means the policy produced no usable action;
    /// `progress` is the policy's progress estimate for this step's observation, if it has one.
    public mutating func operatorShouldAct(state: [Float], policyAction: [Float]?, operatorAction: [Float], progress: Float? = nil) -> Bool {
        guard config.enabled else { return false }
        if operatorActive {
            operatorSteps += 1
            if operatorSteps > config.handBackAfter, policySteps < config.policyStepBudget,
               let proposal = policyAction, proposal.count == operatorAction.count,
               Self.distance(proposal, operatorAction) <= config.deviationThreshold {
                operatorActive = false
                deviating = 0
                recentStates = []
                recentProgress = []
            } else {
                return true
            }
        }
        guard let policyAction, policyAction.count == operatorAction.count, policyAction.allSatisfy(\.isFinite) else {
            return takeOver(.invalidAction)
        }
        if policySteps >= config.policyStepBudget { return takeOver(.budget) }
        deviating = Self.distance(policyAction, operatorAction) > config.deviationThreshold ? deviating + 1 : 0
        if deviating >= config.deviationPatience { return takeOver(.deviation) }
        recentStates.append(state)
        if recentStates.count > config.stallWindow {
            let old = recentStates.removeFirst()
            if Self.distance(state, old) < config.stallEpsilon { return takeOver(.stall) }
        }
        if config.progressStallWindow > 0, let progress {
            recentProgress.append(progress)
            if recentProgress.count > config.progressStallWindow {
                let old = recentProgress.removeFirst()
                if !(progress - old >= config.progressStallMinimum) { return takeOver(.progressStall) }
            }
        }
        policySteps += 1
        return false
    }

    /// L2 distance (NaN compares false, so a NaN proposal never counts as agreeing).
    static func distance(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
    }

    private mutating func takeOver(_ reason: Reason) -> Bool {
        operatorActive = true
        operatorSteps = 1
        deviating = 0
        takeovers.append(reason)
        return true
    }
}
