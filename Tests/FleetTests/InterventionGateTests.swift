import Testing
@testable import Fleet

extension FleetTests {
    @Suite struct Gate {
        func config() -> InterventionGate.Config {
            var c = InterventionGate.Config()
            c.deviationThreshold = 0.5
            c.deviationPatience = 2
            c.stallWindow = 3
            c.stallEpsilon = 1e-3
            c.policyStepBudget = 100
            c.handBackAfter = 2
            return c
        }

        /// One gate decision (a helper: `#expect` cannot call mutating methods).
        func act(_ gate: inout InterventionGate, _ state: [Float], _ policy: [Float]?, _ op: [Float]) -> Bool {
            gate.operatorShouldAct(state: state, policyAction: policy, operatorAction: op)
        }

        @Test func takesOverOnDeviationHandsBackWhenRecoveredThenCatchesAStall() {
            var gate = InterventionGate(config: config())
            // (state, policy, operator) → operator acts?
            let steps: [([Float], [Float], [Float], Bool)] = [
                ([0], [0], [1], false),    // deviating 1 of 2
                ([0.1], [0], [1], true),   // deviating 2 of 2 → takeover
                ([0.2], [0], [1], true),   // operator's 2nd step (minimum not reached)
                ([0.3], [0], [1], true),   // minimum reached, but the policy still disagrees
                ([5], [1], [1], false),    // agrees → handed back
                ([5], [1], [1], false),
                ([5], [1], [1], false),
                ([5], [1], [1], true),     // no state change over 3 policy steps → stall
            ]
            // Before each decision: does it look at the policy's proposal? Not until the
            // operator has acted handBackAfter = 2 steps (so not at step 2).
            let asks = [true, true, false, true, true, true, true, true]
            for (i, (s, p, o, expected)) in steps.enumerated() {
                #expect(gate.needsPolicyProposal == asks[i], "step \(i)")
                #expect(gate.operatorShouldAct(state: s, policyAction: p, operatorAction: o) == expected, "step \(i)")
            }
            #expect(gate.takeovers == [.deviation, .stall])
        }

        @Test func takesOverWhenTheProgressEstimateStopsRising() {
            var c = config()
            c.stallWindow = 100            // only the progress rule can fire
            c.progressStallWindow = 3
            c.progressStallMinimum = 0.05
            var gate = InterventionGate(config: c)
            // Rising 0.02 per step: over 3 steps +0.06 ≥ 0.05, never a stall.
            for k in 0..<10 {
                let r = gate.operatorShouldAct(state: [Float(k)], policyAction: [1], operatorAction: [1], progress: 0.02 * Float(k))
                #expect(!r, "step \(k)")
            }
            // Then flat at 0.2: 0.2 − 0.16 = 0.04 < 0.05 at the second flat step — the first
            // whose window (3 steps back) holds less than 0.05 of progress.
            let flat = (0..<3).map { k in gate.operatorShouldAct(state: [Float(20 + k)], policyAction: [1], operatorAction: [1], progress: 0.2) }
            #expect(flat == [false, true, true])
            #expect(gate.takeovers == [.progressStall])
            // Without estimates (a policy with no progress head) the rule never fires.
            var blind = InterventionGate(config: c)
            for k in 0..<10 {
                let r = blind.operatorShouldAct(state: [Float(k)], policyAction: [1], operatorAction: [1], progress: nil)
                #expect(!r)
            }
        }

        @Test func budgetInvalidActionsAndDisabled() {
            var c = config()
            c.policyStepBudget = 2
            var gate = InterventionGate(config: c)
            do { let r = act(&gate, [0], [1], [1]); #expect(!r) }
            do { let r = act(&gate, [1], [1], [1]); #expect(!r) }
            do { let r = act(&gate, [2], [1], [1]); #expect(r) }
            // Budget spent: the operator keeps control even though the policy agrees.
            for k in 0..<5 { do { let r = act(&gate, [Float(3 + k)], [1], [1]); #expect(r) } }
            #expect(gate.takeovers == [.budget])

            var fresh = InterventionGate(config: config())
            do { let r = act(&fresh, [0], nil, [1]); #expect(r) }
            fresh.reset()
            do { let r = act(&fresh, [0], [.nan], [1]); #expect(r) }
            #expect(fresh.takeovers == [.invalidAction])

            var off = config()
            off.enabled = false
            var disabled = InterventionGate(config: off)
            do { let r = act(&disabled, [0], nil, [1]); #expect(!r) }
        }
    }
}
